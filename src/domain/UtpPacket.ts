/**
 * uTP packets (BEP 29): a 20-byte header, a chain of extensions (of which only selective ack,
 * type 1, is understood; others are skipped), then the payload. Sequence and ack numbers are 16
 * bits and wrap, so they are compared with the helpers below, never with `<`.
 */
import { Data, Either } from "effect"

export const PacketType = { Data: 0, Fin: 1, State: 2, Reset: 3, Syn: 4 } as const
export type PacketType = (typeof PacketType)[keyof typeof PacketType]

export const version = 1
export const headerLength = 20
const selectiveAckExtension = 1

export interface UtpHeader {
  readonly type: PacketType
  readonly connectionId: number
  /** The sender's clock when it sent the packet, in microseconds modulo 2^32. */
  readonly timestampMicros: number
  /** The sender's last measured one-way delay (its clock minus our timestamp), modulo 2^32. */
  readonly timestampDifferenceMicros: number
  /** Bytes the sender can still receive. */
  readonly windowSize: number
  readonly seqNr: number
  readonly ackNr: number
}

export interface UtpPacket extends UtpHeader {
  /**
   * Selective ack bitmask (we send multiples of 4 bytes, as BEP 29 says): bit i (LSB first in each byte) says that
   * packet ackNr + 2 + i arrived.
   */
  readonly selectiveAck?: Uint8Array
  readonly payload: Uint8Array
}

export type UtpPacketErrorReason = "TooShort" | "Version" | "Type" | "Extension"

export class UtpPacketError extends Data.TaggedError("UtpPacketError")<{
  readonly reason: UtpPacketErrorReason
  readonly detail: string
}> {
  override get message() {
    return `malformed uTP packet (${this.reason}): ${this.detail}`
  }
}

/** Whether the datagram looks like uTP: version 1 and a known type in its first byte (KRPC starts with "d"). */
export const isUtpDatagram = (bytes: Uint8Array): boolean =>
  bytes.length >= headerLength && (bytes[0]! & 0x0f) === version && bytes[0]! >> 4 <= PacketType.Syn

export const encodePacket = (p: UtpPacket): Uint8Array => {
  const sack = p.selectiveAck
  const extensionLength = sack === undefined ? 0 : 2 + sack.length
  const out = new Uint8Array(headerLength + extensionLength + p.payload.length)
  writeHeader(out, p, sack === undefined ? 0 : selectiveAckExtension)
  if (sack !== undefined) {
    out[20] = 0
    out[21] = sack.length
    out.set(sack, 22)
  }
  out.set(p.payload, headerLength + extensionLength)
  return out
}

const writeU16 = (out: Uint8Array, at: number, n: number) => {
  out[at] = n >>> 8
  out[at + 1] = n
}
const writeU32 = (out: Uint8Array, at: number, n: number) => {
  out[at] = n >>> 24
  out[at + 1] = n >>> 16
  out[at + 2] = n >>> 8
  out[at + 3] = n
}

/** Writes the 20 header bytes at the start of `out` (a data packet is built in place around its payload). */
export const writeHeader = (out: Uint8Array, h: UtpHeader, firstExtension = 0) => {
  out[0] = (h.type << 4) | version
  out[1] = firstExtension
  writeU16(out, 2, h.connectionId)
  writeU32(out, 4, h.timestampMicros)
  writeU32(out, 8, h.timestampDifferenceMicros)
  writeU32(out, 12, h.windowSize)
  writeU16(out, 16, h.seqNr)
  writeU16(out, 18, h.ackNr)
}

/** Rewrites the fields a retransmission refreshes: timestamps, window and ack. */
export const refreshHeader = (out: Uint8Array, timestampMicros: number, timestampDifferenceMicros: number, windowSize: number, ackNr: number) => {
  writeU32(out, 4, timestampMicros)
  writeU32(out, 8, timestampDifferenceMicros)
  writeU32(out, 12, windowSize)
  writeU16(out, 18, ackNr)
}

const fail = (reason: UtpPacketErrorReason, detail: string) => Either.left(new UtpPacketError({ reason, detail }))

/** Decodes a datagram; the payload is a view into `bytes`, not a copy. */
export const decodePacket = (bytes: Uint8Array): Either.Either<UtpPacket, UtpPacketError> => {
  if (bytes.length < headerLength) return fail("TooShort", `${bytes.length} bytes, the header alone is ${headerLength}`)
  const type = bytes[0]! >> 4
  if ((bytes[0]! & 0x0f) !== version) return fail("Version", `version ${bytes[0]! & 0x0f}, expected ${version}`)
  if (type > PacketType.Syn) return fail("Type", `type ${type}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let selectiveAck: Uint8Array | undefined
  let extension = bytes[1]!
  let at = headerLength
  while (extension !== 0) {
    if (at + 2 > bytes.length) return fail("Extension", `extension ${extension} header past the end at ${at}`)
    const next = bytes[at]!
    const length = bytes[at + 1]!
    if (at + 2 + length > bytes.length) return fail("Extension", `extension ${extension} of ${length} bytes past the end`)
    if (extension === selectiveAckExtension) {
      // BEP 29 says a multiple of 4, but libtorrent sends 1 to 3 bytes too: any non-empty mask is read.
      if (length === 0) return fail("Extension", "empty selective ack")
      selectiveAck = bytes.subarray(at + 2, at + 2 + length)
    }
    extension = next
    at += 2 + length
  }
  const packet: UtpPacket = {
    type: type as PacketType,
    connectionId: view.getUint16(2),
    timestampMicros: view.getUint32(4),
    timestampDifferenceMicros: view.getUint32(8),
    windowSize: view.getUint32(12),
    seqNr: view.getUint16(16),
    ackNr: view.getUint16(18),
    payload: bytes.subarray(at)
  }
  return Either.right(selectiveAck === undefined ? packet : { ...packet, selectiveAck })
}

// ---------------------------------------------------------------------------------------------
// 16-bit sequence arithmetic

export const seqMask = 0xffff

export const seqAdd = (a: number, n: number): number => (a + n) & seqMask

/** a - b as a signed distance in (-32768, 32768]: positive when a is after b. */
export const seqDistance = (a: number, b: number): number => {
  const d = (a - b) & seqMask
  return d > 0x8000 ? d - 0x10000 : d
}

/** a comes strictly before b, across the wrap. */
export const seqBefore = (a: number, b: number): boolean => seqDistance(a, b) < 0
