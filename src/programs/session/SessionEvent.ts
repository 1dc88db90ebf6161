/**
 * The vocabulary of a session of many torrents: what is added (a .torrent's bytes, a magnet link,
 * an info hash), where each torrent stands, the events a follower sees, the options, and the
 * typed errors of the session's operations.
 */
import { Data, type Duration } from "effect"
import type { FilePriority } from "../../domain/FileSelection.js"
import type { PeerAddress } from "../../domain/Peer.js"
import type { EncryptionPolicy } from "../../services/PeerWire.js"
import type { StateStoreService } from "../../services/StateStore.js"
import type { Resumed } from "../torrent/Resume.js"
import type { FileStreamOptions } from "./FileStream.js"
import type { TorrentStats } from "../torrent/Torrent.js"
import type { TorrentOptions } from "../torrent/TorrentEvent.js"

export type { TrackerStatus } from "../torrent/Announcer.js"
export type { PeerStatus } from "../torrent/Torrent.js"

/** What a torrent is added from. */
export type TorrentInput = Data.TaggedEnum<{
  /** The bytes of a .torrent file. */
  Metainfo: { readonly bytes: Uint8Array }
  Magnet: { readonly uri: string }
  /** 40 hex digits: the metadata comes from the DHT's peers (or `AddOptions.peers`). */
  InfoHash: { readonly hex: string }
}>
export const TorrentInput = Data.taggedEnum<TorrentInput>()

/**
 * Where a torrent stands. `metadata`: fetching a magnet link's info dict; `queued`: waiting for a
 * download or seed slot; `finished`: its seeding goal was reached, it stays stopped until resumed.
 */
export type TorrentStatus = "metadata" | "queued" | "checking" | "downloading" | "seeding" | "paused" | "finished" | "error"

/** One torrent of the session, as listed. Byte counts add up over every run of the torrent. */
export interface SessionTorrent extends TorrentStats {
  /** Stable for the life of the session. */
  readonly id: number
  /** Hex. */
  readonly infoHash: string
  /** Undefined until a magnet link's metadata arrives (then the link's `dn`, if any, before). */
  readonly name: string | undefined
  /** The folder its file or folder lives in. */
  readonly directory: string
  readonly status: TorrentStatus
  /** Why it stopped, when `status` is "error". */
  readonly error: string | undefined
  /** Payload bytes per second, recent. */
  readonly downloadRate: number
  readonly uploadRate: number
  /** Uploaded over the torrent's size. */
  readonly ratio: number
  /** What its last check found through its resume data (with a state store): pieces settled without reading, files read. */
  readonly resumed: Resumed | undefined
  /** When it was first added, milliseconds since the epoch (kept across restarts). */
  readonly addedAtMs: number
  /** Its place in the queue, 0 first (kept across restarts): the queue starts torrents in this order. */
  readonly queuePosition: number
}

/** One file of a torrent, as a front end lists it. */
export interface TorrentFileStatus {
  /** Its index in the torrent (padding files included), as `setFilePriorities` counts. */
  readonly index: number
  /** "/"-joined; under the torrent's name for a multi-file torrent. */
  readonly path: string
  readonly length: number
  /** Bytes of it in verified pieces. */
  readonly bytesCompleted: number
  readonly priority: FilePriority
}

/** Speed limits of one torrent, bytes per second (undefined or 0: none beyond the session's). */
export interface TorrentRateLimits {
  readonly download?: number | undefined
  readonly upload?: number | undefined
}

export type SessionEvent = Data.TaggedEnum<{
  Added: { readonly id: number; readonly infoHash: string; readonly name: string | undefined }
  StateChanged: { readonly id: number; readonly from: TorrentStatus; readonly to: TorrentStatus }
  /** Once per progress interval while it runs. */
  Progress: {
    readonly id: number
    readonly verifiedBytes: number
    readonly totalBytes: number
    readonly downloadRate: number
    readonly uploadRate: number
    readonly peers: number
  }
  /** A piece was verified and written (its resume data will record it). */
  PieceVerified: { readonly id: number; readonly index: number }
  /** A check through the resume data: `settled` pieces taken without reading; the files of `rechecked` were read. */
  Resumed: { readonly id: number; readonly settled: number; readonly rechecked: ReadonlyArray<number> }
  /** A state file could not be used (its torrent is restored without it, or not at all). */
  StateFileUnusable: { readonly path: string; readonly message: string }
  /** Every wanted piece is verified (it seeds on, if a seed slot is free). */
  Completed: { readonly id: number; readonly name: string }
  Removed: { readonly id: number; readonly deletedData: boolean }
  Error: { readonly id: number; readonly message: string }
}>
export const SessionEvent = Data.taggedEnum<SessionEvent>()

