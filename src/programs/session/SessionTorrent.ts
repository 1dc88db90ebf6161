/**
 * One torrent of a session: its record (what it was added from, where it stands, what it has
 * verified so far) and one run of it, the fiber the session starts when the queue admits it:
 * the metadata (for a magnet link or an info hash), the storage (kept open across runs, so a
 * paused or queued torrent resumes without a re-check), a check of the data there, then the
 * torrent core on the session's shared listener, until interrupted or its seeding goal is met.
 */
import { Bitfield } from "../../domain/Bitfield.js"
import { Duration, Effect, ExecutionStrategy, Exit, Option, Scope, Stream } from "effect"
import { type FilePriority, wantedFiles } from "../../domain/FileSelection.js"
import type { Info } from "../../domain/Metainfo.js"
import type { DhtNode } from "../../services/Dht.js"
import type { EncryptionPolicy } from "../../services/PeerWire.js"
import { Storage, type TorrentStorage } from "../../services/Storage.js"
import { fetchMetadata, type MagnetSource } from "../Metadata.js"
import { keepResumeData, loadResume, notingWrites, type Resumed, scanResumed } from "../torrent/Resume.js"
import { start, type TorrentHandle, type TorrentServices, type TorrentStats } from "../torrent/Torrent.js"
import type { RateLimits } from "../torrent/RateLimiter.js"
import type { SharedListener, TorrentEvent, TorrentSource } from "../torrent/TorrentEvent.js"
import { targetOf } from "./DataFiles.js"
import { saveMetainfo } from "./SessionState.js"
import { type AddOptions, type SeedingGoal, SessionEvent, type SessionOptions, type TorrentInput, type TorrentStatus } from "./SessionEvent.js"

/** A torrent of the session. Plain mutable data, touched only from the session's fibers. */
export interface SessionEntry {
  readonly id: number
  /** The info hash, hex: the key of its fiber and of duplicates. */
  readonly key: string
  readonly input: TorrentInput
  /** As added, then as changed (file priorities, speed limits): what its record keeps. */
  options: AddOptions
  /** Its own speed limits (`options.rateLimits`), changed in place as it runs. */
  readonly limits: RateLimits
  directory: string
  paused: boolean
  /** Its seeding goal was met; it stays stopped until resumed. */
  finished: boolean
  status: TorrentStatus
  error: string | undefined
  name: string | undefined
  /** What a magnet link or info hash gives before its metadata. */
  readonly magnet: MagnetSource
  /** The info dict and peers, once known. */
  source: TorrentSource | undefined
  storage: { readonly scope: Scope.CloseableScope; readonly storage: TorrentStorage } | undefined
  /** The verified pieces; undefined until checked (again). */
  have: Bitfield | undefined
  /** The running torrent, while it runs. */
  handle: TorrentHandle | undefined
  /** Byte counts of its earlier runs, and the last run's stats. */
  readonly totals: { downloaded: number; uploaded: number; wasted: number }
  last: TorrentStats | undefined
  rates: { down: number; up: number }
  seedingSince: number | undefined
  /** When it was first added (kept across restarts: restored torrents take their ids in this order). */
  readonly addedAtMs: number
  /** What its last check through the resume data found. */
  resumed: Resumed | undefined
  /** Its place in the session's queue: 0 first, the session's torrents numbered without gaps. */
  queuePosition: number
}

/** What every run shares: the session's identity, listener, limits, DHT and followers. */
export interface SessionContext {
  /** The session's scope: torrents' storages are opened in scopes of their own under it. */
  readonly scope: Scope.Scope
  readonly peerId: Uint8Array
  /** The shared listener; without one, torrents announce `port` and take no inbound peers. */
  readonly inbound: SharedListener | undefined
  readonly port: number
  readonly permits: Effect.Semaphore
  readonly dht: DhtNode | undefined
  readonly options: SessionOptions
  readonly maxPeersPerTorrent: number
  readonly encryption: { readonly encryption?: EncryptionPolicy }
  readonly publish: (event: SessionEvent) => Effect.Effect<unknown>
  /** Asks the session to run its queue again (a run must not do it itself: the queue may stop it). */
  readonly wake: Effect.Effect<unknown>
}

export const setStatus = (entry: SessionEntry, to: TorrentStatus, ctx: SessionContext): Effect.Effect<void> =>
  Effect.suspend(() => {
    const from = entry.status
    if (from === to) return Effect.void
    entry.status = to
    return Effect.asVoid(ctx.publish(SessionEvent.StateChanged({ id: entry.id, from, to })))
  })

