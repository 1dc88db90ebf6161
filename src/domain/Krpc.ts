/**
 * KRPC (BEP 5): the DHT's bencoded messages over UDP. Queries (ping, find_node, get_peers,
 * announce_peer), responses (ids, compact node info, compact peers, tokens) and errors (201-204).
 *
 * The decoder is bounded: a datagram above `maxPacketBytes`, or a response listing more than
 * `maxValues` peers or `maxNodes` nodes, is rejected before anything is kept of it.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { isNodeId, type NodeId, nodeIdBytes } from "./NodeId.js"
import type { PeerAddress } from "./Peer.js"

/** A node of the DHT: its id and where it answers. */
export interface NodeInfo {
  readonly id: NodeId
  readonly address: PeerAddress
}

export type KrpcQuery =
  | { readonly method: "ping"; readonly id: NodeId }
  | { readonly method: "find_node"; readonly id: NodeId; readonly target: NodeId }
  | { readonly method: "get_peers"; readonly id: NodeId; readonly infoHash: NodeId }
  | {
    readonly method: "announce_peer"
    readonly id: NodeId
    readonly infoHash: NodeId
    readonly port: number
    readonly token: Uint8Array
    /** Use the datagram's source port instead of `port` (BEP 5 `implied_port`). */
    readonly impliedPort: boolean
  }

export interface KrpcResponse {
  readonly id: NodeId
  readonly nodes?: ReadonlyArray<NodeInfo>
  readonly values?: ReadonlyArray<PeerAddress>
  readonly token?: Uint8Array
}

/** BEP 5's error codes. */
export const KrpcErrorCode = { Generic: 201, Server: 202, Protocol: 203, MethodUnknown: 204 } as const

export type KrpcMessage =
  | { readonly _tag: "Query"; readonly transaction: Uint8Array; readonly query: KrpcQuery }
  | { readonly _tag: "Response"; readonly transaction: Uint8Array; readonly response: KrpcResponse }
  | { readonly _tag: "Error"; readonly transaction: Uint8Array; readonly code: number; readonly text: string }

/** Larger datagrams are not KRPC we take (they fit a 1500-byte MTU in practice). */
export const maxPacketBytes = 4096
/** Peers a get_peers response may list. */
export const maxValues = 200
/** Nodes a response may list (implementations send 8, some up to 16). */
export const maxNodes = 32
const maxTransactionBytes = 16
const maxTokenBytes = 64
const maxErrorText = 256

export type KrpcFailure = "TooLarge" | "Bencode" | "NotAMessage" | "MissingField" | "BadField" | "UnknownMethod"

/** A datagram that is not a KRPC message we take; `transaction` is set when an error reply can name it. */
export class KrpcError extends Data.TaggedError("KrpcError")<{
  readonly reason: KrpcFailure
  readonly detail: string
  readonly transaction?: Uint8Array
}> {
  override get message() {
    return `invalid KRPC message (${this.reason}): ${this.detail}`
  }
}

// ---------------------------------------------------------------------------------------------
// Compact forms

const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/** `ip:port` in 6 bytes; undefined for a host that is not an IPv4 address. */
export const encodeCompactPeer = (p: PeerAddress): Uint8Array | undefined => {
  const m = ipv4.exec(p.host)
  if (m === null || p.port < 0 || p.port > 65535) return undefined
  const parts = m.slice(1, 5).map(Number)
  if (parts.some((n) => n > 255)) return undefined
  return Uint8Array.of(...parts, p.port >> 8, p.port & 0xff)
}

export const decodeCompactPeer = (bytes: Uint8Array, at = 0): PeerAddress => ({
  host: `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`,
  port: (bytes[at + 4]! << 8) | bytes[at + 5]!
})

const nodeInfoBytes = nodeIdBytes + 6

/** Compact node info: 26 bytes a node; nodes without an IPv4 address are left out. */
export const encodeNodes = (nodes: ReadonlyArray<NodeInfo>): Uint8Array => {
  const parts = nodes.flatMap((n) => {
    const peer = encodeCompactPeer(n.address)
    return peer === undefined ? [] : [[n.id, peer] as const]
  })
  const out = new Uint8Array(parts.length * nodeInfoBytes)
  parts.forEach(([id, peer], i) => {
    out.set(id, i * nodeInfoBytes)
    out.set(peer, i * nodeInfoBytes + nodeIdBytes)
  })
  return out
}

