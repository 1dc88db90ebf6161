/**
 * The upload side of a peer session, shared by the seeder and the download engine: per-peer
 * request queues, request validation (only verified pieces, only while the peer is unchoked),
 * cancels, BEP 9 ut_metadata answers, the batched serve loop and the choker round.
 *
 * The engines own their sessions and their message loops: they hand the upload-side messages
 * (Request, Cancel, Interested, NotInterested, Extended) to `handle`, which is plain synchronous
 * bookkeeping, and run `serve` beside their reader. A peer's server fiber reads runs of contiguous
 * requested blocks with one disk read each and sends them as one write, waiting for the socket to
 * drain (backpressure); it sleeps while the peer has nothing queued.
 */
import { Duration, Effect, Either, Random } from "effect"
import type { Bitfield } from "../domain/Bitfield.js"
import { type ChokerState, chokeRound, initialChokerState } from "../domain/Choker.js"
import {
  answerMetadataRequest,
  decodeMetadataMessage,
  encodeMetadataMessage,
  ourUtMetadataId
} from "../domain/Extension.js"
import { type Info, pieceSize } from "../domain/Metainfo.js"
import { blockSize, type Extended, Message, type Request } from "../domain/Wire.js"
import type { PeerConnection, PeerError } from "../services/PeerWire.js"
import type { StorageError, TorrentStorage } from "../services/Storage.js"
import { anyLimited, charge, type RateLimiter } from "./torrent/RateLimiter.js"

/** A batch read and sent at once per peer: up to this many blocks... */
const batchBlocks = 32
/** ...and disk reads in flight across all peers. */
const readConcurrency = 8
/** Keep-alives to every peer (they drop connections silent for two minutes). */
const keepAliveRounds = 9
/**
 * Requests a peer may keep queued with us by default, and what we advertise as BEP 10 `reqq`.
 * libtransmission asks for about ten seconds' worth of blocks at its measured rate but never more
 * than our `reqq`, and sends new requests only on its once-a-second pulse: its rate from us is at
 * most `reqq` blocks a second (250 gave 4 MB/s on loopback). 8192 blocks (128 MiB) lets it ramp up
 * as it does from a peer with no `reqq`; queued requests cost us only their records, since blocks
 * are read as they are served.
 */
export const defaultMaxQueuedRequests = 8192

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

/** The messages `handle` takes; the engines keep the others. */
export type UploadMessage = Extract<Message, { readonly _tag: "Request" | "Cancel" | "Interested" | "NotInterested" | "Extended" }>

export interface UploadOptions {
  /** Regular upload slots, plus one optimistic. */
  readonly slots: number
  /** Requests (blocks and metadata pieces) a peer may have queued with us; more is a protocol violation (default `defaultMaxQueuedRequests`). */
  readonly maxQueuedRequests?: number
  readonly chokeInterval: Duration.Duration
  /** The info dict's bytes, served over ut_metadata; undefined offers none. */
  readonly metadata?: Uint8Array | undefined
  /** A peer's rate for the choker; undefined (the default) ranks by what we uploaded to it in the round (seeding). */
  readonly rate?: (peer: UploadPeer) => number | undefined
  /** Upload limits: a batch waits until its bytes are granted by each, before it is read (default: none). */
  readonly limits?: ReadonlyArray<RateLimiter>
}

