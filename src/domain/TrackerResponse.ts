/**
 * Tracker protocol codecs, pure: the HTTP announce query (BEP 3), the HTTP tracker's bencoded body
 * (BEP 3, 23 compact peers, 7 `peers6`), and the UDP tracker packets (BEP 15, BEP 41 URL data).
 * The Tracker service (src/services/Tracker.ts) does the I/O around them.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import type { PeerAddress } from "./Peer.js"

export interface AnnounceRequest {
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
  readonly port: number
  readonly uploaded: number
  readonly downloaded: number
  readonly left: number
  readonly event?: "started" | "completed" | "stopped"
  readonly numWant?: number
}

export interface AnnounceResponse {
  readonly peers: ReadonlyArray<PeerAddress>
  /** Seconds until the next regular announce. */
  readonly interval: number
  readonly minInterval?: number
  readonly complete?: number
  readonly incomplete?: number
  readonly warning?: string
}

export type TrackerErrorReason = "Unreachable" | "Timeout" | "HttpStatus" | "Failure" | "Malformed" | "Unsupported"

/** An announce that did not give peers: which tracker, what kind of failure and the facts behind it. */
export class TrackerError extends Data.TaggedError("TrackerError")<{
  readonly url: string
  readonly reason: TrackerErrorReason
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    const what: Record<TrackerErrorReason, string> = {
      Unreachable: "unreachable",
      Timeout: "timed out",
      HttpStatus: "answered with an HTTP error",
      Failure: "refused the announce",
      Malformed: "sent a malformed response",
      Unsupported: "is not supported"
    }
    // No URL: there was no tracker to ask at all.
    return this.url === "" ? this.detail : `tracker ${this.url} ${what[this.reason]}: ${this.detail}`
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

const HEX = "0123456789ABCDEF"

const isUnreserved = (b: number): boolean =>
  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
  b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e

/** Percent-encodes raw bytes: `A-Za-z0-9-._~` stay, every other byte becomes `%XX` (never UTF-8 re-encoded). */
export const percentEncodeBytes = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    out += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`
  }
  return out
}

/**
 * The full announce URL, query built by hand (URLSearchParams would re-encode the
 * binary info_hash). An announce URL that already has a query gets ours appended with `&`.
 */
export const announceUrl = (announce: string, request: AnnounceRequest): string => {
  const params = [
    `info_hash=${percentEncodeBytes(request.infoHash)}`,
    `peer_id=${percentEncodeBytes(request.peerId)}`,
    `port=${request.port}`,
    `uploaded=${request.uploaded}`,
    `downloaded=${request.downloaded}`,
    `left=${request.left}`,
    "compact=1"
  ]
  if (request.numWant !== undefined) params.push(`numwant=${request.numWant}`)
  if (request.event !== undefined) params.push(`event=${request.event}`)
  const separator = !announce.includes("?") ? "?" : announce.endsWith("?") || announce.endsWith("&") ? "" : "&"
  return `${announce}${separator}${params.join("&")}`
}

/** Why an HTTP tracker body gave no answer: the tracker said no (`Failure`) or the body is not bencode we understand. */
export class TrackerBodyError extends Data.TaggedError("TrackerBodyError")<{
  readonly reason: "Failure" | "Malformed"
  readonly detail: string
}> {
  override get message() {
    return this.reason === "Failure" ? `tracker failure: ${this.detail}` : `malformed tracker response: ${this.detail}`
  }
}

const malformed = (detail: string) => new TrackerBodyError({ reason: "Malformed", detail })

/** RFC 5952 text of a 16-byte IPv6 address: lowercase, no leading zeros, the longest zero run as `::`. */
export const formatIpv6 = (bytes: Uint8Array, at = 0): string => {
  const groups: Array<number> = []
  for (let i = 0; i < 8; i++) groups.push((bytes[at + 2 * i]! << 8) | bytes[at + 2 * i + 1]!)
  let bestStart = -1
  let bestLength = 1 // a single zero group is not shortened
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i]
    i = j
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(":")
  return bestStart < 0 ? hex(0, 8) : `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`
}

/**
 * Compact peers: 4-byte IPv4 (or 16-byte IPv6) address then a big-endian port, per entry.
 * Port 0 (not dialable) and repeated addresses are dropped.
 */
export const decodeCompactPeers = (
  bytes: Uint8Array,
  family: 4 | 6,
  into: Array<PeerAddress> = [],
  seen: Set<string> = new Set()
): Either.Either<Array<PeerAddress>, TrackerBodyError> => {
  const size = family === 4 ? 6 : 18
  if (bytes.length % size !== 0) {
    return Either.left(malformed(`compact ${family === 4 ? "peers" : "peers6"} of ${bytes.length} bytes is not a multiple of ${size}`))
  }
  for (let at = 0; at < bytes.length; at += size) {
    const port = (bytes[at + size - 2]! << 8) | bytes[at + size - 1]!
    const host = family === 4 ? `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}` : formatIpv6(bytes, at)
    addPeer(into, seen, host, port)
  }
  return Either.right(into)
}

const addPeer = (into: Array<PeerAddress>, seen: Set<string>, host: string, port: number) => {
  if (port === 0) return
  const key = `${host}|${port}`
  if (seen.has(key)) return
  seen.add(key)
  into.push({ host, port })
}

const smallInt = (d: Bencode.BencodeDict, key: string): Either.Either<number | undefined, TrackerBodyError> => {
  const v = Bencode.get(d, key)
  if (v === undefined) return Either.right(undefined)
  if (!Bencode.isInt(v) || v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    return Either.left(malformed(`'${key}' is not a non-negative integer`))
  }
  return Either.right(Number(v))
}

/** Peers given as a list of `{ ip, port }` dictionaries (the original, non-compact form). */
const decodeDictPeers = (
  list: Bencode.BencodeList,
  into: Array<PeerAddress>,
  seen: Set<string>
): Either.Either<Array<PeerAddress>, TrackerBodyError> => {
  for (const [i, entry] of list.entries()) {
    const ip = Bencode.isDict(entry) ? Bencode.get(entry, "ip") : undefined
    const port = Bencode.isDict(entry) ? Bencode.get(entry, "port") : undefined
    if (!Bencode.isBytes(ip) || !Bencode.isInt(port) || port < 0n || port > 65535n) {
      return Either.left(malformed(`peer ${i} is not a dictionary with 'ip' and 'port'`))
    }
    addPeer(into, seen, Bencode.toText(ip), Number(port))
  }
  return Either.right(into)
}

/** When a tracker leaves out `interval` (required by BEP 3), announce again after this many seconds. */
export const defaultInterval = 1800

/**
 * Parses an HTTP tracker's response body (bytes, never text). A `failure reason` gives a `Failure`;
 * anything that is not the expected dictionary gives `Malformed`, with the bencode offset when the
 * bencode itself is broken.
 */
export const parseHttpResponse = (body: Uint8Array): Either.Either<AnnounceResponse, TrackerBodyError> =>
  Either.gen(function* () {
    const value = yield* Either.mapLeft(Bencode.decode(body), (e) =>
      malformed(`${e.message} (body of ${body.length} bytes)`)
    )
    if (!Bencode.isDict(value)) return yield* Either.left(malformed("the body is not a bencoded dictionary"))
    const failure = Bencode.get(value, "failure reason")
    if (failure !== undefined) {
      return yield* Either.left(
        new TrackerBodyError({ reason: "Failure", detail: Bencode.isBytes(failure) ? Bencode.toText(failure) : Bencode.toJson(failure) })
      )
    }
    const peers: Array<PeerAddress> = []
    const seen = new Set<string>()
    const list = Bencode.get(value, "peers")
    if (Bencode.isBytes(list)) yield* decodeCompactPeers(list, 4, peers, seen)
    else if (Bencode.isList(list)) yield* decodeDictPeers(list, peers, seen)
    else if (list !== undefined) return yield* Either.left(malformed("'peers' is neither a string nor a list"))
    const list6 = Bencode.get(value, "peers6")
    if (Bencode.isBytes(list6)) yield* decodeCompactPeers(list6, 6, peers, seen)
    else if (list6 !== undefined) return yield* Either.left(malformed("'peers6' is not a string"))
    const interval = yield* smallInt(value, "interval")
    const minInterval = yield* smallInt(value, "min interval")
    const complete = yield* smallInt(value, "complete")
    const incomplete = yield* smallInt(value, "incomplete")
    const warning = Bencode.get(value, "warning message")
    return {
      peers,
      interval: interval ?? defaultInterval,
      ...(minInterval !== undefined ? { minInterval } : {}),
      ...(complete !== undefined ? { complete } : {}),
      ...(incomplete !== undefined ? { incomplete } : {}),
      ...(Bencode.isBytes(warning) ? { warning: Bencode.toText(warning) } : {})
    }
  })

// ---------------------------------------------------------------------------------------------
// UDP (BEP 15)

/** The magic connection id of a connect request. */
export const udpProtocolId = 0x41727101980n

/** How long a connection id from a UDP tracker stays valid (BEP 15). */
export const udpConnectionLifetimeMillis = 60_000

export const UdpAction = { Connect: 0, Announce: 1, Scrape: 2, Error: 3 } as const

const eventCode = { none: 0, completed: 1, started: 2, stopped: 3 } as const

export interface UdpTarget {
  readonly host: string
  readonly port: number
  /** Path and query after the port (`/announce?x=1`), sent as BEP 41 URL data; empty when absent. */
  readonly urlData: string
}

/** Host, port and path of `udp://host:port[/path]`; undefined when the URL is not that. */
export const parseUdpUrl = (url: string): UdpTarget | undefined => {
  if (!URL.canParse(url)) return undefined
  const u = new URL(url)
  if (u.protocol !== "udp:" || u.hostname === "" || u.port === "") return undefined
  const path = u.pathname === "/" ? "" : u.pathname
  return {
    host: u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname,
    port: Number(u.port),
    urlData: `${path}${u.search}`
  }
}

