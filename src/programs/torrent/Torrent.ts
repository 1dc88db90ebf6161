/**
 * One torrent: a swarm member that fetches and serves at once. Downloading and seeding are
 * states of the same thing: a torrent whose pieces are all verified seeds (when asked to go on).
 *
 * The data path is a Stream pipeline: session jobs (dialled, accepted, retried) run with bounded
 * concurrency (the connection limit), each a Stream of its peer's message chunks, one per TCP
 * read; the merged chunks go through one synchronous bookkeeping stage (`handleChunk`: the picker,
 * the upload side, answers into per-peer outboxes), so per-block work stays plain code and Effect
 * runs once per chunk; completed pieces go through `mapEffect(verify and write, { concurrency })`.
 * Interrupting the torrent ends every session, fiber and socket.
 */
import { Deferred, Duration, Effect, Fiber, Queue, Random, type Scope, Stream, Take } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import { equalBytes } from "../../domain/Bytes.js"
import { swarmIds } from "../../domain/MetainfoV2.js"
import { hashBudget, makeHashServer } from "../../domain/PieceLayers.js"
import { formatPeer, listenPortCandidates, type PeerCandidate } from "../../domain/Peer.js"
import { checkPriorities, type FilePriority, type FileSelectionError, piecePlan } from "../../domain/FileSelection.js"
import { type CompletedPiece, PiecePicker } from "../../domain/PiecePicker.js"
import { seededRandom } from "../../domain/SeededRandom.js"
import { makeReserved } from "../../domain/Wire.js"
import { Hasher } from "../../services/Hasher.js"
import { type AcceptOptions, type LocalTorrent, PeerWire, skeyLookup } from "../../services/PeerWire.js"
import type { StorageError, TorrentStorage } from "../../services/Storage.js"
import type { Tracker } from "../../services/Tracker.js"
import { type Listening, Transport } from "../../services/Transport.js"
import { makeUploader } from "../Upload.js"
import { type Announcer, startAnnouncer, type TrackerStatus, unannounced } from "./Announcer.js"
import { startLocalDiscovery } from "./LocalDiscovery.js"
import { makePeerExchange } from "./PeerExchange.js"
import { type EventBatch, makeEventBatch } from "./EventBatch.js"
import { applyFilePriorities } from "./FilePriorities.js"
import { defaultPeerRetry, makePeerManager, type PeerManager, type SessionJob } from "./PeerManager.js"
import { clientName } from "./PeerSession.js"
import { retune, rush } from "./RequestScheduler.js"
import {
  DownloadStalled,
  NoPeerSources,
  type PeerSource,
  type RoutedPeer,
  type SharedListener,
  TorrentEvent,
  type TorrentError,
  type TorrentOptions,
  type TorrentSource
} from "./TorrentEvent.js"
import { attachEngine, makeStreaming, type PieceWindow, prioritize, type PriorityWindow, type Streaming, type TorrentEnded, waitPiece } from "./Streaming.js"
import { flush, resolveOptions, type TorrentState } from "./TorrentState.js"
import { makeVerifier } from "./Verifier.js"
import { startWebSeeds, type WebSeeds } from "./WebSeedSession.js"

/**
 * Where verified pieces go: a torrent's files, or one file for `download_piece`. A sink that can
 * also read blocks back (`readBlock`) lets the torrent upload what it has verified.
 */
export type PieceSink = Pick<TorrentStorage, "writePiece"> & Partial<Pick<TorrentStorage, "readBlock" | "setWanted">>

export type TorrentServices = Tracker | PeerWire | Hasher | Transport

const tickMillis = 200
/** Completed pieces hashed and written at once: one piece's write does not hold up the next one's hash. */
const verifyConcurrency = 4
/** Completed pieces queued for hashing at once: bounds memory and backpressures the sockets. */
const verifyQueueBytes = 8 * 1024 * 1024

