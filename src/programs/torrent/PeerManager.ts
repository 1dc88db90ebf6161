/**
 * Which peers the torrent talks to: candidates from every source (trackers, given addresses,
 * peer exchange, inbound connections) become session jobs on one queue, which the torrent's
 * pipeline runs with bounded concurrency (the connection limit). A job that ends is retried on a
 * `Schedule` with backoff and jitter unless the peer is banned, ourselves, or broke the protocol.
 * Peers silent for 3 minutes are dropped, every peer hears from us at least every 2 minutes, and
 * peers that keep us choked or have nothing we want make room when others wait for a slot. A
 * candidate told to be a seed is passed over while we want nothing ourselves: nothing to trade.
 */
import { Deferred, Effect, FiberSet, Queue, Schedule, type Scope, Stream } from "effect"
import { equalBytes } from "../../domain/Bytes.js"
import { formatPeer, isOwnAddress, noHints, type PeerAddress, type PeerCandidate } from "../../domain/Peer.js"
import { type Message, Message as Msg } from "../../domain/Wire.js"
import { type PeerConnection, PeerError } from "../../services/PeerWire.js"
import { clientName, greet, handleChunk, makeSession } from "./PeerSession.js"
import { anyLimited, chargeReceived } from "./RateLimiter.js"
import { TorrentEvent } from "./TorrentEvent.js"
import { endSession, flush, type PeerSession, SessionEnd, type TorrentState } from "./TorrentState.js"

/** A connection to make (dial) or take (accept), and how it is retried. */
export interface SessionJob {
  readonly key: string
  readonly inbound: boolean
  /** Dials or accepts; gives the connection and the reserved bits we sent. */
  readonly open: Effect.Effect<{ readonly conn: PeerConnection; readonly reserved: Uint8Array }, PeerError, Scope.Scope>
  /** The backoff across consecutive failures (made at the first). */
  retry: Schedule.ScheduleDriver<unknown, PeerError> | undefined
}

export const defaultPeerRetry: Schedule.Schedule<unknown, PeerError> = Schedule.exponential("250 millis", 2).pipe(
  Schedule.jittered,
  Schedule.either(Schedule.spaced("60 seconds")),
  Schedule.intersect(Schedule.recurs(12)),
  // A peer for another torrent, or one that broke the protocol, is not worth another try.
  Schedule.whileInput((e: PeerError) => e.reason !== "InfoHashMismatch" && e.reason !== "Protocol")
)

/** Candidate addresses we remember at once: a tracker or a peer cannot make the list grow without bound. */
const maxCandidates = 1000
const keepAliveMillis = 120_000
const silenceMillis = 180_000
/** A peer useless to us this long may be evicted for a waiting one. */
const uselessMillis = 30_000

export interface PeerManager {
  readonly jobs: Queue.Queue<SessionJob>
  /** A candidate address (deduplicated; banned, own and known addresses are ignored). */
  readonly addPeer: (address: PeerAddress) => Effect.Effect<void>
  /** A candidate with its hints, dialled by them; one told to be a seed is ignored while we want nothing. */
  readonly addCandidate: (candidate: PeerCandidate) => Effect.Effect<void>
  /** An inbound connection; refused when every slot is taken by a useful peer. */
  readonly addInbound: (key: string, open: SessionJob["open"]) => Effect.Effect<boolean>
  /** Runs a job: its session's message chunks until it ends; failures end the stream quietly. */
  readonly run: (job: SessionJob) => Stream.Stream<never>
  /** Keep-alives, silent peers, eviction: run with the torrent's tick. */
  readonly upkeep: (now: number) => void
  /** Addresses being dialled, connected or waiting for a retry. */
  readonly pending: () => number
}

/** The manager's own books: the job queue, the retries waiting out a backoff, the addresses with a job, and how many jobs hold or wait for a slot. */
interface Roster {
  readonly jobs: Queue.Queue<SessionJob>
  readonly retries: FiberSet.FiberSet
  /** Addresses with a job: queued, running or waiting to retry. */
  readonly known: Map<string, PeerAddress>
  /** Jobs running (holding a connection slot), and jobs queued for one (the pipeline may hold them already). */
  running: number
  waiting: number
}