export const decodeNodes = (bytes: Uint8Array, limit: number): Either.Either<ReadonlyArray<NodeInfo>, KrpcError> => {
  if (bytes.length % nodeInfoBytes !== 0) return Either.left(bad("BadField", `nodes of ${bytes.length} bytes, not a multiple of 26`))
  const count = bytes.length / nodeInfoBytes
  if (count > limit) return Either.left(bad("TooLarge", `${count} nodes, more than ${limit}`))
  const nodes: Array<NodeInfo> = []
  for (let i = 0; i < count; i++) {
    const at = i * nodeInfoBytes
    nodes.push({ id: bytes.slice(at, at + nodeIdBytes), address: decodeCompactPeer(bytes, at + nodeIdBytes) })
  }
  return Either.right(nodes)
}

// ---------------------------------------------------------------------------------------------
// Encoding

const queryArguments = (q: KrpcQuery): Bencode.BencodeDict => {
  switch (q.method) {
    case "ping":
      return Bencode.dict({ id: q.id })
    case "find_node":
      return Bencode.dict({ id: q.id, target: q.target })
    case "get_peers":
      return Bencode.dict({ id: q.id, info_hash: q.infoHash })
    case "announce_peer":
      return Bencode.dict({
        id: q.id,
        info_hash: q.infoHash,
        port: Bencode.int(q.port),
        token: q.token,
        implied_port: q.impliedPort ? Bencode.int(1) : undefined
      })
  }
}

const responseBody = (r: KrpcResponse): Bencode.BencodeDict =>
  Bencode.dict({
    id: r.id,
    nodes: r.nodes === undefined ? undefined : encodeNodes(r.nodes),
    values: r.values?.flatMap((p) => encodeCompactPeer(p) ?? []),
    token: r.token
  })