/** Where a torrent stands, at any time. */
export interface TorrentStats {
  readonly piecesDone: number
  readonly piecesTotal: number
  readonly verifiedBytes: number
  readonly totalBytes: number
  /** Payload bytes accepted from peers, sent to peers, and lost to pieces that failed their hash. */
  readonly downloadedBytes: number
  readonly uploadedBytes: number
  readonly wastedBytes: number
  readonly peers: number
  /** The port it listens on, if it does. */
  readonly port: number | undefined
}

/** One connected peer of a running torrent, as a front end shows it. */
export interface PeerStatus {
  /** host:port. */
  readonly address: string
  readonly client: string
  readonly transport: "tcp" | "utp"
  readonly encrypted: boolean
  readonly inbound: boolean
  /** Payload bytes per second, recent. */
  readonly downloadRate: number
  readonly uploadRate: number
  /** The share of the pieces they have, 0..1. */
  readonly progress: number
  readonly amChoking: boolean
  readonly amInterested: boolean
  readonly peerChoking: boolean
  readonly peerInterested: boolean
}

/** A running torrent, for library users: what it says, where it stands, and how to end it. */
export interface TorrentHandle {
  /**
   * Its events, for one consumer. A consumer that falls behind loses the oldest (the torrent never
   * waits for it); `run` is the backpressured alternative.
   */
  readonly events: Stream.Stream<TorrentEvent, TorrentError>
  readonly stats: Effect.Effect<TorrentStats>
  /** Its connected peers (none before it has started). */
  readonly peers: Effect.Effect<ReadonlyArray<PeerStatus>>
  /** Its trackers and how their announces went. */
  readonly trackers: Effect.Effect<ReadonlyArray<TrackerStatus>>
  /** Waits for the end: every wanted piece verified (without `seed`), or the error that ended it. */
  readonly done: Effect.Effect<void, TorrentError>
  /** Stops it now (a `stopped` announce goes out, bounded); stopping twice is fine. */
  readonly stop: Effect.Effect<void>
  /**
   * Changes the file selection as it runs: one priority per file (`TorrentOptions.files`). Newly
   * wanted files are created (when the sink is a torrent's storage); once every wanted piece is
   * verified, `done` succeeds (a seeding torrent goes on).
   */
  readonly setFilePriorities: (priorities: ReadonlyArray<FilePriority>) => Effect.Effect<void, FileSelectionError | StorageError>
  /**
   * Streaming: the window's wanted pieces are fetched before any other (head first, in deadline
   * order, shared with the other open windows) until the scope closes; `move` slides it.
   */
  readonly prioritize: (window: PieceWindow) => Effect.Effect<PriorityWindow, never, Scope.Scope>
  /** Waits until the piece is verified (at once when it is); fails once the torrent has stopped. */
  readonly waitPiece: (index: number) => Effect.Effect<void, TorrentEnded>
  /** Bytes of a piece, read back from the storage once it is verified (the uploader's read path). */
  readonly read: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, TorrentEnded | StorageError>
}

/** Events a handle keeps for a slow consumer. */
const handleEvents = 4096

/**
 * Runs a torrent over an opened storage: its events, until every wanted piece is verified (or,
 * with `seed`, until interrupted). Fails with a typed error when it cannot go on.
 */
export const run = (
  source: TorrentSource,
  sink: PieceSink,
  have: Bitfield,
  options: TorrentOptions
): Stream.Stream<TorrentEvent, TorrentError, TorrentServices> =>
  Stream.unwrapScoped(
    Effect.map(launch(source, sink, have, options, Queue.bounded(256)), ({ events }) => events)
  )

