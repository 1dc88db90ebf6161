/**
 * A session of many torrents, as a client runs them: one listen port (TCP and uTP), one DHT node
 * on its UDP socket, one peer id and one connection limit, shared by every torrent; each torrent
 * a fiber of a `FiberMap` keyed by its info hash, with an integer id stable for the session's
 * life; a queue that runs at most so many downloads and seeds; seeding goals.
 *
 * A program, not a service of `src/services`: it composes the torrent core, the metadata fetch
 * and storage, and runs on whatever Transport it is given (`DualTransport` live, `MemoryNetwork`
 * in tests). Operations on the session are serialised; a torrent's run never runs the queue
 * itself (the queue may stop it), it wakes the session's scheduler fiber instead.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Clock, Context, Effect, Either, ExecutionStrategy, Exit, FiberMap, Layer, PubSub, Queue, Scope, Stream } from "effect"
import { Bitfield } from "../domain/Bitfield.js"
import { fromHex, toHex } from "../domain/Bytes.js"
import { parseMagnet } from "../domain/Magnet.js"
import { checkPriorities, type FilePriority, FileSelectionError, wantedFiles } from "../domain/FileSelection.js"
import { parseTorrent, trackerTiers } from "../domain/Metainfo.js"
import { bytesOfPieces, verifiedFileBytes } from "../domain/PieceGeometry.js"
import { listenPortCandidates, makePeerId } from "../domain/Peer.js"
import { admitted, type QueueRole } from "../domain/TorrentQueue.js"
import { Dht, type DhtNode } from "../services/Dht.js"
import type { StateStoreService } from "../services/StateStore.js"
import type { Storage, StorageError } from "../services/Storage.js"
import { type ListenError, Transport } from "../services/Transport.js"
import { removeData, moveData } from "./session/DataFiles.js"
import { type ByteRange, type FileStreamError, fileStream, type StreamableFile, streamableFile } from "./session/FileStream.js"
import { makeInboundRouter } from "./session/InboundRouter.js"
import {
  type AddOptions,
  type DataFilesError,
  DuplicateTorrent,
  InvalidTorrentInput,
  SessionEvent,
  sessionDefaults,
  type SessionOptions,
  type SessionTorrent,
  TorrentInput,
  type PeerStatus,
  type TorrentFileStatus,
  type TorrentRateLimits,
  type TorrentRecord,
  type TrackerStatus,
  UnknownTorrent
} from "./session/SessionEvent.js"
import { forget, loadSaved, type SavedTorrent, saveMetainfo, saveRecord, SessionStateUnusable, recordFileName } from "./session/SessionState.js"
import { prioritiesOf, runTorrent, type SessionContext, type SessionEntry, setStatus } from "./session/SessionTorrent.js"
import { unannounced } from "./torrent/Announcer.js"
import { makeRateLimits } from "./torrent/RateLimiter.js"
import type { TorrentServices } from "./torrent/Torrent.js"

export * from "./session/SessionEvent.js"
export { type ByteRange, FileStreamError, type FileStreamOptions, type StreamableFile } from "./session/FileStream.js"
export { SessionStateUnusable } from "./session/SessionState.js"

export type SessionServices = TorrentServices | Storage | FileSystem.FileSystem

export interface SessionService {
  /** Adds a torrent (running it when the queue has a slot, unless `paused`); gives its id. */
  readonly add: (input: TorrentInput, options?: AddOptions) => Effect.Effect<number, DuplicateTorrent | InvalidTorrentInput>
  /** Stops the torrent and forgets it; with `deleteData`, its files go too. */
  readonly remove: (id: number, options?: { readonly deleteData?: boolean }) => Effect.Effect<void, UnknownTorrent | DataFilesError>
  readonly pause: (id: number) => Effect.Effect<void, UnknownTorrent>
  /** Queues it again (after a pause, an error or a met seeding goal). */
  readonly resume: (id: number) => Effect.Effect<void, UnknownTorrent>
  /** Checks its data again (a fresh scan) before it goes on. */
  readonly verify: (id: number) => Effect.Effect<void, UnknownTorrent>
  /** Moves its files to another directory; it is checked there and goes on. */
  readonly move: (id: number, directory: string) => Effect.Effect<void, UnknownTorrent | DataFilesError>
  readonly get: (id: number) => Effect.Effect<SessionTorrent, UnknownTorrent>
  /** Every torrent, by id. */
  readonly list: Effect.Effect<ReadonlyArray<SessionTorrent>>
  /** What a state store would keep to add the torrents again. */
  readonly records: Effect.Effect<ReadonlyArray<TorrentRecord>>
  /** The session's events from when the stream starts (a follower that falls behind loses the oldest). */
  readonly events: Stream.Stream<SessionEvent>
  /** The same, subscribed at once: no event after this returns is missed. */
  readonly subscribe: Effect.Effect<Stream.Stream<SessionEvent>, never, Scope.Scope>
  /** Its files (none until the metadata is known). */
  readonly files: (id: number) => Effect.Effect<ReadonlyArray<TorrentFileStatus>, UnknownTorrent>
  /** Its connected peers (none when it is not running). */
  readonly peers: (id: number) => Effect.Effect<ReadonlyArray<PeerStatus>, UnknownTorrent>
  /** Its trackers, and how their last announces went in this run. */
  readonly trackers: (id: number) => Effect.Effect<ReadonlyArray<TrackerStatus>, UnknownTorrent>
  /** One priority per file, applied as it runs and kept across restarts. */
  readonly setFilePriorities: (
    id: number,
    priorities: ReadonlyArray<FilePriority>
  ) => Effect.Effect<void, UnknownTorrent | FileSelectionError | StorageError>
  /** Its own speed limits in bytes per second (0 or undefined: none beyond the session's), applied at once and kept. */
  readonly setRateLimits: (id: number, limits: TorrentRateLimits) => Effect.Effect<void, UnknownTorrent>
  /** The shared listen port, if the session listens. */
  readonly port: number | undefined
  /** The session's DHT node, if it runs one. */
  readonly dht: DhtNode | undefined
  /** Saved torrents the session could not restore when it started, each naming its damaged file. */
  readonly unrestored: ReadonlyArray<SessionStateUnusable>
  /** A file that can be streamed, once the metadata is known (waited for, bounded). */
  readonly streamableFile: (id: number, fileIndex: number) => Effect.Effect<StreamableFile, UnknownTorrent | FileStreamError>
  /**
   * Bytes `range` of a file (0-based index), while the torrent downloads: the pieces from the read
   * head on are fetched first, and each is read once verified (`session/FileStream.ts`).
   */
  readonly fileStream: (id: number, fileIndex: number, range: ByteRange) => Stream.Stream<Uint8Array, UnknownTorrent | FileStreamError>
}

