/**
 * DHT node ids (BEP 5): 160-bit numbers, as 20 bytes big-endian, in the XOR metric. Info hashes
 * live in the same space, so a lookup for peers is a lookup for the nodes closest to a hash.
 */

import { equalBytes } from "./Bytes.js"

/** 20 bytes; info hashes are ids too. */
export type NodeId = Uint8Array

export const nodeIdBytes = 20
export const nodeIdBits = 160

export const isNodeId = (bytes: Uint8Array): boolean => bytes.length === nodeIdBytes

/** A random id from a generator of bytes. */
export const randomNodeId = (random: (n: number) => Uint8Array): NodeId => random(nodeIdBytes).slice(0, nodeIdBytes)

export const xorDistance = (a: NodeId, b: NodeId): Uint8Array => {
  const out = new Uint8Array(nodeIdBytes)
  for (let i = 0; i < nodeIdBytes; i++) out[i] = a[i]! ^ b[i]!
  return out
}

/** Which of `a` and `b` is closer to `target`: negative when `a` is, 0 when they are the same id. */
export const compareDistance = (target: NodeId, a: NodeId, b: NodeId): number => {
  for (let i = 0; i < nodeIdBytes; i++) {
    const da = a[i]! ^ target[i]!
    const db = b[i]! ^ target[i]!
    if (da !== db) return da - db
  }
  return 0
}

/** The number of leading bits `a` and `b` share (160 when equal). */
export const commonPrefixBits = (a: NodeId, b: NodeId): number => {
  for (let i = 0; i < nodeIdBytes; i++) {
    const x = a[i]! ^ b[i]!
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return nodeIdBits
}

/**
 * A random id that shares exactly `bits` leading bits with `self` (the bit after them differs):
 * a target inside the bucket of that depth, for refreshing it.
 */
export const randomIdAtDepth = (self: NodeId, bits: number, random: (n: number) => Uint8Array): NodeId => {
  const out = randomNodeId(random)
  for (let bit = 0; bit < Math.min(bits + 1, nodeIdBits); bit++) {
    const byte = bit >> 3
    const mask = 0x80 >> (bit & 7)
    const want = bit < bits ? self[byte]! & mask : ~self[byte]! & mask
    out[byte] = (out[byte]! & ~mask) | want
  }
  return out
}

export const sameId = (a: NodeId, b: NodeId): boolean => equalBytes(a, b)