/** Starts a torrent in the current scope and hands back its handle; closing the scope stops it. */
export const start = (
  source: TorrentSource,
  sink: PieceSink,
  have: Bitfield,
  options: TorrentOptions
): Effect.Effect<TorrentHandle, never, TorrentServices | Scope.Scope> =>
  Effect.map(launch(source, sink, have, options, Queue.sliding(handleEvents)), ({ events, fiber, state, selection, streaming }) => {
    const waitFor = (index: number) =>
      waitPiece(streaming, index, (i) => streaming.picker?.have.has(i) ?? have.has(i), Fiber.await(fiber))
    return {
      events,
      stats: Effect.sync(() => statsOf(state.current)),
      peers: Effect.sync(() => (state.current === undefined ? [] : peersOf(state.current))),
      trackers: Effect.sync(() => (state.current === undefined ? unannounced(source.trackers) : [...state.current.trackers])),
      done: Fiber.join(fiber),
      stop: Effect.asVoid(Fiber.interrupt(fiber)),
      prioritize: (window) => prioritize(streaming, window),
      waitPiece: waitFor,
      read: (index, begin, length) => Effect.zipRight(waitFor(index), readableSink(sink).readBlock(index, begin, length)),
      setFilePriorities: (priorities) =>
        Effect.suspend(() =>
          state.current !== undefined
            ? applyFilePriorities(state.current, sink, priorities)
            : Effect.map(checkPriorities(source.info, priorities), (checked) => {
                selection.current = checked // the engine applies it once it has started
              })
        )
    }
  })

/** Forks the engine in the scope; its events go through `queue`, and its end closes them. */
const launch = (
  source: TorrentSource,
  sink: PieceSink,
  have: Bitfield,
  options: TorrentOptions,
  queue: Effect.Effect<Queue.Queue<Take.Take<TorrentEvent, TorrentError>>>
) =>
  Effect.gen(function* () {
    const events = yield* queue
    const state: { current: TorrentState | undefined } = { current: undefined }
    const selection: { current: ReadonlyArray<FilePriority> | undefined } = { current: undefined }
    const streaming = makeStreaming()
    const batch = makeEventBatch(events)
    const fiber = yield* engine(source, sink, have, options, batch, state, streaming, selection).pipe(
      Effect.onExit((exit) => Effect.zipRight(batch.flush, Queue.offer(events, exit._tag === "Success" ? Take.end : Take.failCause(exit.cause)))),
      Effect.forkScoped
    )
    return { events: Stream.fromQueue(events).pipe(Stream.flattenTake), fiber, state, selection, streaming }
  })

const statsOf = (state: TorrentState | undefined): TorrentStats =>
  state === undefined
    ? { piecesDone: 0, piecesTotal: 0, verifiedBytes: 0, totalBytes: 0, downloadedBytes: 0, uploadedBytes: 0, wastedBytes: 0, peers: 0, port: undefined }
    : {
        piecesDone: state.picker.have.cardinality,
        piecesTotal: state.info.pieceCount,
        verifiedBytes: state.counters.verifiedBytes,
        totalBytes: state.picker.bytesWanted,
        downloadedBytes: state.counters.downloaded,
        uploadedBytes: state.uploader.uploaded(),
        wastedBytes: state.counters.wasted,
        peers: state.sessions.size,
        port: state.listening ? state.port : undefined
      }

const peersOf = (state: TorrentState): Array<PeerStatus> =>
  [...state.sessions.values()].map((s) => ({
    address: s.key,
    client: clientName(s.conn.remote.peerId),
    transport: s.conn.transport,
    encrypted: s.conn.encryption === "mse-rc4",
    inbound: s.inbound,
    downloadRate: s.rate,
    uploadRate: s.up.uploadRate,
    progress: state.info.pieceCount === 0 ? 1 : (state.picker.peerHas(s.key)?.cardinality ?? 0) / state.info.pieceCount,
    amChoking: s.up.choked,
    amInterested: s.interested,
    peerChoking: s.choked,
    peerInterested: s.up.interested
  }))

/** Binds the listen port: the one asked for, else (with `fallback`) the next few, else any free port. */
export const bindListener = (listen: NonNullable<TorrentOptions["listen"]>) =>
  Effect.flatMap(Transport, (transport) =>
    Effect.firstSuccessOf(
      listenPortCandidates(listen.port, listen.fallback === true).map((port) => transport.listen({ host: listen.host, port }))
    ))