export class Session extends Context.Tag("bt/Session")<Session, SessionService>() {
  /** A session over the given services (Transport, trackers, storage, ...); the DHT when `options.dht` asks for it. */
  static readonly layer = (options: SessionOptions): Layer.Layer<Session, ListenError, SessionServices> =>
    Layer.scoped(Session, make(options))
}

/** Events kept for a follower that falls behind. */
const followerBacklog = 4096

/** Starts a session in the current scope; closing it stops every torrent. */
export const make = (options: SessionOptions): Effect.Effect<SessionService, ListenError, SessionServices | Scope.Scope> =>
  Effect.gen(function* () {
    const services = yield* Effect.context<SessionServices>()
    const events = yield* PubSub.sliding<SessionEvent>(followerBacklog)
    const wakeups = yield* Queue.sliding<void>(1)
    const registry: Registry = {
      options,
      services,
      ctx: yield* sessionContext(options, events, wakeups),
      fibers: yield* FiberMap.make<string>(),
      entries: new Map(),
      ids: { next: 1, lastAddedAtMs: 0 }
    }
    const lock = yield* Effect.makeSemaphore(1)
    const control: Control = { registry, locked: lock.withPermits(1), schedule: runQueue(registry), store: options.stateStore }
    const { locked, schedule, store } = control
    yield* Queue.take(wakeups).pipe(Effect.zipRight(locked(schedule)), Effect.forever, Effect.forkScoped)
    const unrestored = store === undefined ? [] : yield* restoreSaved(registry, store)
    if (store !== undefined) yield* locked(schedule)
    return serviceOf(control, events, unrestored)
  })