/** Connect request: protocol id, action 0, transaction id (16 bytes). */
export const encodeUdpConnect = (transactionId: number): Uint8Array => {
  const out = new Uint8Array(16)
  const view = new DataView(out.buffer)
  view.setBigUint64(0, udpProtocolId)
  view.setUint32(8, UdpAction.Connect)
  view.setUint32(12, transactionId >>> 0)
  return out
}

/** Caps the 64-bit counters: a negative or fractional count is a caller bug, but must not wrap on the wire. */
const u64 = (n: number): bigint => BigInt(Math.max(0, Math.floor(n)))

/**
 * Announce request (98 bytes, BEP 15), followed by the URL path as BEP 41 options when there is one
 * (trackers that serve several announce paths use it; others ignore trailing bytes).
 */
export const encodeUdpAnnounce = (options: {
  readonly connectionId: bigint
  readonly transactionId: number
  readonly key: number
  readonly request: AnnounceRequest
  readonly urlData: string
}): Uint8Array => {
  const { connectionId, key, request, transactionId } = options
  const urlData = Bencode.text(options.urlData)
  const chunks = Math.ceil(urlData.length / 255)
  const out = new Uint8Array(98 + (chunks > 0 ? chunks * 2 + urlData.length + 1 : 0))
  const view = new DataView(out.buffer)
  view.setBigUint64(0, connectionId)
  view.setUint32(8, UdpAction.Announce)
  view.setUint32(12, transactionId >>> 0)
  out.set(request.infoHash.subarray(0, 20), 16)
  out.set(request.peerId.subarray(0, 20), 36)
  view.setBigUint64(56, u64(request.downloaded))
  view.setBigUint64(64, u64(request.left))
  view.setBigUint64(72, u64(request.uploaded))
  view.setUint32(80, eventCode[request.event ?? "none"])
  view.setUint32(84, 0) // IP address: 0 = the packet's source address
  view.setUint32(88, key >>> 0)
  view.setInt32(92, request.numWant ?? -1)
  view.setUint16(96, request.port)
  let at = 98
  for (let i = 0; i < chunks; i++) {
    const part = urlData.subarray(i * 255, (i + 1) * 255)
    out[at++] = 2 // option type URLData
    out[at++] = part.length
    out.set(part, at)
    at += part.length
  }
  if (chunks > 0) out[at] = 0 // EndOfOptions
  return out
}