/** Runs the torrent until interrupted, its goal is met or it fails (then its status says why). */
export const runTorrent = (entry: SessionEntry, ctx: SessionContext): Effect.Effect<void, never, TorrentServices | Storage> =>
  Effect.gen(function* () {
    const source = entry.source ?? (yield* resolveMetadata(entry, ctx))
    const opened = entry.storage === undefined
    const storage = entry.storage?.storage ?? (yield* openStorage(entry, source, ctx.scope))
    if (entry.have === undefined) {
      yield* setStatus(entry, "checking", ctx)
      // A storage opened afresh trusts its resume data; `verify` (storage kept open) reads everything.
      entry.have = opened ? yield* checkResumed(entry, source.info, storage, ctx) : yield* storage.scan
      // Found complete, it is a seed now: the queue may want its slot for a download.
      if (entry.have.isComplete) yield* ctx.wake
    }
    const have = entry.have
    const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    if (have.isComplete) entry.seedingSince ??= now
    yield* setStatus(entry, have.isComplete ? "seeding" : "downloading", ctx)
    yield* Effect.scoped(
      Effect.gen(function* () {
        const store = ctx.options.stateStore
        const keeper = store === undefined ? undefined : yield* keepResumeData(store, source.info, storage, have)
        // Its pieces and resume data follow the writes: events come in batches, and a run that is
        // stopped (paused, removed) does not read the last batch.
        const sink = notingWrites(storage, (index) => {
          entry.have?.add(index)
          keeper?.verified(index)
        })
        const handle = (entry.handle = yield* start(source, sink, have, torrentOptions(entry, source, ctx)))
        yield* handle.events.pipe(Stream.runForEachWhile((event) => onEvent(entry, event, storage, ctx)))
      }).pipe(Effect.ensuring(endRun(entry)))
    )
  }).pipe(
    Effect.catchAll((error) =>
      Effect.gen(function* () {
        entry.error = error.message
        // A storage that failed (a disk error, data that is not ours) is opened afresh on resume.
        if (entry.storage !== undefined) yield* Scope.close(entry.storage.scope, Exit.void)
        entry.storage = undefined
        entry.have = undefined
        yield* setStatus(entry, "error", ctx)
        yield* ctx.publish(SessionEvent.Error({ id: entry.id, message: error.message }))
      })
    ),
    Effect.ensuring(ctx.wake)
  )

const resolveMetadata = (entry: SessionEntry, ctx: SessionContext) =>
  Effect.gen(function* () {
    yield* setStatus(entry, "metadata", ctx)
    const link = entry.magnet
    const fromDht = link.trackers.length === 0 && link.peers.length === 0 && ctx.dht !== undefined
      ? (yield* ctx.dht.getPeers(link.infoHash)).peers
      : []
    // Over the session's listener, a peer that drops TCP is redialled over uTP.
    const options = { peerId: ctx.peerId, port: ctx.port, redialDropped: true, ...ctx.encryption }
    const fetched = yield* fetchMetadata({ ...link, peers: [...link.peers, ...fromDht] }, options)
    const source: TorrentSource = { info: fetched.info, trackers: fetched.trackers, peers: fetched.peers }
    entry.source = source
    entry.name = fetched.info.name
    if (ctx.options.stateStore !== undefined) yield* saveMetainfo(ctx.options.stateStore, entry.key, fetched.info)
    return source
  })

/** The verified pieces, reading only what the torrent's resume data cannot vouch for (all of it without a state store). */
const checkResumed = (entry: SessionEntry, info: Info, storage: TorrentStorage, ctx: SessionContext) =>
  Effect.gen(function* () {
    const store = ctx.options.stateStore
    if (store === undefined) return yield* storage.scan
    const record = yield* loadResume(store, info).pipe(
      Effect.catchAll((e) =>
        Effect.as(
          Effect.zipRight(
            Effect.logWarning(e.message),
            ctx.publish(SessionEvent.StateFileUnusable({ path: e.path, message: e.message }))
          ),
          Option.none()
        ))
    )
    const resumed = yield* scanResumed(storage, info, record)
    // A copy: what the check found, not what the run adds to it.
    entry.resumed = { ...resumed, have: resumed.have.copy() }
    yield* ctx.publish(SessionEvent.Resumed({ id: entry.id, settled: resumed.settled, rechecked: resumed.rechecked }))
    return resumed.have
  })