export const makePeerManager = (
  state: TorrentState,
  dial: (candidate: PeerCandidate) => SessionJob["open"],
  retrySchedule: Schedule.Schedule<unknown, PeerError>
): Effect.Effect<PeerManager, never, Scope.Scope> =>
  Effect.gen(function* () {
    const roster: Roster = { jobs: yield* Queue.unbounded<SessionJob>(), retries: yield* FiberSet.make(), known: new Map(), running: 0, waiting: 0 }
    return {
      jobs: roster.jobs,
      addPeer: (address) => addCandidate(state, roster, dial, { address, hints: noHints }),
      addCandidate: (candidate) => addCandidate(state, roster, dial, candidate),
      addInbound: (key, open) => admitInbound(state, roster, key, open),
      run: (job) => runJob(state, roster, retrySchedule, job),
      upkeep: (now) => upkeep(state, roster, now),
      pending: () => roster.known.size
    }
  })

const enqueue = (roster: Roster, job: SessionJob) =>
  Effect.suspend(() => {
    roster.waiting++
    return Queue.offer(roster.jobs, job)
  })

/** A new address becomes a dial job, unless it is known, banned, ourselves, a seed while we want nothing, or the list is full. */
const addCandidate = (
  state: TorrentState,
  roster: Roster,
  dial: (candidate: PeerCandidate) => SessionJob["open"],
  candidate: PeerCandidate
): Effect.Effect<void> => {
  const { address } = candidate
  const key = formatPeer(address)
  if (roster.known.has(key) || state.banned.has(key) || roster.known.size >= maxCandidates) return Effect.void
  if (isOwnAddress(address, state.port) || (candidate.hints.seed && state.picker.isComplete)) return Effect.void
  roster.known.set(key, address)
  state.counters.peersSeen++
  return enqueue(roster, { key, inbound: false, open: dial(candidate), retry: undefined })
}

/** An inbound connection takes a free slot, or one a useless peer makes room in; else it is refused. */
const admitInbound = (state: TorrentState, roster: Roster, key: string, open: SessionJob["open"]) =>
  Effect.suspend(() => {
    if (state.banned.has(key)) return Effect.succeed(false)
    if (roster.running >= state.options.maxPeers && !evictOne(state, state.now())) return Effect.succeed(false)
    return Effect.as(enqueue(roster, { key, inbound: true, open, retry: undefined }), true)
  })

/** A job's session: its message chunks until it ends; then the drop is told and the job retried or forgotten. */
const runJob = (
  state: TorrentState,
  roster: Roster,
  retrySchedule: Schedule.Schedule<unknown, PeerError>,
  job: SessionJob
): Stream.Stream<never> => {
  let session: PeerSession | undefined
  return Stream.unwrapScoped(
    Effect.gen(function* () {
      roster.running++
      roster.waiting--
      yield* Effect.addFinalizer(() => Effect.sync(() => roster.running--))
      const s = (session = yield* openSession(state, job))
      // The upload side beside the reader, in the session's scope; a disk that cannot be read
      // back ends the torrent.
      yield* state.uploader.serve(s.up).pipe(
        Effect.catchTags({
          PeerError: (e) => Effect.sync(() => endSession(s, e.message, true)),
          StorageError: (e) => Deferred.fail(state.failed, e)
        }),
        Effect.forkScoped
      )
      return Stream.fromEffect(s.conn.consume((messages) => deliver(state, s, messages))).pipe(Stream.interruptWhen(s.end))
    })
  ).pipe(
    Stream.catchAll((e) =>
      Stream.fromEffect(
        Effect.zipRight(
          // A peer that never got as far as a handshake was never there to drop.
          session === undefined && !(e instanceof SessionEnd)
            ? Effect.void
            : state.emit(TorrentEvent.PeerDropped({ peer: job.key, reason: e.message })),
          retryOrForget(state, roster, retrySchedule, job, e, session !== undefined)
        )
      ).pipe(Stream.drain)
    )
  )
}

