/**
 * What a torrent tells its user: events as it runs, the typed errors that end it, and the
 * options that shape it. One vocabulary for downloading and seeding, which are states of the
 * same torrent.
 */
import { Data, type Duration, type Effect, type Schedule, type Scope, type Stream } from "effect"
import type { FilePriority } from "../../domain/FileSelection.js"
import type { Info } from "../../domain/Metainfo.js"
import type { PeerAddress } from "../../domain/Peer.js"
import type { Encryption, EncryptionPolicy, LocalTorrent, PeerConnection, PeerError } from "../../services/PeerWire.js"
import type { TransportKind } from "../../services/DualTransport.js"
import type { StorageError } from "../../services/Storage.js"
import type { ListenError, Listening } from "../../services/Transport.js"
import type { RateLimits } from "./RateLimiter.js"
import type { WebSeedSource } from "../../services/WebSeed.js"

export type TorrentEvent = Data.TaggedEnum<{
  /** The torrent starts; `verified` pieces were already on disk. `port` is where it listens, if it does. */
  Started: {
    readonly pieces: number
    readonly verified: number
    readonly bytesLeft: number
    /** Bytes wanted in all. */
    readonly totalBytes: number
    readonly host: string | undefined
    readonly port: number | undefined
  }
  Announced: { readonly url: string; readonly peers: number; readonly interval: number }
  /** A tracker announce failed (it is retried unless the torrent gives up). */
  AnnounceFailed: { readonly url: string; readonly reason: string }
  /** `encryption`: plaintext, or MSE with a plaintext or RC4 payload. */
  /** `transport`: what carries the connection (absent: TCP). */
  PeerConnected: { readonly peer: string; readonly client: string; readonly inbound: boolean; readonly encryption: Encryption; readonly transport?: TransportKind }
  PeerDropped: { readonly peer: string; readonly reason: string }
  PieceVerified: { readonly index: number }
  /** A piece failed its hash check and will be fetched again, from one peer alone. */
  PieceRejected: { readonly index: number; readonly peers: ReadonlyArray<string>; readonly bytes: number }
  /** The peer was convicted of sending bad data. */
  PeerBanned: { readonly peer: string }
  Progress: {
    readonly verifiedBytes: number
    readonly totalBytes: number
    /** Payload bytes received per second (recent). */
    readonly bytesPerSecond: number
    readonly peers: number
    /** Of those, the ones over uTP and the ones encrypted (MSE with RC4); absent means none. */
    readonly utpPeers?: number
    readonly encryptedPeers?: number
    readonly piecesDone: number
    readonly piecesTotal: number
    readonly uploadedBytes: number
    readonly uploadBytesPerSecond: number
    /** Peers interested in us, and those we unchoke. */
    readonly interested: number
    readonly unchoked: number
  }
  /** Every wanted piece is verified; a seeding torrent goes on. */
  Completed: { readonly bytes: number; readonly seconds: number }
}>
export const TorrentEvent = Data.taggedEnum<TorrentEvent>()

/** No verified piece for too long: no usable peers, or only peers that never deliver. */
export class DownloadStalled extends Data.TaggedError("DownloadStalled")<{
  readonly seconds: number
  readonly piecesLeft: number
  readonly peersSeen: number
  readonly lastTrackerError: string | undefined
}> {
  override get message() {
    const tracker = this.lastTrackerError === undefined ? "" : `; last tracker error: ${this.lastTrackerError}`
    return `download stalled: no piece verified for ${this.seconds} s, ${this.piecesLeft} pieces left, ${this.peersSeen} peers seen${tracker}`
  }
}

/** Every peer source failed for good and no peer is left: nothing can make progress. */
export class NoPeerSources extends Data.TaggedError("NoPeerSources")<{
  readonly seconds: number
  readonly lastTrackerError: string | undefined
  /** Why the last web seed was dropped, when the torrent had any. */
  readonly lastWebSeedError?: string | undefined
}> {
  override get message() {
    const reasons = [this.lastTrackerError, this.lastWebSeedError].filter((r) => r !== undefined)
    return reasons.length === 0
      ? `no peers: every peer source failed and no peer is left (gave up after ${this.seconds} s)`
      : reasons.join("; ")
  }
}

export type TorrentError = DownloadStalled | NoPeerSources | StorageError | ListenError

/** The torrent as the engine needs it: the info dict and where to find peers. */
export interface TorrentSource {
  readonly info: Info
  /** BEP 12 tiers of announce URLs; may be empty when `peers` are given. */
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  /** Peers to dial without a tracker (magnet `x.pe`, tests). */
  readonly peers?: ReadonlyArray<PeerAddress>
}