const openStorage = (entry: SessionEntry, source: TorrentSource, sessionScope: Scope.Scope) =>
  Effect.gen(function* () {
    // Open across runs, closed by a move, a removal, a failure or the session's end.
    const scope = yield* Scope.fork(sessionScope, ExecutionStrategy.sequential)
    const storage = yield* Storage.pipe(
      Effect.flatMap((s) => s.open(source.info, targetOf(entry.directory, source.info), wantedOf(entry, source.info))),
      Scope.extend(scope),
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    entry.storage = { scope, storage }
    return storage
  })

/** The torrent's file priorities, when set (a list for another torrent's files, from a damaged record, is not). */
export const prioritiesOf = (entry: SessionEntry, info: Info): ReadonlyArray<FilePriority> | undefined => {
  const files = entry.options.files
  return files !== undefined && files.length === info.files.length ? files : undefined
}

/** Skipped files are not created. */
const wantedOf = (entry: SessionEntry, info: Info) => {
  const files = prioritiesOf(entry, info)
  return files === undefined ? {} : { wanted: wantedFiles(info, files) }
}

const torrentOptions = (entry: SessionEntry, source: TorrentSource, ctx: SessionContext) => {
  const files = prioritiesOf(entry, source.info)
  return {
    ...ctx.options.torrent,
    ...(files === undefined ? {} : { files }),
    rateLimits: [...(ctx.options.torrent?.rateLimits ?? []), entry.limits],
    peerId: ctx.peerId,
    ...(ctx.inbound === undefined ? { port: ctx.port } : { inbound: ctx.inbound }),
    connectionPermits: ctx.permits,
    maxPeers: entry.options.maxPeers ?? ctx.maxPeersPerTorrent,
    seed: true,
    ...ctx.encryption,
    peerSources: ctx.dht === undefined || source.info.private ? [] : [dhtSource(ctx.dht, source.info.infoHash)]
  }
}

const dhtSource = (node: DhtNode, infoHash: Uint8Array) => (port: number) => node.peers(infoHash, { port })

/** Keeps what the run did: its byte counts and last stats. */
const endRun = (entry: SessionEntry) =>
  Effect.gen(function* () {
    const handle = entry.handle
    entry.handle = undefined
    entry.rates = { down: 0, up: 0 }
    if (handle === undefined) return
    const stats = yield* handle.stats
    entry.totals.downloaded += stats.downloadedBytes
    entry.totals.uploaded += stats.uploadedBytes
    entry.totals.wasted += stats.wastedBytes
    entry.last = { ...stats, peers: 0, port: undefined }
  })

/** Follows one event; false once the seeding goal is met (the run then ends). */
const onEvent = (
  entry: SessionEntry,
  event: TorrentEvent,
  storage: TorrentStorage,
  ctx: SessionContext
): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    switch (event._tag) {
      case "PieceVerified":
        yield* ctx.publish(SessionEvent.PieceVerified({ id: entry.id, index: event.index }))
        return true
      case "Completed": {
        if (entry.status !== "downloading") return true
        const info = entry.source!.info
        // Only verified pieces count: the torrent's own count says whether every piece is (events a
        // slow follower lost included), not the event alone.
        const stats = entry.handle === undefined ? undefined : yield* entry.handle.stats
        const everyPiece = stats !== undefined && stats.piecesDone >= info.pieceCount
        // With files skipped, every wanted piece verified is done (its bitfield stays as verified).
        const everyWanted = stats !== undefined && prioritiesOf(entry, info) !== undefined && stats.verifiedBytes >= stats.totalBytes
        if (!everyPiece && !everyWanted) {
          yield* Effect.logWarning(`${info.name}: completed with ${stats?.piecesDone ?? 0} of ${info.pieceCount} pieces verified; not seeding it as complete`)
          return true
        }
        if (everyPiece) entry.have = Bitfield.full(info.pieceCount)
        // The resume data records only pieces seen verified: a piece it misses is fetched again, never taken unread.
        entry.seedingSince = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        yield* Effect.ignore(storage.flush)
        yield* ctx.publish(SessionEvent.Completed({ id: entry.id, name: info.name }))
        yield* setStatus(entry, "seeding", ctx)
        yield* ctx.wake
        return true
      }
      case "Progress": {
        entry.rates = { down: event.bytesPerSecond, up: event.uploadBytesPerSecond }
        yield* ctx.publish(SessionEvent.Progress({
          id: entry.id,
          verifiedBytes: event.verifiedBytes,
          totalBytes: event.totalBytes,
          downloadRate: event.bytesPerSecond,
          uploadRate: event.uploadBytesPerSecond,
          peers: event.peers
        }))
        if (entry.status !== "seeding" || !(yield* goalMet(entry, event.uploadedBytes, ctx))) return true
        entry.finished = true
        yield* setStatus(entry, "finished", ctx)
        return false
      }
      default:
        return true
    }
  })

const goalMet = (entry: SessionEntry, uploadedThisRun: number, ctx: SessionContext) =>
  Effect.map(Effect.clockWith((clock) => clock.currentTimeMillis), (now) => {
    const goal: SeedingGoal = entry.options.seedingGoal ?? ctx.options.seedingGoal ?? {}
    const size = entry.source?.info.totalLength ?? 0
    const ratio = size === 0 ? 0 : (entry.totals.uploaded + uploadedThisRun) / size
    const seeded = now - (entry.seedingSince ?? now)
    return (goal.ratio !== undefined && ratio >= goal.ratio) ||
      (goal.time !== undefined && seeded >= Duration.toMillis(Duration.decode(goal.time)))
  })
