/**
 * Local service discovery (BEP 14): the `BT-SEARCH` datagram a client multicasts on its local
 * network to say which torrents it has and on which port it takes peers. Decoding is lenient
 * (header names in any case, unknown headers and bad info hash lines skipped, `\n` line ends)
 * and bounded (a datagram of at most `maxLsdDatagram` bytes, at most `maxLsdInfoHashes` hashes).
 */
import { Data, Either } from "effect"
import { fromHex, toHex } from "./Bytes.js"

/** The IPv4 group and port (BEP 14). */
export const lsdGroup4 = { host: "239.192.152.143", port: 6771 } as const
/** The IPv6 group (organisation-local scope). */
export const lsdGroup6 = { host: "ff15::efc0:988f", port: 6771 } as const
/** Below a typical MTU: larger datagrams are not read. */
export const maxLsdDatagram = 1400
/** Info hashes read from one datagram (and put in one by `encodeLsdAnnounce` callers). */
export const maxLsdInfoHashes = 20

export interface LsdAnnounce {
  /** Where the announcer takes peers (on the address the datagram came from). */
  readonly port: number
  readonly infoHashes: ReadonlyArray<Uint8Array>
  /** Lets a client recognise its own datagrams looped back to it. */
  readonly cookie?: string
}

export type LsdErrorReason = "TooLarge" | "NotBtSearch" | "BadPort" | "NoInfoHash"

export class LsdError extends Data.TaggedError("LsdError")<{ readonly reason: LsdErrorReason; readonly detail: string }> {
  override get message() {
    return `local service discovery: ${this.detail}`
  }
}

const requestLine = "BT-SEARCH * HTTP/1.1"
const fail = (reason: LsdErrorReason, detail: string) => Either.left(new LsdError({ reason, detail }))

/** The datagram for `announce`, naming `group` as its Host (`[v6]:port` for IPv6). */
export const encodeLsdAnnounce = (announce: LsdAnnounce, group: { readonly host: string; readonly port: number } = lsdGroup4): Uint8Array => {
  const host = group.host.includes(":") ? `[${group.host}]:${group.port}` : `${group.host}:${group.port}`
  const lines = [
    requestLine,
    `Host: ${host}`,
    `Port: ${announce.port}`,
    ...announce.infoHashes.map((h) => `Infohash: ${toHex(h)}`),
    ...(announce.cookie === undefined ? [] : [`cookie: ${announce.cookie}`])
  ]
  return new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n\r\n`)
}

const header = /^([A-Za-z0-9-]+)[ \t]*:[ \t]*(.*?)[ \t]*$/

export const decodeLsdAnnounce = (datagram: Uint8Array): Either.Either<LsdAnnounce, LsdError> => {
  if (datagram.length > maxLsdDatagram) return fail("TooLarge", `a datagram of ${datagram.length} bytes (at most ${maxLsdDatagram})`)
  const lines = new TextDecoder("latin1").decode(datagram).split(/\r?\n/)
  if (lines[0]?.trim() !== requestLine) return fail("NotBtSearch", "not a BT-SEARCH request")
  let port: number | undefined
  let cookie: string | undefined
  const infoHashes: Array<Uint8Array> = []
  for (const line of lines.slice(1)) {
    const m = header.exec(line)
    if (m === null) continue
    const name = m[1]!.toLowerCase()
    const value = m[2]!
    if (name === "port") port = /^\d{1,5}$/.test(value) ? Number(value) : 0
    else if (name === "cookie") cookie = value
    else if (name === "infohash" && infoHashes.length < maxLsdInfoHashes) {
      const hash = fromHex(value, 20)
      if (hash !== undefined) infoHashes.push(hash)
    }
  }
  if (port === undefined || port < 1 || port > 65535) return fail("BadPort", "no Port header from 1 to 65535")
  if (infoHashes.length === 0) return fail("NoInfoHash", "no Infohash header of 40 hex digits")
  return Either.right({ port, infoHashes, ...(cookie === undefined ? {} : { cookie }) })
}