const engine = (
  source: TorrentSource,
  sink: PieceSink,
  have: Bitfield,
  options: TorrentOptions,
  events: EventBatch,
  exposed: { current: TorrentState | undefined },
  /** Open streams' windows and readers. */
  streaming: Streaming,
  /** A file selection set through the handle before the state existed. */
  selection: { readonly current: ReadonlyArray<FilePriority> | undefined } = { current: undefined }
): Effect.Effect<void, TorrentError, TorrentServices> =>
  Effect.scoped(
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      const now = () => clock.unsafeCurrentTimeMillis()
      const startedAt = now()
      const picker = yield* makePicker(source.info, have, options)
      const listening = options.inbound !== undefined
        ? undefined
        : options.listener ?? (options.listen === undefined ? undefined : yield* bindListener(options.listen))
      const address = listening ?? options.inbound
      const state = yield* makeState(source, sink, options, { picker, address, now, startedAt, events, streaming })
      exposed.current = state
      if (selection.current !== undefined) {
        yield* applyFilePriorities(state, sink, selection.current).pipe(Effect.catchTag("FileSelectionError", Effect.die)) // checked already
      }
      const manager = yield* startPeers(state, sink, options, listening)
      const { announcer, sourcesRunning } = yield* startSources(state, source, options, manager)
      yield* events.emit(TorrentEvent.Started({
        pieces: source.info.pieceCount,
        verified: have.cardinality,
        bytesLeft: picker.bytesLeft,
        totalBytes: picker.bytesWanted,
        host: address?.host,
        port: address?.port
      }))
      const webSeeds = yield* startWebSeeds(state, options.webSeeds ?? [])
      if (picker.isComplete) yield* Deferred.succeed(state.completed, undefined)
      yield* ticker(state, manager, announcer, sourcesRunning, webSeeds, Duration.toMillis(options.progressInterval ?? "1 second")).pipe(Effect.forkScoped)
      yield* state.uploader.chokeRound.pipe(Effect.delay(chokeIntervalOf(options)), Effect.forever, Effect.forkScoped)
      yield* awaitEnd(state, announcer, options, startedAt)
    })
  )

const chokeIntervalOf = (options: TorrentOptions) => Duration.decode(options.chokeInterval ?? "10 seconds")

/** The picker over what we have and want (some pieces, or a file selection, or everything). */
const makePicker = (info: TorrentSource["info"], have: Bitfield, options: TorrentOptions) =>
  Effect.gen(function* () {
    return new PiecePicker({
      // From Effect's Random, so a seeded run (tests, simulations) picks the same pieces every time;
      // drawn only when there is something to fetch (a seed leaves the Random sequence to the choker).
      random: seededRandom(have.isComplete ? 1 : yield* Random.nextIntBetween(1, 0x7fffffff)),
      pieceCount: info.pieceCount,
      pieceLength: info.pieceLength,
      totalLength: info.totalLength,
      have,
      sequential: options.sequential ?? false,
      ...(options.pieces !== undefined
        ? { wanted: wantedPieces(info.pieceCount, options.pieces) }
        : options.files === undefined ? {} : piecePlan(info, options.files))
    })
  })

/** What the engine made before the state: the picker, where it listens, its clock and its outlets. */
interface StateParts {
  readonly picker: PiecePicker
  readonly address: { readonly host?: string | undefined; readonly port: number } | undefined
  readonly now: () => number
  readonly startedAt: number
  readonly events: EventBatch
  readonly streaming: Streaming
}

