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
 *
 * This module wires the parts in upload/: the peer record (UploadPeer), the message bookkeeping
 * (Requests), the serve loop (BatchServer) and choking (Choking).
 */
import { Duration, Effect } from "effect"
import type { Bitfield } from "../domain/Bitfield.js"
import { initialChokerState } from "../domain/Choker.js"
import type { Info } from "../domain/Metainfo.js"
import type { PeerConnection, PeerError } from "../services/PeerWire.js"
import type { StorageError, TorrentStorage } from "../services/Storage.js"
import type { RateLimiter } from "./torrent/RateLimiter.js"
import { type BatchServer, makeMetadataAnswer, readConcurrency, serveBatch } from "./upload/BatchServer.js"
import { runChokerRound } from "./upload/Choking.js"
import { handleUploadMessage, type RequestRules, type UploadMessage } from "./upload/Requests.js"
import { makeUploadPeer, type UploadPeer } from "./upload/UploadPeer.js"

export type { UploadPeer } from "./upload/UploadPeer.js"

/**
 * Requests a peer may keep queued with us by default, and what we advertise as BEP 10 `reqq`.
 * libtransmission asks for about ten seconds' worth of blocks at its measured rate but never more
 * than our `reqq`, and sends new requests only on its once-a-second pulse: its rate from us is at
 * most `reqq` blocks a second (250 gave 4 MB/s on loopback). 8192 blocks (128 MiB) lets it ramp up
 * as it does from a peer with no `reqq`; queued requests cost us only their records, since blocks
 * are read as they are served.
 */
export const defaultMaxQueuedRequests = 8192

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
    const maxQueued = options.maxQueuedRequests ?? defaultMaxQueuedRequests
    const seconds = Duration.toSeconds(options.chokeInterval)
    const rate = (p: UploadPeer) => options.rate?.(p) ?? p.uploadedSinceRound / seconds
    const peers = new Map<string, UploadPeer>()
    const rules: RequestRules = { info, have, maxQueued, slots, peers, offersMetadata: metadata !== undefined }
    const server: BatchServer = {
      storage,
      reads,
      limits: options.limits ?? [],
      metadataAnswer: metadata === undefined ? undefined : makeMetadataAnswer(metadata),
      totals: { uploaded: 0 }
    }
    const choker = { state: initialChokerState }
    return {
      maxQueuedRequests: maxQueued,
      peers,
      uploaded: () => server.totals.uploaded,
      have,
      add: (key, conn, fast) => {
        const p = makeUploadPeer(key, conn, fast)
        peers.set(key, p)
        return p
      },
      remove: (key) => void peers.delete(key),
      handle: (p, m) => handleUploadMessage(rules, p, m),
      serve: (p) => Effect.forever(serveBatch(server, p)),
      chokeRound: runChokerRound(peers, slots, rate, choker)
    }
  })
