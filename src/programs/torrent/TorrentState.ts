/**
 * The state one torrent's modules share: the picker, the live peer sessions, the upload side
 * and the counters. Plain mutable data, touched only from the torrent's fibers (one JavaScript
 * thread), so every per-message update is a synchronous field write.
 */
import type { HashServer } from "../../domain/PieceLayers.js"
import { Deferred, Duration, Effect, type Queue } from "effect"
import type { Info } from "../../domain/Metainfo.js"
import type { CompletedPiece, PiecePicker } from "../../domain/PiecePicker.js"
import type { Message } from "../../domain/Wire.js"
import type { PeerConnection } from "../../services/PeerWire.js"
import type { Uploader, UploadPeer } from "../Upload.js"
import type { TrackerStatus } from "./Announcer.js"
import type { PeerExchange } from "./PeerExchange.js"
import type { RateLimiter } from "./RateLimiter.js"
import type { Streaming } from "./Streaming.js"
import type { TorrentError, TorrentEvent, TorrentOptions } from "./TorrentEvent.js"

/** Why a session ends without a wire failure: a ban, an eviction, both sides seeders... */
export class SessionEnd {
  readonly _tag = "SessionEnd"
  constructor(
    readonly reason: string,
    /** Whether the address is worth dialling again later. */
    readonly retry: boolean
  ) {}
  get message() {
    return this.reason
  }
}

export interface PeerSession {
  readonly key: string
  readonly conn: PeerConnection
  readonly inbound: boolean
  /** Its peer id (hex) at its host: one peer, however many connections or ports it uses. */
  readonly identity: string
  /** Both sides set the bit: Fast extension (BEP 6) and extension protocol (BEP 10) messages apply. */
  readonly fast: boolean
  readonly extensions: boolean
  /** They choke us; we are interested in them. */
  choked: boolean
  interested: boolean
  /** Requests we keep in flight with them (adapts to their rate), and their own bound (BEP 10 reqq). */
  depth: number
  maxRequests: number
  /** Payload bytes accepted from them since the last tick, the smoothed rate, and in all. */
  bytesSinceTick: number
  rate: number
  delivered: number
  /** Pieces they let us request while they choke us (BEP 6 Allowed Fast). */
  readonly allowedFast: Set<number>
  /** Messages to go out with this peer's next write: requests, cancels, haves. */
  outbox: Array<Message>
  readonly up: UploadPeer
  readonly connectedAt: number
  lastReceivedAt: number
  lastSentAt: number
  /** Since when they have choked us, or had nothing we want (undefined: they are useful). */
  uselessSince: number | undefined
  /** Hashes we may still send them in answer to hash requests (BEP 52; `TorrentState.hashes`). */
  hashesLeft: number
  /** Set once the session is ending: its remaining messages are ignored. */
  ended: boolean
  /** Ends the session; the reason reaches its stream's end. */
  readonly end: Deferred.Deferred<never, SessionEnd>
}

export interface ResolvedOptions {
  readonly maxPeers: number
  readonly requestTimeoutMs: number
  readonly stallTimeoutMs: number
  readonly giveUpAfterMs: number
  readonly seed: boolean
  readonly fast: boolean
}

export const resolveOptions = (options: TorrentOptions): ResolvedOptions => ({
  maxPeers: options.maxPeers ?? 50,
  requestTimeoutMs: Duration.toMillis(options.requestTimeout ?? "15 seconds"),
  stallTimeoutMs: Duration.toMillis(options.stallTimeout ?? "5 minutes"),
  giveUpAfterMs: Duration.toMillis(options.giveUpAfter ?? "20 seconds"),
  seed: options.seed ?? false,
  fast: options.fast ?? true
})

export interface TorrentCounters {
  /** Distinct peers ever tried, and payload bytes accepted. */
  peersSeen: number
  downloaded: number
  /** Bytes of pieces that failed their hash check. */
  wasted: number
  verifiedBytes: number
  lastVerifiedAt: number
  lastTrackerError: string | undefined
}

export interface TorrentState {
  readonly info: Info
  readonly peerId: Uint8Array
  readonly options: ResolvedOptions
  readonly picker: PiecePicker
  readonly uploader: Uploader
  /** Answers peers' hash requests from the piece layers, and how many hashes each peer may have; undefined for a v1 torrent. */
  readonly hashes: { readonly serve: HashServer; readonly budget: number } | undefined
  /** Peer exchange; undefined when off (asked so, or a private torrent). */
  readonly pex: PeerExchange | undefined
  readonly sessions: Map<string, PeerSession>
  /** What limits the bytes we receive (`TorrentOptions.rateLimits`). */
  readonly downloadLimits: ReadonlyArray<RateLimiter>
  /** Peer keys (`ip:port`) and identities convicted of bad data, or found to be ourselves. */
  readonly banned: Set<string>
  readonly counters: TorrentCounters
  /** Its trackers and how their last announces went (the announcer keeps it). */
  readonly trackers: Array<TrackerStatus>
  /** The port we listen on (announced), or the one we announce without listening. */
  readonly port: number
  readonly listening: boolean
  readonly now: () => number
  readonly emit: (event: TorrentEvent) => Effect.Effect<unknown>
  /** Puts the `PieceVerified` events that wait for a batch into the events now (each tick). */
  readonly flushEvents: Effect.Effect<void>
  /** Succeeds once every wanted piece is verified. */
  readonly completed: Deferred.Deferred<void>
  /** Pieces whose blocks are all in, for the verify stage (bounded: a full queue stops the reads). */
  readonly completedPieces: Queue.Queue<CompletedPiece>
  /** Fails with what ends the torrent (a disk error, giving up). */
  readonly failed: Deferred.Deferred<never, TorrentError>
  /** Open streams' read-ahead windows (the picker's deadlines) and readers waiting for pieces. */
  readonly streaming: Streaming
}

/** Ends a session at once (ban, eviction, protocol violation); idempotent. */
export const endSession = (s: PeerSession, reason: string, retry: boolean): void => {
  if (s.ended) return
  s.ended = true
  Deferred.unsafeDone(s.end, Effect.fail(new SessionEnd(reason, retry)))
}

/** Writes what the peer's outbox holds. */
export const flush = (s: PeerSession, now: number): void => {
  if (s.outbox.length === 0) return
  s.conn.sendNow(s.outbox)
  s.outbox = []
  s.lastSentAt = now
}