/** The state the torrent's modules share, with the upload side over the sink and the streams attached. */
const makeState = (source: TorrentSource, sink: PieceSink, options: TorrentOptions, parts: StateParts) =>
  Effect.gen(function* () {
    const { info } = source
    const { picker, address } = parts
    const state: TorrentState = {
      info,
      peerId: options.peerId,
      options: resolveOptions(options),
      picker,
      uploader: yield* makeUploader(info, readableSink(sink), sink.readBlock === undefined ? Bitfield.empty(info.pieceCount) : picker.have, {
        slots: options.uploadSlots ?? 4,
        ...(options.maxQueuedRequests === undefined ? {} : { maxQueuedRequests: options.maxQueuedRequests }),
        chokeInterval: chokeIntervalOf(options),
        metadata: info.raw.length > 0 ? info.raw : undefined,
        limits: (options.rateLimits ?? []).map((l) => l.upload),
        // Tit-for-tat while downloading (what they give us); once complete, what we give them.
        rate: (p) => (picker.isComplete ? undefined : state.sessions.get(p.key)?.rate ?? 0)
      }),
      hashes: info.v2 === undefined ? undefined : { serve: makeHashServer(info), budget: hashBudget(info) },
      pex: options.pex === false || info.private ? undefined : makePeerExchange(),
      sessions: new Map(),
      downloadLimits: (options.rateLimits ?? []).map((l) => l.download),
      banned: new Set(),
      trackers: unannounced(source.trackers),
      counters: { peersSeen: 0, downloaded: 0, wasted: 0, verifiedBytes: 0, lastVerifiedAt: parts.startedAt, lastTrackerError: undefined },
      port: address?.port ?? options.port ?? 6881,
      listening: address !== undefined,
      now: parts.now,
      emit: parts.events.emit,
      flushEvents: parts.events.flush,
      completed: yield* Deferred.make<void>(),
      completedPieces: yield* Queue.bounded<CompletedPiece>(Math.max(2, Math.floor(verifyQueueBytes / info.pieceLength))),
      failed: yield* Deferred.make<never, TorrentError>(),
      streaming: parts.streaming
    }
    attachEngine(parts.streaming, picker, (due) => rush(state, due))
    state.counters.verifiedBytes = picker.bytesWanted - picker.bytesLeft
    return state
  })

/** The peer manager (dialling with our handshake), its sessions' pipeline into verify-and-write, and the inbound connections. */
const startPeers = (state: TorrentState, sink: PieceSink, options: TorrentOptions, listening: Listening | undefined) =>
  Effect.gen(function* () {
    const { info } = state
    // The v2 bit only for a v2 torrent: a v1 one's handshakes stay as the classic contract has them.
    const reserved = makeReserved({ extensions: true, fast: state.options.fast, v2: info.v2 !== undefined })
    const encryption = options.encryption === undefined ? {} : { encryption: options.encryption }
    const wire = yield* PeerWire
    const dial = ({ address, hints }: PeerCandidate): SessionJob["open"] =>
      Effect.map(
        wire.connect(address, { infoHash: info.infoHash, alsoAccept: swarmIds(info), peerId: options.peerId, reserved, pieceCount: info.pieceCount, hints, ...encryption }),
        (conn) => ({ conn, reserved })
      )
    const manager = yield* makePeerManager(state, dial, options.peerRetry ?? defaultPeerRetry)
    const run = withPermit(options.connectionPermits, manager.run)
    yield* runPipeline(state, { ...manager, run }, makeVerifier(state, yield* Hasher, sink))
    const local = { peerId: state.peerId, reserved, pieceCount: info.pieceCount }
    if (listening !== undefined) yield* acceptInbound(manager, yield* acceptedPeers(state, listening, local, encryption), reserved)
    if (options.inbound !== undefined) yield* acceptInbound(manager, yield* routedPeers(options.inbound, info, local), reserved)
    return manager
  })

/** Where candidate peers come from: the trackers, the given addresses, local discovery and the peer sources. */
const startSources = (state: TorrentState, source: TorrentSource, options: TorrentOptions, manager: PeerManager) =>
  Effect.gen(function* () {
    const announcer = yield* startAnnouncer(state, source, {
      announceInterval: options.announceInterval,
      stoppedTimeout: options.stoppedTimeout ?? "3 seconds",
      uploaded: state.uploader.uploaded,
      addPeer: manager.addPeer
    })
    for (const p of source.peers ?? []) yield* manager.addPeer(p)
    yield* startLocalDiscovery(state, manager.addPeer)
    const sourcesRunning = yield* runPeerSources(options.peerSources ?? [], state.port, manager)
    return { announcer, sourcesRunning }
  })