/** What the session's operations share: its torrents, the lock they run under, the queue's run and the state store. */
interface Control {
  readonly registry: Registry
  readonly locked: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly schedule: Effect.Effect<void>
  readonly store: StateStoreService | undefined
}

const serviceOf = (control: Control, events: PubSub.PubSub<SessionEvent>, unrestored: ReadonlyArray<SessionStateUnusable>): SessionService => {
  const { registry } = control
  const { ctx, entries, options } = registry
  const find = (id: number) => findEntry(registry, id)
  return {
    add: (input, addOptions) => addTorrent(control, input, addOptions),
    remove: (id, removeOptions) => removeTorrent(control, id, removeOptions),
    pause: (id) => change(control, id, (entry) => Effect.sync(() => void (entry.paused = true))),
    resume: (id) => change(control, id, (entry) => requeue(entry, ctx)),
    verify: (id) => change(control, id, (entry) => Effect.sync(() => void (entry.have = undefined))),
    move: (id, directory) => change(control, id, (entry) => moveEntry(registry, entry, directory)),
    get: (id) => Effect.flatMap(find(id), summary),
    list: Effect.suspend(() => Effect.forEach([...entries.values()], summary)),
    records: Effect.sync(() => [...entries.values()].map(recordOf)),
    files: (id) => Effect.map(find(id), filesOf),
    peers: (id) => Effect.flatMap(find(id), (entry) => entry.handle?.peers ?? Effect.succeed([])),
    trackers: (id) => Effect.flatMap(find(id), trackersOf),
    setFilePriorities: (id, priorities) => setting(control, id, (entry) => applyFilePriorities(entry, priorities)),
    setRateLimits: (id, limits) => setting(control, id, (entry) => Effect.sync(() => applyRateLimits(entry, limits))),
    events: Stream.fromPubSub(events),
    subscribe: Stream.fromPubSub(events, { scoped: true }),
    port: ctx.inbound?.port,
    dht: ctx.dht,
    unrestored,
    streamableFile: (id, fileIndex) => streamableFile(find, id, fileIndex, options.streaming),
    fileStream: (id, fileIndex, range) => fileStream(find, id, fileIndex, range, options.streaming)
  }
}

const persist = ({ store }: Control, entry: SessionEntry) => (store === undefined ? Effect.void : saveRecord(store, entry))

const addTorrent = (control: Control, input: TorrentInput, addOptions: AddOptions = {}) => {
  const { registry, store } = control
  return control.locked(Effect.flatMap(nextAddedAt(registry), (at) => addEntry(registry, registry.ids.next, input, addOptions, at)).pipe(
    // Under the lock: the next add sees the id taken (a failed add takes none).
    Effect.tap((entry) => {
      registry.ids.next++
      if (store === undefined) return Effect.void
      // The metainfo first: a record never names a .torrent that is not there.
      const metainfo = input._tag === "Metainfo" ? saveMetainfo(store, entry.key, input.bytes) : Effect.void
      return Effect.zipRight(metainfo, persist(control, entry))
    }),
    Effect.tap(() => control.schedule),
    Effect.map((entry) => entry.id)
  ))
}

const removeTorrent = ({ registry, locked, schedule, store }: Control, id: number, removeOptions: { readonly deleteData?: boolean } = {}) =>
  locked(Effect.zipRight(
    Effect.flatMap(findEntry(registry, id), (entry) =>
      Effect.zipRight(removeEntry(registry, entry, removeOptions.deleteData === true), store === undefined ? Effect.void : forget(store, entry.key))),
    schedule
  ))

