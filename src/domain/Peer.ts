/** A peer's network address, as trackers list it and as we dial it. */
export interface PeerAddress {
  readonly host: string
  readonly port: number
}

/**
 * What a source told us of a candidate peer (the flags of a PEX entry), so that we dial it the
 * way it takes connections. Hints are guesses: every dial keeps its fallback.
 */
export interface PeerHints {
  /** It takes MSE: dialled encrypted first, plaintext the fallback. */
  readonly encryption: boolean
  /** It speaks uTP: dialled over uTP first, TCP the fallback. */
  readonly utp: boolean
  /** It has every piece: a peer that wants nothing more has nothing to trade with it. */
  readonly seed: boolean
}

export const noHints: PeerHints = { encryption: false, utp: false, seed: false }

/** An address to dial, with what its source told of it. */
export interface PeerCandidate {
  readonly address: PeerAddress
  readonly hints: PeerHints
}

/** `ip:port`, with brackets around IPv6 hosts (`[::1]:6881`). */
export const formatPeer = (p: PeerAddress): string => (p.host.includes(":") ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`)

/** Parses `ip:port` or `[ipv6]:port`; undefined when it is not that. */
export const parsePeer = (text: string): PeerAddress | undefined => {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[2])
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined
}

/**
 * Whether a listed peer is this client itself: trackers list the announcer back (opentracker
 * does), and on one machine that is a loopback host with the port we announced.
 */
export const isOwnAddress = (p: PeerAddress, announcedPort: number): boolean =>
  p.port === announcedPort &&
  (p.host.startsWith("127.") || p.host === "::1" || p.host === "0.0.0.0" || p.host === "localhost")

/** Ports tried after a taken listen port, before any free one. */
const fallbackPorts = 8

/**
 * The ports to try binding, in order: the one asked for; with `fallback`, the next few and then
 * any free one (0). Port 0 is any free port already.
 */
export const listenPortCandidates = (port: number, fallback: boolean): ReadonlyArray<number> =>
  port === 0 || !fallback
    ? [port]
    : [...Array.from({ length: fallbackPorts + 1 }, (_, i) => port + i).filter((p) => p <= 65535), 0]

/** Our 20-byte peer id: Azureus style client tag `-EB0010-` followed by 12 random bytes. */
export const clientTag = "-EB0010-"

export const makePeerId = (random: (n: number) => Uint8Array): Uint8Array => {
  const id = new Uint8Array(20)
  id.set(new TextEncoder().encode(clientTag), 0)
  id.set(random(12), 8)
  return id
}
