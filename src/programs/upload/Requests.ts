/**
 * The upload-side messages of a session as plain synchronous bookkeeping: requests validated
 * (only pieces we have, only while the peer is unchoked) and queued within their bound, cancels,
 * interest (which may take a free slot at once) and BEP 9 ut_metadata requests.
 */
import { Either } from "effect"
import type { Bitfield } from "../../domain/Bitfield.js"
import { decodeMetadataMessage, ourUtMetadataId } from "../../domain/Extension.js"
import { type Info, pieceSize } from "../../domain/Metainfo.js"
import { blockSize, type Cancel, type Extended, Message, type Request } from "../../domain/Wire.js"
import { unchoke, unchokedInterested } from "./Choking.js"
import { mayServe, queuedRequests, type UploadPeer } from "./UploadPeer.js"

/** The messages `handleUploadMessage` takes; the engines keep the others. */
export type UploadMessage = Extract<Message, { readonly _tag: "Request" | "Cancel" | "Interested" | "NotInterested" | "Extended" }>

/** What the bookkeeping checks messages against. */
export interface RequestRules {
  readonly info: Info
  /** Read live: pieces added later may be requested too. */
  readonly have: Bitfield
  readonly maxQueued: number
  /** Regular upload slots, among `peers`. */
  readonly slots: number
  readonly peers: ReadonlyMap<string, UploadPeer>
  /** We serve ut_metadata (we have the info dict's bytes). */
  readonly offersMetadata: boolean
}

/** Why a request cannot be served, or undefined when it is valid. */
const requestProblem = (info: Info, have: Bitfield, r: Request): string | undefined => {
  if (r.index >= info.pieceCount) return `request for piece ${r.index}, beyond the last piece (${info.pieceCount - 1})`
  if (!have.has(r.index)) return `request for piece ${r.index}, which we do not have`
  if (r.length === 0 || r.length > blockSize) return `request of ${r.length} bytes (1 to ${blockSize} allowed)`
  const size = pieceSize(info, r.index)
  if (r.begin + r.length > size) return `request for ${r.begin}+${r.length}, beyond the end of piece ${r.index} (${size} bytes)`
  return undefined
}

const sameBlock = (a: Request, b: Pick<Request, "index" | "begin" | "length">) => a.index === b.index && a.begin === b.begin && a.length === b.length

const tooManyQueued = (maxQueued: number) => `more than ${maxQueued} requests queued`

const queueRequest = (rules: RequestRules, p: UploadPeer, m: Request): string | undefined => {
  const problem = requestProblem(rules.info, rules.have, m)
  if (problem !== undefined) {
    // With Fast, a request we cannot serve is rejected; a malformed one is still a violation.
    if (!p.fast || m.index >= rules.info.pieceCount || rules.have.has(m.index)) return problem
    p.conn.sendNow([Message.rejectRequest(m.index, m.begin, m.length)])
    return undefined
  }
  if (!mayServe(p, m.index)) {
    // Sent before our choke reached them: dropped, as they expect (rejected, with Fast).
    if (p.fast) p.conn.sendNow([Message.rejectRequest(m.index, m.begin, m.length)])
    return undefined
  }
  if (queuedRequests(p) >= rules.maxQueued) return tooManyQueued(rules.maxQueued)
  p.queue.push(m)
  p.wakeUp?.()
  return undefined
}

/** A queued request is dropped; one being read is marked, and not sent. */
const cancelRequest = (p: UploadPeer, m: Cancel): void => {
  const at = p.queue.findIndex((r) => sameBlock(r, m))
  if (at >= 0) p.queue.splice(at, 1)
  else {
    const reading = p.inflight.find((r) => sameBlock(r, m))
    if (reading !== undefined) p.cancelled.add(reading)
  }
}

/**
 * A ut_metadata message under the id we assigned; gives what is wrong with it, if anything. The
 * session reads the extension handshake itself (it sets `utMetadata`).
 */
const queueMetadataRequest = (rules: RequestRules, p: UploadPeer, m: Extended): string | undefined => {
  if (!rules.offersMetadata || m.id !== ourUtMetadataId) return undefined // no extension of ours
  const decoded = decodeMetadataMessage(m.payload)
  if (Either.isLeft(decoded)) return decoded.left.message
  // Data and rejects answer requests we never send; unknown types are to be ignored (BEP 9). A
  // request from a peer that announced no ut_metadata id cannot be answered: there is no id to
  // address a reply (data or reject) to.
  if (decoded.right._tag !== "Request" || p.utMetadata === undefined) return undefined
  if (queuedRequests(p) >= rules.maxQueued) return tooManyQueued(rules.maxQueued)
  p.metadataQueue.push(decoded.right.piece)
  p.wakeUp?.()
  return undefined
}

/** Handles one upload-side message; gives what is wrong with it (a protocol violation), if anything. */
export const handleUploadMessage = (rules: RequestRules, p: UploadPeer, m: UploadMessage): string | undefined => {
  switch (m._tag) {
    case "Request":
      return queueRequest(rules, p, m)
    case "Cancel":
      cancelRequest(p, m)
      return undefined
    case "Interested":
      p.interested = true
      // A free regular slot goes at once rather than at the next round.
      if (p.choked && unchokedInterested(rules.peers) < rules.slots) unchoke(p)
      return undefined
    case "NotInterested":
      p.interested = false
      return undefined
    case "Extended":
      return queueMetadataRequest(rules, p, m)
  }
}