/** Changes a torrent with its run stopped, then runs the queue again. */
const change = <E>(control: Control, id: number, f: (entry: SessionEntry) => Effect.Effect<void, E>) =>
  control.locked(Effect.gen(function* () {
    const entry = yield* findEntry(control.registry, id)
    yield* FiberMap.remove(control.registry.fibers, entry.key)
    yield* f(entry)
    yield* persist(control, entry)
    yield* control.schedule
  }))

/** Changes a setting of a torrent as it runs (or not), then saves its record (made after the change: suspended). */
const setting = <E>(control: Control, id: number, f: (entry: SessionEntry) => Effect.Effect<void, E>) =>
  control.locked(Effect.flatMap(findEntry(control.registry, id), (entry) =>
    Effect.zipRight(f(entry), Effect.suspend(() => persist(control, entry)))))

/** The session's torrents and what their runs need. */
interface Registry {
  readonly options: SessionOptions
  readonly services: Context.Context<SessionServices>
  readonly ctx: SessionContext
  /** Each running torrent's fiber, by info hash (hex). */
  readonly fibers: FiberMap.FiberMap<string>
  readonly entries: Map<number, SessionEntry>
  /** The next id, and the last torrent's added time (strictly increasing, so that restored torrents keep their order). */
  readonly ids: { next: number; lastAddedAtMs: number }
}

const nextAddedAt = ({ ids }: Registry) =>
  Effect.map(Clock.currentTimeMillis, (now) => (ids.lastAddedAtMs = Math.max(now, ids.lastAddedAtMs + 1)))

/** Adds every torrent the store holds, in order of addition, as it was; gives the saved torrents that could not be. */
const restoreSaved = (registry: Registry, store: StateStoreService) =>
  Effect.gen(function* () {
    const saved = yield* loadSaved(store)
    const unrestored = [...saved.unusable]
    for (const torrent of saved.torrents) {
      yield* Effect.catchAll(restoreOne(registry, store, torrent), (e) => Effect.sync(() => void unrestored.push(e)))
    }
    for (const e of unrestored) {
      yield* Effect.logWarning(e.message)
      yield* registry.ctx.publish(SessionEvent.StateFileUnusable({ path: e.path, message: e.message }))
    }
    return unrestored
  })

const restoreOne = (registry: Registry, store: StateStoreService, saved: SavedTorrent) =>
  Effect.gen(function* () {
    const { ids } = registry
    ids.lastAddedAtMs = Math.max(ids.lastAddedAtMs, saved.addedAtMs)
    const entry = yield* addEntry(registry, ids.next, saved.input, { ...saved.options, paused: saved.paused }, saved.addedAtMs)
    ids.next++
    // A magnet link's metadata, fetched in an earlier run.
    if (entry.source === undefined && saved.info !== undefined) {
      entry.source = { info: saved.info, trackers: entry.magnet.trackers.map((t) => [t]), peers: entry.magnet.peers }
      entry.name = saved.info.name
    }
  }).pipe(Effect.mapError((e) => new SessionStateUnusable({ path: store.pathOf(recordFileName(saved.key)), detail: e.message })))

const findEntry = (registry: Registry, id: number) =>
  Effect.suspend(() => {
    const entry = registry.entries.get(id)
    return entry === undefined ? Effect.fail(new UnknownTorrent({ id })) : Effect.succeed(entry)
  })