/** When a complete torrent stops seeding; the first goal reached wins. */
export interface SeedingGoal {
  /** Uploaded bytes over the torrent's size. */
  readonly ratio?: number
  /** Time spent seeding in this session. */
  readonly time?: Duration.DurationInput
}

/** What a session runs with where its options say nothing (front ends report these too). */
export const sessionDefaults = {
  maxConnections: 200,
  maxPeersPerTorrent: 50,
  maxActiveDownloads: 5,
  maxActiveSeeds: 5
} as const

export interface SessionOptions {
  /** Our peer id for every torrent (default: random). */
  readonly peerId?: Uint8Array
  /** The one listen port (TCP and, over `DualTransport`, uTP) of every torrent; absent: no inbound peers. */
  readonly listen?: { readonly host: string; readonly port: number; readonly fallback?: boolean }
  /** Where torrents go unless added with a directory of their own. */
  readonly downloadDirectory: string
  /** Connections at once across all torrents (default 200). */
  readonly maxConnections?: number
  /** Connections at once per torrent (default 50). */
  readonly maxPeersPerTorrent?: number
  /** Torrents downloading (or fetching metadata, or checking) at once (default 5); the others are queued. */
  readonly maxActiveDownloads?: number
  /** Torrents seeding at once (default 5); the others are queued. */
  readonly maxActiveSeeds?: number
  /** The default seeding goal (default: none, seed on). */
  readonly seedingGoal?: SeedingGoal
  /** Start one DHT node on the listen port, shared by every torrent (needs the `Dht` service). */
  readonly dht?: { readonly bootstrap: ReadonlyArray<PeerAddress>; readonly statePath?: string }
  readonly encryption?: EncryptionPolicy
  /** Passed to every torrent (progress interval, give-up time, PEX, ...). */
  /**
   * Where the session keeps its torrents (records, metainfo, resume data): saved as they are
   * added and changed, restored when the session starts. Absent: nothing persists.
   */
  readonly stateStore?: StateStoreService
  /** How file streams read ahead and how long they wait for a torrent to start. */
  readonly streaming?: FileStreamOptions
  readonly torrent?: Omit<TorrentOptions, "peerId" | "listen" | "inbound" | "connectionPermits" | "maxPeers" | "seed" | "encryption" | "peerSources">
}

export interface AddOptions {
  /** Default: the session's download directory. */
  readonly directory?: string
  /** Added stopped. */
  readonly paused?: boolean
  /** Connections at once for this torrent (default: the session's per-torrent limit). */
  readonly maxPeers?: number
  readonly seedingGoal?: SeedingGoal
  /** Peers to dial at once, beside the trackers' (and, for a magnet or info hash, to ask for the metadata). */
  readonly peers?: ReadonlyArray<PeerAddress>
  /** One priority per file (default: every file normal). */
  readonly files?: ReadonlyArray<FilePriority>
  /** Its own speed limits, beside the session's. */
  readonly rateLimits?: TorrentRateLimits
}

/** What a state store would keep of a torrent to add it again after a restart. */
export interface TorrentRecord {
  readonly id: number
  readonly input: TorrentInput
  readonly options: AddOptions
  readonly directory: string
  readonly paused: boolean
}

/** The torrent is in the session already. */
export class DuplicateTorrent extends Data.TaggedError("DuplicateTorrent")<{ readonly infoHash: string; readonly id: number }> {
  override get message() {
    return `torrent ${this.infoHash} is already in the session (id ${this.id})`
  }
}

/** No torrent has this id (never had, or it was removed). */
export class UnknownTorrent extends Data.TaggedError("UnknownTorrent")<{ readonly id: number }> {
  override get message() {
    return `no torrent with id ${this.id} in the session`
  }
}

/** What was given to add is not a torrent: bad .torrent bytes, a bad magnet link, a bad info hash. */
export class InvalidTorrentInput extends Data.TaggedError("InvalidTorrentInput")<{
  readonly input: TorrentInput["_tag"]
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    return `cannot add the torrent (${this.input}): ${this.detail}`
  }
}

/** Moving or deleting a torrent's files failed. */
export class DataFilesError extends Data.TaggedError("DataFilesError")<{
  readonly operation: "move" | "remove"
  readonly path: string
  readonly cause: unknown
}> {
  override get message() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot ${this.operation} ${this.path}: ${detail}`
  }
}