export interface Uploader {
  /** Requests a peer may have queued with us: advertise it as BEP 10 `reqq`. */
  readonly maxQueuedRequests: number
  /** The upload state of every live session, by peer key. */
  readonly peers: ReadonlyMap<string, UploadPeer>
  /** Payload bytes sent so far. */
  readonly uploaded: () => number
  /** The pieces it serves (what we advertise): none when the storage cannot read pieces back. */
  readonly have: Bitfield
  /** Registers a session (choked, not interested); `remove` it when the session ends. */
  readonly add: (key: string, conn: PeerConnection, fast: boolean) => UploadPeer
  readonly remove: (key: string) => void
  /** Handles one upload-side message; gives what is wrong with it (a protocol violation), if anything. */
  readonly handle: (peer: UploadPeer, message: UploadMessage) => string | undefined
  /** Serves the peer's requests as they come, for the life of the session. */
  readonly serve: (peer: UploadPeer) => Effect.Effect<never, PeerError | StorageError>
  /** One choker round over the sessions (run every `chokeInterval`). */
  readonly chokeRound: Effect.Effect<void>
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

/**
 * Serves `have`'s pieces (read live: pieces added to it later are served too) from `storage`.
 */
export const makeUploader = (
  info: Info,
  storage: Pick<TorrentStorage, "readBlock">,
  have: Bitfield,
  options: UploadOptions
): Effect.Effect<Uploader> =>
  Effect.map(Effect.makeSemaphore(readConcurrency), (reads) => {
    const { slots, metadata } = options
    const limits = options.limits ?? []
    const maxQueued = options.maxQueuedRequests ?? defaultMaxQueuedRequests
    const seconds = Duration.toSeconds(options.chokeInterval)
    const rate = (p: UploadPeer) => options.rate?.(p) ?? p.uploadedSinceRound / seconds
    const peers = new Map<string, UploadPeer>()
    /** Encoded data payloads by metadata piece, made at the first request (every peer gets the same bytes). */
    const metadataPayloads: Array<Uint8Array | undefined> = []
    let uploaded = 0
    let chokerState: ChokerState = initialChokerState

    const unchokedInterested = () => {
      let n = 0
      for (const p of peers.values()) if (!p.choked && p.interested) n++
      return n
    }

    const choke = (p: UploadPeer) => {
      p.choked = true
      // BEP 3: a choke discards the peer's pending requests (it will ask again once unchoked); with
      // Fast, each discarded request is rejected, and Allowed Fast requests are still served.
      const out: Array<Message> = [Message.choke]
      const kept = p.queue.filter((r) => p.fast && p.allowedFast.has(r.index))
      if (p.fast) for (const r of p.queue) if (!p.allowedFast.has(r.index)) out.push(Message.rejectRequest(r.index, r.begin, r.length))
      p.queue.length = 0
      p.queue.push(...kept)
      for (const r of p.inflight) {
        if (p.fast && p.allowedFast.has(r.index)) continue
        p.cancelled.add(r)
        if (p.fast) out.push(Message.rejectRequest(r.index, r.begin, r.length))
      }
      p.conn.sendNow(out)
    }

    const unchoke = (p: UploadPeer) => {
      p.choked = false
      p.conn.sendNow([Message.unchoke])
    }

    const queued = (p: UploadPeer) => p.queue.length + p.metadataQueue.length

    const handle = (p: UploadPeer, m: UploadMessage): string | undefined => {
      switch (m._tag) {
        case "Request": {
          const problem = requestProblem(info, have, m)
          if (problem !== undefined) {
            // With Fast, a request we cannot serve is rejected; a malformed one is still a violation.
            if (!p.fast || m.index >= info.pieceCount || have.has(m.index)) return problem
            p.conn.sendNow([Message.rejectRequest(m.index, m.begin, m.length)])
            return undefined
          }
          if (p.choked && !(p.fast && p.allowedFast.has(m.index))) {
            // Sent before our choke reached them: dropped, as they expect (rejected, with Fast).
            if (p.fast) p.conn.sendNow([Message.rejectRequest(m.index, m.begin, m.length)])
            return undefined
          }
          if (queued(p) >= maxQueued) return `more than ${maxQueued} requests queued`
          p.queue.push(m)
          p.wakeUp?.()
          return undefined
        }
        case "Cancel": {
          const at = p.queue.findIndex((r) => sameBlock(r, m))
          if (at >= 0) p.queue.splice(at, 1)
          else {
            const reading = p.inflight.find((r) => sameBlock(r, m))
            if (reading !== undefined) p.cancelled.add(reading)
          }
          return undefined
        }
        case "Interested":
          p.interested = true
          // A free regular slot goes at once rather than at the next round.
          if (p.choked && unchokedInterested() < slots) unchoke(p)
          return undefined
        case "NotInterested":
          p.interested = false
          return undefined
        case "Extended":
          return handleExtended(p, m)
      }
    }

    /**
     * A ut_metadata message under the id we assigned; gives what is wrong with it, if anything. The
     * session reads the extension handshake itself (it sets `utMetadata`).
     */
    const handleExtended = (p: UploadPeer, m: Extended): string | undefined => {
      if (metadata === undefined || m.id !== ourUtMetadataId) return undefined // no extension of ours
      const decoded = decodeMetadataMessage(m.payload)
      if (Either.isLeft(decoded)) return decoded.left.message
      // Data and rejects answer requests we never send; unknown types are to be ignored (BEP 9). A
      // request from a peer that announced no ut_metadata id cannot be answered: there is no id to
      // address a reply (data or reject) to.
      if (decoded.right._tag !== "Request" || p.utMetadata === undefined) return undefined
      if (queued(p) >= maxQueued) return `more than ${maxQueued} requests queued`
      p.metadataQueue.push(decoded.right.piece)
      p.wakeUp?.()
      return undefined
    }

    /** The ut_metadata payload answering a request for `piece` of `raw`: data (encoded once) or a reject. */
    const metadataPayload = (raw: Uint8Array, piece: number): Uint8Array => {
      const answer = answerMetadataRequest(raw, piece)
      return answer._tag === "Reject" ? encodeMetadataMessage(answer) : (metadataPayloads[piece] ??= encodeMetadataMessage(answer))
    }

    /** Answers the next queued metadata requests (from memory) as one write. */
    const serveMetadata = (p: UploadPeer, raw: Uint8Array): Effect.Effect<void, PeerError> => {
      const pieces = p.metadataQueue.splice(0, batchBlocks)
      const id = p.utMetadata
      // They may have disabled ut_metadata since asking: the requests lapse.
      if (id === undefined) return Effect.void
      return p.conn.send(pieces.map((piece) => Message.extended(id, metadataPayload(raw, piece))))
    }

    const awaitRequests = (p: UploadPeer) =>
      Effect.async<void>((resume) => {
        p.wakeUp = () => {
          p.wakeUp = undefined
          resume(Effect.void)
        }
        return Effect.sync(() => {
          p.wakeUp = undefined
        })
      })

    /** Reads the next batch (runs of contiguous blocks, one disk read each) and sends it as one write. */
    const serveBatch = (p: UploadPeer): Effect.Effect<void, PeerError | StorageError> =>
      Effect.suspend(() => {
        if (metadata !== undefined && p.metadataQueue.length > 0) return serveMetadata(p, metadata)
        if (p.queue.length === 0) return awaitRequests(p)
        const batch = p.queue.splice(0, batchBlocks)
        p.inflight = batch
        const runs: Array<{ index: number; begin: number; length: number; first: number; count: number }> = []
        for (let i = 0; i < batch.length; i++) {
          const r = batch[i]!
          const run = runs[runs.length - 1]
          if (run !== undefined && run.index === r.index && run.begin + run.length === r.begin) {
            run.length += r.length
            run.count++
          } else runs.push({ index: r.index, begin: r.begin, length: r.length, first: i, count: 1 })
        }
        // Cancels and chokes while the batch waits for its bytes to be granted apply as during the read.
        const granted = anyLimited(limits) ? charge(limits, runs.reduce((sum, run) => sum + run.length, 0)) : undefined
        const read = Effect.forEach(runs, (run) => reads.withPermits(1)(storage.readBlock(run.index, run.begin, run.length)), {
          concurrency: "unbounded"
        })
        return (granted === undefined ? read : Effect.zipRight(granted, read)).pipe(
          Effect.flatMap((data) => {
            const out: Array<Message> = []
            let bytes = 0
            // A choke while reading cancels the batch (`cancelled`), but for Allowed Fast pieces.
            {
              runs.forEach((run, k) => {
                for (let i = run.first; i < run.first + run.count; i++) {
                  const r = batch[i]!
                  if (p.cancelled.has(r) || (p.choked && !(p.fast && p.allowedFast.has(r.index)))) continue
                  const at = r.begin - run.begin
                  out.push(Message.piece(r.index, r.begin, data[k]!.subarray(at, at + r.length)))
                  bytes += r.length
                }
              })
            }
            p.inflight = []
            p.cancelled.clear()
            uploaded += bytes
            p.uploadedSinceRound += bytes
            p.uploadedSinceTick += bytes
            return p.conn.send(out)
          })
        )
      })

    const round = Effect.gen(function* () {
      const r = yield* Random.next
      const candidates = [...peers.values()].map((p) => ({ peer: p.key, interested: p.interested, rate: rate(p) }))
      for (const p of peers.values()) p.uploadedSinceRound = 0
      const decision = chokeRound(chokerState, candidates, slots, () => r)
      chokerState = decision.state
      const keepAlive = chokerState.round % keepAliveRounds === 0
      for (const p of peers.values()) {
        const unchoked = decision.unchoked.has(p.key)
        if (unchoked && p.choked) unchoke(p)
        else if (!unchoked && !p.choked) choke(p)
        else if (keepAlive) p.conn.sendNow([Message.keepAlive])
      }
    })

    return {
      maxQueuedRequests: maxQueued,
      peers,
      uploaded: () => uploaded,
      have,
      add: (key, conn, fast) => {
        const p: UploadPeer = {
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
        }
        peers.set(key, p)
        return p
      },
      remove: (key) => void peers.delete(key),
      handle,
      serve: (p) => Effect.forever(serveBatch(p)),
      chokeRound: round
    }
  })