/** Starts what the queue admits and stops what it does not; every stopped torrent's status says why. */
const runQueue = ({ ctx, entries, fibers, options, services }: Registry) =>
  Effect.gen(function* () {
    const eligible = [...entries.values()].filter((e) => !e.paused && !e.finished && e.status !== "error")
    const queued = yield* Effect.forEach(eligible, (e) =>
      Effect.map(FiberMap.has(fibers, e.key), (running) => ({ position: e.id, role: roleOf(e), running })))
    const admit = admitted(queued, { downloads: options.maxActiveDownloads ?? sessionDefaults.maxActiveDownloads, seeds: options.maxActiveSeeds ?? sessionDefaults.maxActiveSeeds })
    for (const entry of entries.values()) {
      const running = yield* FiberMap.has(fibers, entry.key)
      const runs = admit.has(entry.id) && eligible.includes(entry)
      if (runs && !running) {
        entry.error = undefined
        yield* FiberMap.run(fibers, entry.key, Effect.provide(runTorrent(entry, ctx), services))
      } else if (!runs) {
        if (running) yield* FiberMap.remove(fibers, entry.key)
        yield* setStatus(entry, entry.paused ? "paused" : entry.finished ? "finished" : entry.status === "error" ? "error" : "queued", ctx)
      }
    }
  })

/** Adds the torrent as `id` (not run yet). */
const addEntry = ({ ctx, entries, options }: Registry, id: number, input: TorrentInput, addOptions: AddOptions, addedAtMs: number) =>
  Effect.gen(function* () {
    const parsed = yield* parseInput(input, addOptions)
    const key = toHex(parsed.magnet.infoHash)
    const existing = [...entries.values()].find((e) => e.key === key)
    if (existing !== undefined) return yield* new DuplicateTorrent({ infoHash: key, id: existing.id })
    const limits = yield* makeRateLimits(addOptions.rateLimits)
    const entry = newEntry(id, key, input, addOptions, parsed, addOptions.directory ?? options.downloadDirectory, addedAtMs, limits)
    entries.set(id, entry)
    yield* ctx.publish(SessionEvent.Added({ id, infoHash: key, name: entry.name }))
    return entry
  })

const removeEntry = ({ ctx, entries, fibers, services }: Registry, entry: SessionEntry, deleteData: boolean) =>
  Effect.gen(function* () {
    yield* FiberMap.remove(fibers, entry.key)
    yield* closeStorage(entry)
    entries.delete(entry.id)
    const info = entry.source?.info
    if (deleteData && info !== undefined) yield* removeData(info, entry.directory).pipe(Effect.provide(services))
    yield* ctx.publish(SessionEvent.Removed({ id: entry.id, deletedData: deleteData }))
  })

/** The shared parts: the listener and its router, the DHT node, the connection permits. */
const sessionContext = (options: SessionOptions, events: PubSub.PubSub<SessionEvent>, wakeups: Queue.Queue<void>) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const listen = options.listen
    const listening = listen === undefined
      ? undefined
      : yield* Effect.firstSuccessOf(
        listenPortCandidates(listen.port, listen.fallback === true).map((port) => transport.listen({ host: listen.host, port }))
      )
    const encryption = options.encryption === undefined ? {} : { encryption: options.encryption }
    const inbound = listening === undefined ? undefined : yield* makeInboundRouter(listening, encryption)
    const port = listening?.port ?? 6881
    const dht = options.dht === undefined ? undefined : yield* startDht(options.dht, listen?.host ?? "0.0.0.0", port)
    const ctx: SessionContext = {
      // Made before the runs' FiberMap, so closed after it: a run's last resume save still has its storage.
      scope: yield* Effect.flatMap(Effect.scope, (scope) => Scope.fork(scope, ExecutionStrategy.sequential)),
      peerId: options.peerId ?? makePeerId((n) => crypto.getRandomValues(new Uint8Array(n))),
      inbound,
      port,
      permits: yield* Effect.makeSemaphore(options.maxConnections ?? sessionDefaults.maxConnections),
      dht,
      options,
      maxPeersPerTorrent: options.maxPeersPerTorrent ?? sessionDefaults.maxPeersPerTorrent,
      encryption,
      publish: (event) => events.publish(event),
      wake: Queue.offer(wakeups, undefined)
    }
    return ctx
  })