/** Waits out the backoff in a fiber of its own (holding no slot), then queues the job again. */
const retryOrForget = (
  state: TorrentState,
  roster: Roster,
  retrySchedule: Schedule.Schedule<unknown, PeerError>,
  job: SessionJob,
  error: PeerError | SessionEnd,
  connected: boolean
) =>
  Effect.gen(function* () {
    const input = error instanceof SessionEnd
      ? (error.retry ? new PeerError({ peer: job.key, reason: "Closed", detail: error.reason }) : undefined)
      : error
    if (job.inbound || input === undefined || state.banned.has(job.key)) {
      roster.known.delete(job.key)
      return
    }
    const driver = job.retry ??= yield* Schedule.driver(retrySchedule)
    // A session that worked starts the backoff afresh.
    if (connected) yield* driver.reset
    yield* driver.next(input).pipe(
      Effect.zipRight(enqueue(roster, job)),
      Effect.catchAll(() => Effect.sync(() => roster.known.delete(job.key))),
      FiberSet.run(roster.retries)
    )
  })

/** Drops silent peers, marks useless ones, sends keep-alives, and evicts for the jobs waiting for a slot. */
const upkeep = (state: TorrentState, roster: Roster, now: number) => {
  for (const s of state.sessions.values()) {
    if (now - s.lastReceivedAt > silenceMillis) {
      endSession(s, "silent for 3 minutes", true)
      continue
    }
    const useful = !s.choked && state.picker.isInteresting(s.key)
    if (useful) s.uselessSince = undefined
    else s.uselessSince ??= now
    if (now - s.lastSentAt > keepAliveMillis) s.outbox.push(Msg.keepAlive)
    flush(s, now)
  }
  // As many useless peers make room as there are candidates waiting for a slot.
  if (roster.running < state.options.maxPeers) return
  for (let wanted = roster.waiting; wanted > 0 && evictOne(state, now); wanted--);
}

/** Ends the peer that has been of least use the longest; false when every peer is useful. */
const evictOne = (state: TorrentState, now: number): boolean => {
  let worst: PeerSession | undefined
  for (const s of state.sessions.values()) {
    const since = s.uselessSince
    if (since === undefined || now - since < uselessMillis || s.up.interested) continue
    if (worst === undefined || since < worst.uselessSince!) worst = s
  }
  if (worst === undefined) return false
  endSession(worst, "evicted: it kept us choked or had nothing we want while other peers waited", true)
  return true
}

/** A handshaken connection becomes a session of the torrent (unless it is ourselves, banned or a duplicate). */
const openSession = (state: TorrentState, job: SessionJob) =>
  Effect.gen(function* () {
    const { conn, reserved } = yield* job.open
    if (equalBytes(conn.remote.peerId, state.peerId)) {
      state.banned.add(job.key)
      return yield* Effect.fail(new SessionEnd("connected to ourselves", false))
    }
    const s = makeSession(state, conn, job.key, job.inbound, reserved)
    if (state.banned.has(s.identity)) return yield* Effect.fail(new SessionEnd("banned peer", false))
    for (const other of state.sessions.values()) {
      if (other.identity === s.identity) return yield* Effect.fail(new SessionEnd("already connected to this peer", false))
    }
    state.picker.addPeer(s.key)
    state.sessions.set(s.key, s)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        state.sessions.delete(s.key)
        state.picker.removePeer(s.key)
        state.uploader.remove(s.key)
      })
    )
    yield* state.emit(
      TorrentEvent.PeerConnected({ peer: s.key, client: clientName(conn.remote.peerId), inbound: job.inbound, encryption: conn.encryption, transport: conn.transport })
    )
    greet(state, s)
    return s
  })

/**
 * The bookkeeping stage, run on each TCP read's messages inside the socket's callback; the
 * pieces they complete go on to the verify stage. Only a full verify queue or a download limit
 * makes Effect run here: then this socket is not read until there is room, or until the read's
 * bytes are granted (backpressure).
 */
const deliver = (state: TorrentState, session: PeerSession, messages: ReadonlyArray<Message>) => {
  const pieces = handleChunk(state, session, messages)
  const throttle = anyLimited(state.downloadLimits) ? chargeReceived(state.downloadLimits, messages) : undefined
  if (pieces.length === 0) return throttle
  const waiting = pieces.filter((piece) => !Queue.unsafeOffer(state.completedPieces, piece))
  const queued = waiting.length === 0 ? undefined : Queue.offerAll(state.completedPieces, waiting)
  return queued === undefined ? throttle : throttle === undefined ? queued : Effect.zipRight(queued, throttle)
}