export const encodeMessage = (m: KrpcMessage): Uint8Array => {
  switch (m._tag) {
    case "Query":
      return Bencode.encode(Bencode.dict({ t: m.transaction, y: Bencode.text("q"), q: Bencode.text(m.query.method), a: queryArguments(m.query) }))
    case "Response":
      return Bencode.encode(Bencode.dict({ t: m.transaction, y: Bencode.text("r"), r: responseBody(m.response) }))
    case "Error":
      return Bencode.encode(Bencode.dict({ t: m.transaction, y: Bencode.text("e"), e: [Bencode.int(m.code), Bencode.text(m.text)] }))
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

const bad = (reason: KrpcFailure, detail: string, transaction?: Uint8Array) =>
  new KrpcError({ reason, detail, ...(transaction === undefined ? {} : { transaction }) })

/** Reads fields of one dictionary, failing with the message's transaction for an error reply. */
class Fields {
  constructor(readonly dict: Bencode.BencodeDict, readonly where: string, readonly transaction: Uint8Array | undefined) {}

  fail(reason: KrpcFailure, detail: string): never {
    throw bad(reason, `${this.where}: ${detail}`, this.transaction)
  }
  optionalBytes(key: string, max: number): Uint8Array | undefined {
    const v = Bencode.get(this.dict, key)
    if (v === undefined) return undefined
    if (!Bencode.isBytes(v)) return this.fail("BadField", `${key} is not a byte string`)
    if (v.length > max) return this.fail("TooLarge", `${key} of ${v.length} bytes, more than ${max}`)
    return v
  }
  bytes(key: string, max: number): Uint8Array {
    return this.optionalBytes(key, max) ?? this.fail("MissingField", `no ${key}`)
  }
  id(key: string): NodeId {
    const v = this.bytes(key, nodeIdBytes)
    return isNodeId(v) ? v.slice() : this.fail("BadField", `${key} of ${v.length} bytes, not 20`)
  }
  optionalInt(key: string): bigint | undefined {
    const v = Bencode.get(this.dict, key)
    if (v === undefined) return undefined
    return Bencode.isInt(v) ? v : this.fail("BadField", `${key} is not an integer`)
  }
}

const parseQuery = (method: string, a: Fields): KrpcQuery => {
  const id = a.id("id")
  switch (method) {
    case "ping":
      return { method, id }
    case "find_node":
      return { method, id, target: a.id("target") }
    case "get_peers":
      return { method, id, infoHash: a.id("info_hash") }
    case "announce_peer": {
      const port = a.optionalInt("port")
      const impliedPort = (a.optionalInt("implied_port") ?? 0n) !== 0n
      if (!impliedPort && (port === undefined || port < 1n || port > 65535n)) return a.fail("BadField", "port missing or out of range")
      const token = a.bytes("token", maxTokenBytes).slice()
      return { method, id, infoHash: a.id("info_hash"), port: Number(port ?? 0n), token, impliedPort }
    }
    default:
      return a.fail("UnknownMethod", `method ${JSON.stringify(method.slice(0, 32))}`)
  }
}

const parseResponse = (r: Fields): KrpcResponse => {
  const id = r.id("id")
  const nodesBytes = r.optionalBytes("nodes", maxNodes * nodeInfoBytes)
  const decodedNodes = nodesBytes === undefined ? undefined : decodeNodes(nodesBytes, maxNodes)
  if (decodedNodes !== undefined && Either.isLeft(decodedNodes)) return r.fail(decodedNodes.left.reason, decodedNodes.left.detail)
  const nodes = decodedNodes?.right
  const token = r.optionalBytes("token", maxTokenBytes)?.slice()
  const rawValues = Bencode.get(r.dict, "values")
  let values: Array<PeerAddress> | undefined
  if (rawValues !== undefined) {
    if (!Bencode.isList(rawValues)) return r.fail("BadField", "values is not a list")
    if (rawValues.length > maxValues) return r.fail("TooLarge", `${rawValues.length} values, more than ${maxValues}`)
    // Entries that are not 6-byte compact IPv4 peers (IPv6 ones are 18) are skipped, not fatal.
    values = rawValues.flatMap((v) => (Bencode.isBytes(v) && v.length === 6 ? [decodeCompactPeer(v)] : []))
  }
  return { id, ...(nodes === undefined ? {} : { nodes }), ...(values === undefined ? {} : { values }), ...(token === undefined ? {} : { token }) }
}

const parseError = (top: Fields): { readonly code: number; readonly text: string } => {
  const e = Bencode.get(top.dict, "e")
  if (!Bencode.isList(e) || e.length < 2 || !Bencode.isInt(e[0]) || !Bencode.isBytes(e[1])) return top.fail("BadField", "e is not [code, message]")
  return { code: Number(e[0]), text: Bencode.toText(e[1].subarray(0, maxErrorText)) }
}

const subDict = (top: Fields, key: string, transaction: Uint8Array): Fields => {
  const v = Bencode.get(top.dict, key)
  if (v === undefined) return top.fail("MissingField", `no ${key}`)
  if (!Bencode.isDict(v)) return top.fail("BadField", `${key} is not a dictionary`)
  return new Fields(v, key, transaction)
}

const parseMessage = (top: Fields): KrpcMessage => {
  const transaction = top.bytes("t", maxTransactionBytes).slice()
  const t = new Fields(top.dict, "message", transaction)
  const kind = Bencode.toText(t.bytes("y", 1))
  switch (kind) {
    case "q":
      return { _tag: "Query", transaction, query: parseQuery(Bencode.toText(t.bytes("q", 64)), subDict(t, "a", transaction)) }
    case "r":
      return { _tag: "Response", transaction, response: parseResponse(subDict(t, "r", transaction)) }
    case "e":
      return { _tag: "Error", transaction, ...parseError(t) }
    default:
      return t.fail("BadField", `y is ${JSON.stringify(kind)}, not q, r or e`)
  }
}

/** Decodes one datagram; every failure is a typed `KrpcError`. */
export const decodeMessage = (bytes: Uint8Array): Either.Either<KrpcMessage, KrpcError> => {
  if (bytes.length > maxPacketBytes) return Either.left(bad("TooLarge", `${bytes.length} bytes, more than ${maxPacketBytes}`))
  const decoded = Bencode.decode(bytes)
  if (Either.isLeft(decoded)) return Either.left(bad("Bencode", decoded.left.message))
  if (!Bencode.isDict(decoded.right)) return Either.left(bad("NotAMessage", "not a dictionary"))
  try {
    return Either.right(parseMessage(new Fields(decoded.right, "message", undefined)))
  } catch (e) {
    if (e instanceof KrpcError) return Either.left(e)
    throw e
  }
}