/** The session's DHT node on the listen port's UDP socket (shared with uTP). */
const startDht = (dht: NonNullable<SessionOptions["dht"]>, host: string, port: number) =>
  Effect.flatMap(Effect.serviceOption(Dht), (service) =>
    service._tag === "None"
      ? Effect.dieMessage("Session: options.dht needs the Dht service")
      : service.value.start({ host, port, bootstrap: dht.bootstrap, ...(dht.statePath === undefined ? {} : { statePath: dht.statePath }) }))

const roleOf = (entry: SessionEntry): QueueRole => (entry.have?.isComplete === true ? "seed" : "download")

const closeStorage = (entry: SessionEntry) =>
  Effect.suspend(() => {
    const open = entry.storage
    entry.storage = undefined
    return open === undefined ? Effect.void : Scope.close(open.scope, Exit.void)
  })

interface ParsedInput {
  readonly magnet: SessionEntry["magnet"]
  readonly source: SessionEntry["source"]
  readonly name: string | undefined
}

const invalid = (input: TorrentInput) => (cause: { readonly message: string }) =>
  new InvalidTorrentInput({ input: input._tag, detail: cause.message, cause })

/** The info hash and what else the input gives; the peers of `options` join the input's. */
const parseInput = (input: TorrentInput, options: AddOptions): Effect.Effect<ParsedInput, InvalidTorrentInput> => {
  const extra = options.peers ?? []
  return TorrentInput.$match(input, {
    Metainfo: ({ bytes }) =>
      Either.match(parseTorrent(bytes), {
        onLeft: (e) => Effect.fail(invalid(input)(e)),
        onRight: (meta) => {
          const source = { info: meta.info, trackers: trackerTiers(meta), peers: extra }
          return Effect.succeed({ magnet: { infoHash: meta.info.infoHash, trackers: [], peers: extra }, source, name: meta.info.name })
        }
      }),
    Magnet: ({ uri }) =>
      Either.match(parseMagnet(uri), {
        onLeft: (e) => Effect.fail(invalid(input)(e)),
        onRight: (link) =>
          Effect.succeed({ magnet: { ...link, peers: [...link.peers, ...extra] }, source: undefined, name: link.displayName })
      }),
    InfoHash: ({ hex }) => {
      const infoHash = fromHex(hex, 20)
      return infoHash === undefined
        ? Effect.fail(invalid(input)({ message: `${JSON.stringify(hex)} is not 40 hex digits` }))
        : Effect.succeed({ magnet: { infoHash, trackers: [], peers: extra }, source: undefined, name: undefined })
    }
  })
}

const newEntry = (
  id: number,
  key: string,
  input: TorrentInput,
  options: AddOptions,
  parsed: ParsedInput,
  directory: string,
  addedAtMs: number,
  limits: SessionEntry["limits"]
): SessionEntry => ({
  id,
  key,
  input,
  options,
  limits,
  directory,
  paused: options.paused === true,
  finished: false,
  status: options.paused === true ? "paused" : "queued",
  error: undefined,
  name: parsed.name,
  magnet: parsed.magnet,
  source: parsed.source,
  storage: undefined,
  have: undefined,
  handle: undefined,
  totals: { downloaded: 0, uploaded: 0, wasted: 0 },
  last: undefined,
  rates: { down: 0, up: 0 },
  seedingSince: undefined,
  addedAtMs,
  resumed: undefined
})

