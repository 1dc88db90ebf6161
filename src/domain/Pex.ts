/**
 * Peer exchange (BEP 11, `ut_pex`): the codec of its messages (compact `added`/`added.f`/
 * `dropped`, and `added6`/`added6.f`/`dropped6` for IPv6), `pexHints`, which reads an entry's
 * flags as dial hints, and `pexDiff`, which works out what to tell one peer given whom we are
 * connected to now and what we told it before.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { compactIp } from "./Extension.js"
import { formatPeer, type PeerAddress, type PeerHints } from "./Peer.js"
import { formatIpv6 } from "./TrackerResponse.js"

/** The bits of `added.f`, one byte per added peer. */
export const PexFlag = {
  PrefersEncryption: 0x01,
  /** A seed, or a peer that only uploads. */
  Seed: 0x02,
  SupportsUtp: 0x04,
  SupportsHolepunch: 0x08,
  /** We reached it by dialling: it accepts connections. */
  Reachable: 0x10
} as const

export interface PexPeer {
  readonly address: PeerAddress
  readonly flags: number
}

/** An entry's flags as dial hints; the holepunch and reachable bits change nothing in how we dial. */
export const pexHints = (flags: number): PeerHints => ({
  encryption: (flags & PexFlag.PrefersEncryption) !== 0,
  utp: (flags & PexFlag.SupportsUtp) !== 0,
  seed: (flags & PexFlag.Seed) !== 0
})

export interface PexMessage {
  readonly added: ReadonlyArray<PexPeer>
  readonly dropped: ReadonlyArray<PeerAddress>
}

/** Peers we put in one message's `added` (BEP 11 asks for at most 50). */
export const maxPexAdded = 50
/**
 * Entries we read from one list of a message; the rest is ignored. Real clients send at most 50
 * (libtorrent up to 100 dropped); more only makes a lying peer's message cost us more.
 */
export const maxPexDecoded = 200

export type PexErrorReason =
  /** Not bencode, not a dictionary, or a known key of the wrong type. */
  | "Malformed"
  /** A compact list not a multiple of its entry size, or flags not one byte per added peer. */
  | "BadLength"

export class PexError extends Data.TaggedError("PexError")<{ readonly reason: PexErrorReason; readonly detail: string }> {
  override get message() {
    return `ut_pex message: ${this.detail}`
  }
}

type Parsed<A> = Either.Either<A, PexError>

const fail = (reason: PexErrorReason, detail: string): Parsed<never> => Either.left(new PexError({ reason, detail }))

// ---------------------------------------------------------------------------------------------
// Encoding

const compactEntry = (address: PeerAddress, family: 4 | 6): Uint8Array | undefined => {
  const ip = compactIp(address.host)
  if (ip === undefined || ip.length !== (family === 4 ? 4 : 16)) return undefined
  const entry = new Uint8Array(ip.length + 2)
  entry.set(ip, 0)
  entry[ip.length] = address.port >> 8
  entry[ip.length + 1] = address.port & 0xff
  return entry
}

/** The compact list of one family's addresses (others, and hosts that are not IP addresses, are skipped), with their flags. */
const compactList = (peers: ReadonlyArray<PexPeer>, family: 4 | 6) => {
  const entries: Array<Uint8Array> = []
  const flags: Array<number> = []
  for (const p of peers) {
    const entry = compactEntry(p.address, family)
    if (entry === undefined) continue
    entries.push(entry)
    flags.push(p.flags & 0xff)
  }
  const bytes = new Uint8Array(entries.length * (family === 4 ? 6 : 18))
  entries.forEach((e, i) => bytes.set(e, i * e.length))
  return { bytes, flags: Uint8Array.from(flags) }
}

