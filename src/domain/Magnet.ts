/**
 * Magnet links (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=<host:port>`.
 * The info hash is 40 hex digits or 32 base32 characters; `tr` and `x.pe` may repeat. A v2 torrent
 * (BEP 52) is `xt=urn:btmh:1220<64 hex>` (a SHA-256 multihash), a hybrid carries both `xt`s.
 */
import { Data, Either } from "effect"
import { fromHex } from "./Bytes.js"
import { parsePeer, type PeerAddress } from "./Peer.js"

export interface MagnetLink {
  /** The swarm's 20-byte id: the v1 info hash, or for a v2-only link the v2 hash's first 20 bytes. */
  readonly infoHash: Uint8Array
  /** The v2 info hash (SHA-256, 32 bytes) of a `urn:btmh` link. */
  readonly infoHashV2?: Uint8Array
  readonly displayName?: string
  /** Tracker URLs in link order, percent-decoded. */
  readonly trackers: ReadonlyArray<string>
  /** Peers given directly (`x.pe`); malformed ones are skipped. */
  readonly peers: ReadonlyArray<PeerAddress>
}

export class MagnetError extends Data.TaggedError("MagnetError")<{
  readonly reason: "NotAMagnet" | "MissingInfoHash" | "InvalidInfoHash" | "BadEncoding"
  readonly detail: string
}> {
  override get message() {
    return `invalid magnet link: ${this.detail}`
  }
}

const fail = (reason: MagnetError["reason"], detail: string) => Either.left(new MagnetError({ reason, detail }))

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

/** RFC 4648 base32 without padding, 32 characters to 20 bytes; undefined when it is not that. */
const fromBase32 = (text: string): Uint8Array | undefined => {
  if (text.length !== 32) return undefined
  const out = new Uint8Array(20)
  let bits = 0
  let acc = 0
  let at = 0
  for (const ch of text.toUpperCase()) {
    const v = BASE32.indexOf(ch)
    if (v < 0) return undefined
    acc = (acc << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[at++] = (acc >> bits) & 0xff
    }
  }
  return out
}

const btihPrefix = "urn:btih:"

const parseInfoHash = (xt: string): Either.Either<Uint8Array, MagnetError> => {
  const hash = xt.slice(btihPrefix.length)
  const bytes = fromHex(hash, 20) ?? fromBase32(hash)
  return bytes === undefined
    ? fail("InvalidInfoHash", `${JSON.stringify(hash)} is neither 40 hex digits nor 32 base32 characters`)
    : Either.right(bytes)
}

const btmhPrefix = "urn:btmh:"
/** Multihash header of a SHA-256 digest: function 0x12, 32 bytes. */
const sha256Multihash = "1220"

const parseInfoHashV2 = (xt: string): Either.Either<Uint8Array, MagnetError> => {
  const multihash = xt.slice(btmhPrefix.length).toLowerCase()
  const bytes = multihash.startsWith(sha256Multihash) ? fromHex(multihash.slice(sha256Multihash.length), 32) : undefined
  return bytes === undefined
    ? fail("InvalidInfoHash", `${JSON.stringify(multihash)} is not a SHA-256 multihash ('1220' and 64 hex digits)`)
    : Either.right(bytes)
}

/** Percent-decoding of a query value; `+` means a space only where the caller says so (`dn`). */
const decodeComponent = (key: string, value: string, plusIsSpace: boolean): Either.Either<string, MagnetError> => {
  try {
    return Either.right(decodeURIComponent(plusIsSpace ? value.replaceAll("+", " ") : value))
  } catch {
    return fail("BadEncoding", `${key}=${value} is not valid percent-encoding`)
  }
}

export const parseMagnet = (text: string): Either.Either<MagnetLink, MagnetError> =>
  Either.gen(function* () {
    const m = /^magnet:\?(.*)$/is.exec(text.trim())
    if (m === null) return yield* fail("NotAMagnet", "it must start with 'magnet:?'")
    let infoHash: Uint8Array | undefined
    let infoHashV2: Uint8Array | undefined
    let badV2: MagnetError | undefined
    let displayName: string | undefined
    const trackers: Array<string> = []
    const peers: Array<PeerAddress> = []
    for (const param of m[1]!.split("&")) {
      const eq = param.indexOf("=")
      if (eq < 0) continue
      const key = param.slice(0, eq)
      const value = yield* decodeComponent(key, param.slice(eq + 1), key === "dn")
      // BEP 9 allows numbered duplicates (`xt.1`); the first BitTorrent v1 hash is the one we use.
      const isXt = key === "xt" || key.startsWith("xt.")
      if (isXt && infoHash === undefined && value.toLowerCase().startsWith(btihPrefix)) {
        infoHash = yield* parseInfoHash(value)
      } else if (isXt && infoHashV2 === undefined && badV2 === undefined && value.toLowerCase().startsWith(btmhPrefix)) {
        // A malformed v2 hash beside a good v1 one is skipped, as other xt kinds are.
        Either.match(parseInfoHashV2(value), { onLeft: (e) => (badV2 = e), onRight: (h) => (infoHashV2 = h) })
      } else if (key === "dn" && displayName === undefined) {
        displayName = value
      } else if (key === "tr" || key.startsWith("tr.")) {
        trackers.push(value)
      } else if (key === "x.pe") {
        const peer = parsePeer(value)
        if (peer !== undefined) peers.push(peer)
      }
    }
    infoHash ??= infoHashV2?.slice(0, 20)
    if (infoHash === undefined && badV2 !== undefined) return yield* Either.left(badV2)
    if (infoHash === undefined) return yield* fail("MissingInfoHash", "no 'xt=urn:btih:<info hash>' or 'xt=urn:btmh:1220<v2 info hash>' parameter")
    return {
      infoHash,
      ...(infoHashV2 === undefined ? {} : { infoHashV2 }),
      ...(displayName === undefined ? {} : { displayName }),
      trackers,
      peers
    }
  })
