/**
 * Magnet links (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=<host:port>`.
 * The info hash is 40 hex digits or 32 base32 characters; `tr` and `x.pe` may repeat.
 */
import { Data, Either } from "effect"
import { fromHex } from "./Bytes.js"
import { parsePeer, type PeerAddress } from "./Peer.js"

export interface MagnetLink {
  readonly infoHash: Uint8Array
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
    let displayName: string | undefined
    const trackers: Array<string> = []
    const peers: Array<PeerAddress> = []
    for (const param of m[1]!.split("&")) {
      const eq = param.indexOf("=")
      if (eq < 0) continue
      const key = param.slice(0, eq)
      const value = yield* decodeComponent(key, param.slice(eq + 1), key === "dn")
      // BEP 9 allows numbered duplicates (`xt.1`); the first BitTorrent v1 hash is the one we use.
      if ((key === "xt" || key.startsWith("xt.")) && infoHash === undefined && value.toLowerCase().startsWith(btihPrefix)) {
        infoHash = yield* parseInfoHash(value)
      } else if (key === "dn" && displayName === undefined) {
        displayName = value
      } else if (key === "tr" || key.startsWith("tr.")) {
        trackers.push(value)
      } else if (key === "x.pe") {
        const peer = parsePeer(value)
        if (peer !== undefined) peers.push(peer)
      }
    }
    if (infoHash === undefined) return yield* fail("MissingInfoHash", "no 'xt=urn:btih:<info hash>' parameter")
    return displayName === undefined ? { infoHash, trackers, peers } : { infoHash, displayName, trackers, peers }
  })