const summary = (entry: SessionEntry): Effect.Effect<SessionTorrent> =>
  Effect.gen(function* () {
    const running = entry.handle === undefined ? undefined : yield* entry.handle.stats
    const info = entry.source?.info
    const have = entry.have ?? Bitfield.empty(info?.pieceCount ?? 0)
    const stats = running ?? entry.last
    const uploadedBytes = entry.totals.uploaded + (running?.uploadedBytes ?? 0)
    // Both over the whole torrent (a run counts wanted bytes only): the fraction holds whatever
    // the file selection, and a torrent not running yet shows what its check found.
    const verifiedBytes = info === undefined ? 0 : bytesOfPieces(info, have)
    const totalBytes = info?.totalLength ?? 0
    return {
      id: entry.id,
      infoHash: entry.key,
      name: entry.name,
      directory: entry.directory,
      status: entry.status,
      error: entry.status === "error" ? entry.error : undefined,
      piecesDone: Math.max(have.cardinality, stats?.piecesDone ?? 0),
      piecesTotal: info?.pieceCount ?? 0,
      verifiedBytes,
      totalBytes,
      downloadedBytes: entry.totals.downloaded + (running?.downloadedBytes ?? 0),
      uploadedBytes,
      wastedBytes: entry.totals.wasted + (running?.wastedBytes ?? 0),
      peers: running?.peers ?? 0,
      port: running?.port,
      downloadRate: entry.rates.down,
      uploadRate: entry.rates.up,
      ratio: info === undefined || info.totalLength === 0 ? 0 : uploadedBytes / info.totalLength,
      resumed: entry.resumed,
      addedAtMs: entry.addedAtMs
    }
  })

/** Queued again after a pause, an error or a met goal; the queue starts it when a slot is free. */
const requeue = (entry: SessionEntry, ctx: SessionContext) =>
  Effect.suspend(() => {
    entry.paused = false
    entry.finished = false
    entry.seedingSince = undefined
    return setStatus(entry, "queued", ctx)
  })

/** Its files to another folder (its run stopped); checked again there, as a storage opened afresh must be. */
const moveEntry = (registry: Registry, entry: SessionEntry, directory: string) =>
  Effect.gen(function* () {
    entry.have = undefined
    yield* closeStorage(entry)
    const info = entry.source?.info
    if (info !== undefined) yield* moveData(info, entry.directory, directory).pipe(Effect.provide(registry.services))
    entry.directory = directory
  })

/** Its file selection, applied to its run (or storage) at once and kept in its options. */
const applyFilePriorities = (entry: SessionEntry, priorities: ReadonlyArray<FilePriority>) =>
  Effect.gen(function* () {
    const info = entry.source?.info
    if (info === undefined) {
      return yield* new FileSelectionError({ reason: "OutOfRange", input: `${priorities.length} priorities`, detail: "the torrent's metadata is not known yet" })
    }
    const checked = yield* checkPriorities(info, priorities)
    if (entry.handle !== undefined) yield* entry.handle.setFilePriorities(checked)
    else if (entry.storage !== undefined) yield* entry.storage.storage.setWanted(wantedFiles(info, checked))
    entry.options = { ...entry.options, files: checked }
  })

/** Its own limits, changed in place (its run applies them at once) and kept in its options. */
const applyRateLimits = (entry: SessionEntry, limits: TorrentRateLimits) => {
  entry.limits.download.set(limits.download)
  entry.limits.upload.set(limits.upload)
  entry.options = { ...entry.options, rateLimits: { download: limits.download, upload: limits.upload } }
}

const trackersOf = (entry: SessionEntry) =>
  entry.handle?.trackers ?? Effect.succeed(unannounced(entry.source?.trackers ?? entry.magnet.trackers.map((t) => [t])))

const filesOf = (entry: SessionEntry): ReadonlyArray<TorrentFileStatus> => {
  const info = entry.source?.info
  if (info === undefined) return []
  const have = entry.have
  const completed = verifiedFileBytes(info, (piece) => have?.has(piece) === true)
  const priorities = prioritiesOf(entry, info)
  return info.files.map((file, index) => ({
    index,
    path: (info.isMultiFile ? [info.name, ...file.path] : file.path).join("/"),
    length: file.length,
    bytesCompleted: completed[index]!,
    priority: priorities?.[index] ?? "normal"
  }))
}

const recordOf = (entry: SessionEntry): TorrentRecord => ({
  id: entry.id,
  input: entry.input,
  options: entry.options,
  directory: entry.directory,
  paused: entry.paused
})
