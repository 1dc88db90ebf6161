/** The upload state of one peer session, and the questions every part of the upload side asks of it. */
import type { Request } from "../../domain/Wire.js"
import type { PeerConnection } from "../../services/PeerWire.js"

/** The upload state of one peer session. */
export interface UploadPeer {
  readonly key: string
  readonly conn: PeerConnection
  /** Both sides negotiated the Fast extension: requests we will not serve are rejected, not dropped. */
  readonly fast: boolean
  /** Pieces they may request while we choke them (the Allowed Fast set we sent). */
  readonly allowedFast: Set<number>
  /** We choke them / they are interested in us. */
  choked: boolean
  interested: boolean
  /** Their requests in arrival order; `inflight` is the batch being read. */
  readonly queue: Array<Request>
  inflight: ReadonlyArray<Request>
  readonly cancelled: Set<Request>
  /** The id they want ut_metadata messages under (their extension handshake), if any. */
  utMetadata: number | undefined
  /** Metadata pieces they asked for, in order (kept across chokes: BEP 9 does not tie them to choking). */
  readonly metadataQueue: Array<number>
  uploadedSinceRound: number
  uploadedSinceTick: number
  /** Payload bytes per second sent to them over the last progress interval. */
  uploadRate: number
  /** Resumes the server fiber when it waits for requests. */
  wakeUp: (() => void) | undefined
}

/** A new session's upload state: choked, not interested, nothing queued. */
export const makeUploadPeer = (key: string, conn: PeerConnection, fast: boolean): UploadPeer => ({
  key,
  conn,
  fast,
  allowedFast: new Set(),
  choked: true,
  interested: false,
  queue: [],
  inflight: [],
  cancelled: new Set(),
  utMetadata: undefined,
  metadataQueue: [],
  uploadedSinceRound: 0,
  uploadedSinceTick: 0,
  uploadRate: 0,
  wakeUp: undefined
})

/** Piece `index` is in their Allowed Fast set, which is served even while we choke them. */
export const servedWhileChoked = (p: UploadPeer, index: number): boolean => p.fast && p.allowedFast.has(index)

/** We serve them piece `index` now: they are unchoked, or it is Allowed Fast. */
export const mayServe = (p: UploadPeer, index: number): boolean => !p.choked || servedWhileChoked(p, index)

/** Requests (blocks and metadata pieces) they have queued with us. */
export const queuedRequests = (p: UploadPeer): number => p.queue.length + p.metadataQueue.length
