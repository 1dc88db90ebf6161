/**
 * How many requests each peer gets and when: a pipeline whose depth follows the peer's rate
 * (about three seconds of its data in flight, up to 500 requests), never deeper than the peer's own queue (BEP 10
 * `reqq`), topped up in batches. While a Fast peer chokes us, only its Allowed Fast pieces are
 * asked for.
 */
import { blockSize, Message } from "../../domain/Wire.js"
import { smallestRate } from "./RateLimiter.js"
import { flush, type PeerSession, type TorrentState } from "./TorrentState.js"

/** Requests in flight per peer when it starts, and the bounds of the adaptive depth. */
export const initialDepth = 64
const minDepth = 4
const maxDepth = 500
/**
 * The pipeline aims to hold this much of the peer's rate in flight (libtorrent's request queue
 * time). With one second, a peer's first seconds ran on a shallow pipeline: a 1 GiB download from
 * two aria2 seeders took 4.4 s against 2.9 s (median of 4, interleaved).
 */
const pipelineSeconds = 3
/** Under a download limit, the torrent's peers share this much of the smallest limit in requests. */
const limitedSeconds = 1

/** Adds interest, and as many requests as the peer's pipeline has room for, to its outbox. */
export const fill = (state: TorrentState, s: PeerSession): void => {
  const { picker } = state
  if (!s.interested && picker.isInteresting(s.key)) {
    s.interested = true
    s.outbox.push(Message.interested)
  }
  // Choked: nothing to ask for, unless a Fast peer allows some pieces anyway.
  if (!s.interested || (s.choked && s.allowedFast.size === 0)) return
  const depth = Math.min(s.depth, s.maxRequests, limitedDepth(state))
  const room = depth - picker.outstandingCount(s.key)
  // Top up in batches: one write per few blocks rather than per block.
  if (room < Math.max(minDepth / 2, depth / 4)) return
  const requests = s.choked ? picker.pick(s.key, room, state.now(), s.allowedFast) : picker.pick(s.key, room, state.now())
  for (const r of requests) s.outbox.push(Message.request(r.index, r.begin, r.length))
}

/**
 * Under a download limit, the torrent's peers share about a second of the smallest limit in
 * requests: blocks asked for beyond that would wait behind the limiter (and in endgame come twice)
 * until their requests time out. Unlimited: no bound.
 */
const limitedDepth = (state: TorrentState): number => {
  const rate = smallestRate(state.downloadLimits)
  return rate === undefined ? Infinity : Math.max(minDepth, Math.ceil((rate * limitedSeconds) / blockSize / Math.max(1, state.sessions.size)))
}

/**
 * The periodic part, per peer: the rate, requests that timed out (they halve the depth), the
 * depth for the new rate, and interest that lapsed.
 */
export const retune = (state: TorrentState, s: PeerSession, tickAt: number, seconds: number, checkInterest: boolean): void => {
  const { picker } = state
  const sample = s.bytesSinceTick / seconds
  s.rate = s.rate === 0 ? sample : 0.7 * s.rate + 0.3 * sample
  s.bytesSinceTick = 0
  const expired = picker.expire(s.key, tickAt - state.options.requestTimeoutMs)
  if (expired > 0) s.depth = Math.max(minDepth, Math.floor(s.depth / 2))
  else s.depth = Math.min(maxDepth, Math.max(s.depth, minDepth, Math.ceil((s.rate * pipelineSeconds) / blockSize)))
  // Once a peer has nothing left that we lack, say so (a `have` may make it interesting again).
  if (checkInterest && s.interested && !picker.isInteresting(s.key)) {
    s.interested = false
    s.outbox.push(Message.notInterested)
  }
  fill(state, s)
}

/**
 * A stream opened (or seeked, which opens a new one): the requests queued with each peer for
 * pieces without a deadline are cancelled and the due pieces asked for at once. A peer's queue
 * holds about a second of its measured rate, and a bursty peer's measure runs high: behind it, a
 * seek waited many seconds. A block already on its way is not taken (it is asked for again).
 */
export const rush = (state: TorrentState, due: ReadonlySet<number>): void => {
  for (const s of state.sessions.values()) {
    for (const r of state.picker.releaseExcept(s.key, due)) s.outbox.push(Message.cancel(r.index, r.begin, r.length))
    fill(state, s)
    flush(s, state.now())
  }
}