/** Waits for every wanted piece (or a failure), tells the tracker and the events, and seeds on if asked. */
const awaitEnd = (state: TorrentState, announcer: Announcer, options: TorrentOptions, startedAt: number) =>
  Effect.gen(function* () {
    yield* Effect.raceFirst(Deferred.await(state.completed), Deferred.await(state.failed))
    const fetched = state.counters.downloaded
    // A tracker hears `completed` only from a torrent that now has everything.
    if (fetched > 0 && options.pieces === undefined && state.picker.bytesWanted === state.info.totalLength) yield* announcer.completed
    yield* state.emit(TorrentEvent.Completed({ bytes: fetched, seconds: fetched === 0 ? 0 : (state.now() - startedAt) / 1000 }))
    if (state.options.seed) yield* Deferred.await(state.failed)
  })

const wantedPieces = (count: number, pieces: ReadonlyArray<number>) => {
  const wanted = Bitfield.empty(count)
  for (const i of pieces) wanted.add(i)
  return wanted
}

/** A sink that cannot read back serves nothing: its reads fail as "do not have" before they get here. */
const readableSink = (sink: PieceSink): Pick<TorrentStorage, "readBlock"> => ({
  readBlock: sink.readBlock ?? (() => Effect.die("this torrent's sink cannot read pieces back"))
})

/**
 * The sessions, as many at once as there are connection slots, each running the bookkeeping stage
 * on its reads (`PeerManager.run`); the pieces they complete go through the verify-and-write stage:
 * a few workers on the queue of completed pieces. (As `Stream.mapEffect(verify, { concurrency: 4,
 * unordered: true })` over that queue the stage measured 0.6-0.8 CPU-s more per 256 MiB: a third
 * more than the whole download; see the README.)
 */
const runPipeline = (state: TorrentState, manager: PeerManager, verifier: ReturnType<typeof makeVerifier>) =>
  Effect.zipRight(
    Stream.fromQueue(manager.jobs).pipe(
      Stream.flatMap(manager.run, { concurrency: state.options.maxPeers }),
      Stream.runDrain,
      Effect.forkScoped
    ),
    Queue.take(state.completedPieces).pipe(
      Effect.flatMap(verifier.verify),
      Effect.forever,
      Effect.replicateEffect(verifyConcurrency, { concurrency: "unbounded", discard: true }),
      Effect.catchAll((e) => Deferred.fail(state.failed, e)),
      Effect.forkScoped
    )
  )

/** A session holds one of the shared permits, if any, while it runs (waiting for one first). */
const withPermit = (permits: Effect.Semaphore | undefined, run: PeerManager["run"]): PeerManager["run"] =>
  permits === undefined
    ? run
    : (job) => Stream.unwrapScoped(Effect.as(Effect.acquireRelease(permits.take(1), () => permits.release(1)), run(job)))

/** Connections to our own listen port, handshaken for this torrent's info hash on adoption. */
const acceptedPeers = (
  state: TorrentState,
  listening: Listening,
  local: LocalTorrent,
  encryption: Pick<AcceptOptions, "encryption">
) =>
  Effect.map(PeerWire, (wire) => {
    const ids = swarmIds(state.info)
    const lookup = (hash: Uint8Array) => (ids.some((id) => equalBytes(hash, id)) ? local : undefined)
    const skey = skeyLookup(ids)
    return listening.connections.pipe(Stream.map((duplex): RoutedPeer => ({
      remote: duplex.remote,
      adopt: wire.accept(duplex, { lookup, skey, ...encryption }),
      refuse: Effect.sync(() => duplex.destroy())
    })))
  })

/** A shared listener's connections for any of the torrent's swarms (a hybrid torrent has two). */
const routedPeers = (inbound: SharedListener, info: TorrentSource["info"], local: LocalTorrent) =>
  Effect.map(
    Effect.forEach(swarmIds(info), (id) => inbound.register(id, local)),
    (streams) => Stream.mergeAll(streams, { concurrency: "unbounded" })
  )

/** Inbound connections become sessions like any other (refused when no slot can be made). */
const acceptInbound = (manager: PeerManager, peers: Stream.Stream<RoutedPeer>, reserved: Uint8Array) =>
  peers.pipe(
    Stream.runForEach((peer) => {
      const open: SessionJob["open"] = Effect.map(peer.adopt, (conn) => ({ conn, reserved }))
      return Effect.flatMap(manager.addInbound(formatPeer(peer.remote), open), (taken) => (taken ? Effect.void : peer.refuse))
    }),
    Effect.forkScoped
  )

