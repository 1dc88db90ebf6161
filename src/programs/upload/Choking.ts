/** Choking and unchoking peers, and the choker round that decides which (with keep-alives). */
import { Effect, Random } from "effect"
import { type ChokerState, chokeRound } from "../../domain/Choker.js"
import { Message } from "../../domain/Wire.js"
import { servedWhileChoked, type UploadPeer } from "./UploadPeer.js"

/** Keep-alives to every peer (they drop connections silent for two minutes). */
const keepAliveRounds = 9

export const choke = (p: UploadPeer): void => {
  p.choked = true
  // BEP 3: a choke discards the peer's pending requests (it will ask again once unchoked); with
  // Fast, each discarded request is rejected, and Allowed Fast requests are still served.
  const out: Array<Message> = [Message.choke]
  const kept = p.queue.filter((r) => servedWhileChoked(p, r.index))
  if (p.fast) for (const r of p.queue) if (!p.allowedFast.has(r.index)) out.push(Message.rejectRequest(r.index, r.begin, r.length))
  p.queue.length = 0
  p.queue.push(...kept)
  for (const r of p.inflight) {
    if (servedWhileChoked(p, r.index)) continue
    p.cancelled.add(r)
    if (p.fast) out.push(Message.rejectRequest(r.index, r.begin, r.length))
  }
  p.conn.sendNow(out)
}

export const unchoke = (p: UploadPeer): void => {
  p.choked = false
  p.conn.sendNow([Message.unchoke])
}

export const unchokedInterested = (peers: ReadonlyMap<string, UploadPeer>): number => {
  let n = 0
  for (const p of peers.values()) if (!p.choked && p.interested) n++
  return n
}

/**
 * One choker round over `peers` (ranked by `rate`, which reads their `uploadedSinceRound` before
 * the round resets it): it chokes and unchokes as decided, keeps the others alive every
 * `keepAliveRounds` rounds, and moves `choker` to its next state.
 */
export const runChokerRound = (
  peers: ReadonlyMap<string, UploadPeer>,
  slots: number,
  rate: (p: UploadPeer) => number,
  choker: { state: ChokerState }
): Effect.Effect<void> =>
  Effect.map(Random.next, (r) => {
    const candidates = [...peers.values()].map((p) => ({ peer: p.key, interested: p.interested, rate: rate(p) }))
    for (const p of peers.values()) p.uploadedSinceRound = 0
    const decision = chokeRound(choker.state, candidates, slots, () => r)
    choker.state = decision.state
    const keepAlive = decision.state.round % keepAliveRounds === 0
    for (const p of peers.values()) {
      const unchoked = decision.unchoked.has(p.key)
      if (unchoked && p.choked) unchoke(p)
      else if (!unchoked && !p.choked) choke(p)
      else if (keepAlive) p.conn.sendNow([Message.keepAlive])
    }
  })