export type UdpResponse =
  | { readonly _tag: "Connect"; readonly transactionId: number; readonly connectionId: bigint }
  | { readonly _tag: "Announce"; readonly transactionId: number; readonly response: AnnounceResponse }
  | { readonly _tag: "Error"; readonly transactionId: number; readonly message: string }

/** The transaction id of a response packet, read first so that stray packets can be ignored; undefined when too short. */
export const udpTransactionId = (packet: Uint8Array): number | undefined =>
  packet.length < 8 ? undefined : new DataView(packet.buffer, packet.byteOffset, packet.byteLength).getUint32(4)

/**
 * Decodes a UDP tracker response. `family` is the tracker's address family: an IPv6 tracker lists
 * 18-byte peers, an IPv4 one 6-byte peers (BEP 15).
 */
export const decodeUdpResponse = (packet: Uint8Array, family: 4 | 6): Either.Either<UdpResponse, TrackerBodyError> => {
  if (packet.length < 8) return Either.left(malformed(`a UDP packet of ${packet.length} bytes`))
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength)
  const action = view.getUint32(0)
  const transactionId = view.getUint32(4)
  switch (action) {
    case UdpAction.Connect:
      return packet.length < 16
        ? Either.left(malformed(`a connect response of ${packet.length} bytes (16 expected)`))
        : Either.right({ _tag: "Connect", transactionId, connectionId: view.getBigUint64(8) })
    case UdpAction.Announce: {
      if (packet.length < 20) return Either.left(malformed(`an announce response of ${packet.length} bytes (at least 20 expected)`))
      const body = packet.subarray(20)
      // Some trackers pad the datagram: ignore a trailing partial entry rather than lose the list.
      const size = family === 4 ? 6 : 18
      return Either.map(decodeCompactPeers(body.subarray(0, body.length - (body.length % size)), family), (peers) => ({
        _tag: "Announce" as const,
        transactionId,
        response: { peers, interval: view.getUint32(8), incomplete: view.getUint32(12), complete: view.getUint32(16) }
      }))
    }
    case UdpAction.Error:
      return Either.right({ _tag: "Error", transactionId, message: Bencode.toText(packet.subarray(8)) })
    default:
      return Either.left(malformed(`unknown UDP action ${action}`))
  }
}