/** Feeds each peer source to the manager until it ends; gives how many still run. */
const runPeerSources = (sources: ReadonlyArray<PeerSource>, port: number, manager: PeerManager) =>
  Effect.gen(function* () {
    let running = sources.length
    for (const source of sources) {
      yield* source(port).pipe(Stream.runForEach(manager.addPeer), Effect.ensuring(Effect.sync(() => running--)), Effect.forkScoped)
    }
    return () => running
  })

/** Every 200 ms: pipelines and timeouts; every second: upkeep, progress, and whether to give up. */
const ticker = (
  state: TorrentState,
  manager: PeerManager,
  announcer: Announcer,
  sourcesRunning: () => number,
  webSeeds: WebSeeds,
  progressMillis: number
) =>
  Effect.gen(function* () {
    let ticks = 0
    let lastProgress = state.now()
    let exhaustedSince: number | undefined
    while (true) {
      yield* Effect.sleep(tickMillis)
      const t = state.now()
      const everySecond = ++ticks % 5 === 0
      for (const s of state.sessions.values()) {
        retune(state, s, t, tickMillis / 1000, everySecond)
        flush(s, t)
      }
      yield* state.flushEvents
      if (!everySecond) continue
      manager.upkeep(t)
      for (const learned of state.pex?.upkeep(state, t) ?? []) yield* manager.addCandidate(learned)
      if (t - lastProgress >= progressMillis) {
        yield* state.emit(progress(state, (t - lastProgress) / 1000))
        lastProgress = t
      }
      if (state.picker.isComplete) continue
      const { counters, options } = state
      if (t - counters.lastVerifiedAt > options.stallTimeoutMs) {
        return yield* Deferred.fail(state.failed, new DownloadStalled({
          seconds: Math.round(options.stallTimeoutMs / 1000),
          piecesLeft: state.picker.piecesLeft,
          peersSeen: counters.peersSeen,
          lastTrackerError: counters.lastTrackerError
        }))
      }
      const hopeless = announcer.exhausted() && sourcesRunning() === 0 && webSeeds.running() === 0 &&
        state.sessions.size === 0 && manager.pending() === 0
      exhaustedSince = hopeless ? exhaustedSince ?? t : undefined
      if (exhaustedSince !== undefined && t - exhaustedSince >= options.giveUpAfterMs) {
        return yield* Deferred.fail(state.failed, new NoPeerSources({
          seconds: Math.round(options.giveUpAfterMs / 1000),
          lastTrackerError: counters.lastTrackerError,
          lastWebSeedError: webSeeds.lastError()
        }))
      }
    }
  })

const progress = (state: TorrentState, seconds: number): TorrentEvent => {
  let rate = 0
  let sent = 0
  let interested = 0
  let unchoked = 0
  let utpPeers = 0
  let encryptedPeers = 0
  for (const s of state.sessions.values()) {
    rate += s.rate
    if (s.conn.transport === "utp") utpPeers++
    if (s.conn.encryption === "mse-rc4") encryptedPeers++
  }
  for (const p of state.uploader.peers.values()) {
    sent += p.uploadedSinceTick
    p.uploadRate = seconds > 0 ? p.uploadedSinceTick / seconds : 0
    p.uploadedSinceTick = 0
    if (p.interested) interested++
    if (!p.choked) unchoked++
  }
  return TorrentEvent.Progress({
    verifiedBytes: state.counters.verifiedBytes,
    totalBytes: state.picker.bytesWanted,
    bytesPerSecond: rate,
    peers: state.sessions.size,
    utpPeers,
    encryptedPeers,
    piecesDone: state.picker.have.cardinality,
    piecesTotal: state.info.pieceCount,
    uploadedBytes: state.uploader.uploaded(),
    uploadBytesPerSecond: seconds > 0 ? sent / seconds : 0,
    interested,
    unchoked
  })
}