/** The payload of a ut_pex message (to follow the receiver's extended id). Every key is present, empty lists too. */
export const encodePex = (m: PexMessage): Uint8Array => {
  const dropped = m.dropped.map((address) => ({ address, flags: 0 }))
  const added4 = compactList(m.added, 4)
  const added6 = compactList(m.added, 6)
  return Bencode.encode(
    Bencode.dict({
      added: added4.bytes,
      "added.f": added4.flags,
      added6: added6.bytes,
      "added6.f": added6.flags,
      dropped: compactList(dropped, 4).bytes,
      dropped6: compactList(dropped, 6).bytes
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Decoding

const bytesField = (d: Bencode.BencodeDict, key: string): Parsed<Uint8Array> => {
  const v = Bencode.get(d, key)
  if (v === undefined) return Either.right(new Uint8Array(0))
  return Bencode.isBytes(v) ? Either.right(v) : fail("Malformed", `${key} must be a byte string`)
}

/** The addresses of a compact list, at most `maxPexDecoded` of them. */
const decodeList = (bytes: Uint8Array, family: 4 | 6, key: string): Parsed<Array<PeerAddress>> => {
  const size = family === 4 ? 6 : 18
  if (bytes.length % size !== 0) return fail("BadLength", `${key} has ${bytes.length} bytes, not a multiple of ${size}`)
  const out: Array<PeerAddress> = []
  for (let at = 0; at < bytes.length && out.length < maxPexDecoded; at += size) {
    const host = family === 4 ? `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}` : formatIpv6(bytes, at)
    out.push({ host, port: (bytes[at + size - 2]! << 8) | bytes[at + size - 1]! })
  }
  return Either.right(out)
}

const decodeAdded = (d: Bencode.BencodeDict, key: string, family: 4 | 6): Parsed<Array<PexPeer>> =>
  Either.gen(function* () {
    const raw = yield* bytesField(d, key)
    const addresses = yield* decodeList(raw, family, key)
    const rawFlags = Bencode.get(d, `${key}.f`)
    if (rawFlags === undefined) return addresses.map((address) => ({ address, flags: 0 }))
    if (!Bencode.isBytes(rawFlags)) return yield* fail("Malformed", `${key}.f must be a byte string`)
    const count = raw.length / (family === 4 ? 6 : 18)
    if (rawFlags.length !== count) return yield* fail("BadLength", `${key}.f has ${rawFlags.length} bytes for ${count} peers`)
    return addresses.map((address, i) => ({ address, flags: rawFlags[i]! }))
  })

/**
 * Decodes a ut_pex payload. Unknown keys are ignored and missing lists are empty; a known key of
 * the wrong type or length fails. Each list is read up to `maxPexDecoded` entries; entries with
 * port 0 (not dialable) are dropped.
 */
export const decodePex = (payload: Uint8Array): Parsed<PexMessage> =>
  Either.gen(function* () {
    const value = yield* Either.mapLeft(Bencode.decode(payload), (e) => new PexError({ reason: "Malformed", detail: e.message }))
    if (!Bencode.isDict(value)) return yield* fail("Malformed", "not a dictionary")
    const added = [...(yield* decodeAdded(value, "added", 4)), ...(yield* decodeAdded(value, "added6", 6))]
    const dropped = [
      ...(yield* decodeList(yield* bytesField(value, "dropped"), 4, "dropped")),
      ...(yield* decodeList(yield* bytesField(value, "dropped6"), 6, "dropped6"))
    ]
    return { added: added.filter((p) => p.address.port !== 0), dropped: dropped.filter((a) => a.port !== 0) }
  })

// ---------------------------------------------------------------------------------------------
// What to tell a peer

/** Peers by `formatPeer` key. */
export type PexPeers = ReadonlyMap<string, PexPeer>

export const pexPeers = (peers: Iterable<PexPeer>): PexPeers => new Map([...peers].map((p) => [formatPeer(p.address), p]))

export interface PexDiff {
  /** Nothing to say when both lists are empty. */
  readonly message: PexMessage
  /** What the peer knows from us once it has this message: the next diff's `sent`. */
  readonly sent: PexPeers
}

/**
 * The message that brings a peer from `sent` (what we told it) towards `connected` (whom we are
 * connected to now): the peers gone as dropped, and up to `maxAdded` new ones (or ones whose
 * flags changed) as added. The rest are added by later diffs: repeated diffs against the same
 * `connected` reach it, then say nothing.
 */
export const pexDiff = (sent: PexPeers, connected: PexPeers, maxAdded = maxPexAdded): PexDiff => {
  const next = new Map(sent)
  const dropped: Array<PeerAddress> = []
  for (const [key, p] of sent) {
    if (connected.has(key)) continue
    dropped.push(p.address)
    next.delete(key)
  }
  const added: Array<PexPeer> = []
  for (const [key, p] of connected) {
    if (added.length >= maxAdded) break
    if (sent.get(key)?.flags === p.flags) continue
    added.push(p)
    next.set(key, p)
  }
  return { message: { added, dropped }, sent: next }
}

export const isEmptyPex = (m: PexMessage): boolean => m.added.length === 0 && m.dropped.length === 0