export interface TorrentOptions {
  readonly peerId: Uint8Array
  /**
   * Where to accept peers. Absent: the torrent does not listen and announces `port`. With
   * `fallback`, a taken port moves on to the next few, then to any free one.
   */
  readonly listen?: { readonly host: string; readonly port: number; readonly fallback?: boolean }
  /**
   * A listener bound already (by `bindListener`), which the torrent accepts on and announces
   * instead of binding `listen`: a magnet link's, bound before its metadata is fetched so that
   * those dials can fall back to uTP from the listen port.
   */
  readonly listener?: Listening
  /**
   * Inbound peers from a listener shared with other torrents (a session's), instead of a port of
   * its own: `listen` is then ignored, and the torrent announces the shared port.
   */
  readonly inbound?: SharedListener
  /** Connections shared with other torrents (a session's global limit): each peer session holds one permit. */
  readonly connectionPermits?: Effect.Semaphore
  /** The port announced when not listening (default 6881). */
  readonly port?: number
  /** Peer exchange (BEP 11, ut_pex) with peers that offer it; never for a private torrent (default true). */
  readonly pex?: boolean
  /** Negotiate the Fast extension (BEP 6): sets its reserved bit (default true). */
  readonly fast?: boolean
  /** MSE/PE for the connections both ways (default "allow": plaintext first, MSE when a peer wants it). */
  readonly encryption?: EncryptionPolicy
  /** Keep running once every wanted piece is verified (seeding), until interrupted (default false). */
  readonly seed?: boolean
  /** Connections at once, both directions (default 50). */
  readonly maxPeers?: number
  readonly sequential?: boolean
  /** Fetch only these pieces (default: all). */
  readonly pieces?: ReadonlyArray<number>
  /**
   * A priority per file (default: every file `normal`): only pieces touching a file not `skip`ped
   * are fetched, higher priorities first. Ignored when `pieces` is given.
   */
  readonly files?: ReadonlyArray<FilePriority>
  /** A request unanswered this long goes back to the pool (default 15 s). */
  readonly requestTimeout?: Duration.DurationInput
  /** Give up when no piece is verified for this long while downloading (default 5 minutes). */
  readonly stallTimeout?: Duration.DurationInput
  /** Give up this long after every peer source failed for good with no peer left (default 20 s). */
  readonly giveUpAfter?: Duration.DurationInput
  /** How peer connections are retried. */
  readonly peerRetry?: Schedule.Schedule<unknown, PeerError>
  /** Regular upload slots (default 4), plus one optimistic. */
  readonly uploadSlots?: number
  /** Choker rounds (default 10 s); the optimistic unchoke rotates every third round. */
  readonly chokeInterval?: Duration.DurationInput
  /** Requests a peer may have queued with us, as we advertise (BEP 10 `reqq`); more is a flood and drops it (default 8192). */
  readonly maxQueuedRequests?: number
  /**
   * Bandwidth limits, all applied (e.g. the torrent's own and a session's shared by all its
   * torrents); their rates can be changed while it runs (default: none).
   */
  readonly rateLimits?: ReadonlyArray<RateLimits>
  /** Re-announce this often instead of at the tracker's interval. */
  readonly announceInterval?: Duration.DurationInput
  /** How often `Progress` is emitted (default 1 s). */
  readonly progressInterval?: Duration.DurationInput
  /** How long the `stopped` announce may hold up the end (default 3 s). */
  readonly stoppedTimeout?: Duration.DurationInput
  /**
   * Peer sources beside the trackers (the DHT, ...): each is given the port the torrent listens on
   * (or announces) and streams addresses to dial. While one still runs the torrent does not give up.
   */
  readonly peerSources?: ReadonlyArray<PeerSource>
  /**
   * Web seeds (BEP 19) to fetch from beside the peers, scheduled by the same picker; one that
   * serves a piece that fails its hash is banned. While one is in use the torrent does not give up.
   */
  readonly webSeeds?: ReadonlyArray<WebSeedSource>
}

/** A listen port shared by several torrents, which routes each inbound connection by its info hash. */
export interface SharedListener {
  readonly host: string
  readonly port: number
  /** The connections handshaken for this info hash (answered as `local`), until the scope closes. */
  readonly register: (infoHash: Uint8Array, local: LocalTorrent) => Effect.Effect<Stream.Stream<RoutedPeer>, never, Scope.Scope>
}

/** An inbound connection already handshaken for the torrent. */
export interface RoutedPeer {
  readonly remote: PeerAddress
  /** Takes the connection (handshaking it if need be); it is closed when the caller's scope closes. */
  readonly adopt: Effect.Effect<PeerConnection, PeerError, Scope.Scope>
  /** Closes it (refused: no slot). */
  readonly refuse: Effect.Effect<void>
}

/** Addresses to dial, found (and kept finding) by some means other than a tracker; given our port. */
export type PeerSource = (port: number) => Stream.Stream<PeerAddress>
