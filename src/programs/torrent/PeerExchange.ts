/**
 * Peer exchange for one torrent (BEP 11, `ut_pex` over the extension protocol): each peer that
 * offers it hears, at most once a minute, which peers we are connected to (their listen
 * addresses) and which we lost since; the peers they tell us of become candidates, with their
 * flags as dial hints (uTP first, MSE first, a seed). Private
 * torrents (BEP 27) have none: the torrent then neither offers nor answers ut_pex.
 */
import { Either } from "effect"
import { type ExtendedHandshake, peerExtensionId, utPexName } from "../../domain/Extension.js"
import type { PeerCandidate } from "../../domain/Peer.js"
import { decodePex, encodePex, isEmptyPex, maxPexAdded, PexFlag, type PexPeer, type PexPeers, pexDiff, pexHints } from "../../domain/Pex.js"
import { Message } from "../../domain/Wire.js"
import { flush, type PeerSession, type TorrentState } from "./TorrentState.js"

/** Between two messages to one peer (BEP 11 asks for no more than one a minute). */
export const pexIntervalMillis = 60_000
/** After their extension handshake: long enough for our first connections to be made. */
const firstMessageMillis = 3_000
/** Learned addresses kept between two upkeeps; the peer manager bounds its candidates too. */
const maxLearned = 200
/**
 * A peer's messages closer together than this are ignored, and of each message we take at most
 * `maxPexAdded` peers: a flooding peer cannot fill the candidate list with addresses of its choice.
 */
const minReceiveGapMillis = 30_000

interface PexState {
  /** The id they receive ut_pex under; undefined until they offer it. */
  id: number | undefined
  /** The port they listen on (their handshake's `p`): what we tell others of an inbound peer. */
  listenPort: number | undefined
  sent: PexPeers
  nextAt: number
  lastReceivedAt: number | undefined
}

export interface PeerExchange {
  /** Their extension handshake: whether (and under which id) they take ut_pex, and their listen port. */
  readonly takeHandshake: (s: PeerSession, h: ExtendedHandshake, now: number) => void
  /** A ut_pex message from them; a malformed one, or one too soon after the last, is ignored. */
  readonly receive: (s: PeerSession, payload: Uint8Array, now: number) => void
  /** Sends the messages that are due and gives the peers learned since the last call. */
  readonly upkeep: (state: TorrentState, now: number) => ReadonlyArray<PeerCandidate>
}

export const makePeerExchange = (): PeerExchange => {
  const peers = new Map<string, PexState>()
  let learned: Array<PeerCandidate> = []

  const stateOf = (s: PeerSession, now: number): PexState => {
    let p = peers.get(s.key)
    if (p === undefined) {
      p = { id: undefined, listenPort: undefined, sent: new Map(), nextAt: now + firstMessageMillis, lastReceivedAt: undefined }
      peers.set(s.key, p)
    }
    return p
  }

  const takeHandshake = (s: PeerSession, h: ExtendedHandshake, now: number) => {
    const p = stateOf(s, now)
    // `m` is additive: a later handshake that does not name ut_pex leaves it as it was.
    if (h.m.has(utPexName)) p.id = peerExtensionId(h, utPexName)
    if (h.p !== undefined && h.p > 0) p.listenPort = h.p
  }

  const receive = (s: PeerSession, payload: Uint8Array, now: number) => {
    const p = stateOf(s, now)
    if (p.lastReceivedAt !== undefined && now - p.lastReceivedAt < minReceiveGapMillis) return
    const decoded = decodePex(payload)
    if (Either.isLeft(decoded)) return
    p.lastReceivedAt = now
    for (const added of decoded.right.added.slice(0, maxPexAdded)) {
      if (learned.length >= maxLearned) break
      learned.push({ address: added.address, hints: pexHints(added.flags) })
    }
  }

  const upkeep = (state: TorrentState, now: number) => {
    for (const key of peers.keys()) if (!state.sessions.has(key)) peers.delete(key)
    const connected = connectedPeers(state, peers)
    for (const s of state.sessions.values()) {
      const p = peers.get(s.key)
      if (p?.id === undefined || s.ended || now < p.nextAt) continue
      const others = new Map(connected)
      others.delete(s.key)
      const diff = pexDiff(p.sent, others)
      if (isEmptyPex(diff.message)) continue
      p.sent = diff.sent
      p.nextAt = now + pexIntervalMillis
      s.outbox.push(Message.extended(p.id, encodePex(diff.message)))
      flush(s, now)
    }
    const out = learned
    learned = []
    return out
  }

  return { takeHandshake, receive, upkeep }
}

/**
 * Our peers as others can reach them, by session key: those we dialled at the address we
 * dialled, inbound ones at their listen port when they told us (otherwise not at all).
 */
const connectedPeers = (state: TorrentState, peers: ReadonlyMap<string, PexState>): Map<string, PexPeer> => {
  const out: Array<[string, PexPeer]> = []
  for (const s of state.sessions.values()) {
    if (s.ended) continue
    const listenPort = s.inbound ? peers.get(s.key)?.listenPort : s.conn.address.port
    if (listenPort === undefined) continue
    const seed = state.picker.peerHas(s.key)?.isComplete === true ? PexFlag.Seed : 0
    // it spoke MSE (or uTP) with us: it takes encrypted (or uTP) connections
    const encrypted = s.conn.encryption === "mse-rc4" || s.conn.encryption === "mse-plaintext" ? PexFlag.PrefersEncryption : 0
    const utp = s.conn.transport === "utp" ? PexFlag.SupportsUtp : 0
    const flags = seed | encrypted | utp | (s.inbound ? 0 : PexFlag.Reachable)
    out.push([s.key, { address: { host: s.conn.address.host, port: listenPort }, flags }])
  }
  return new Map(out)
}
