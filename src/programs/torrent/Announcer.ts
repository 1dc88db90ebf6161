/**
 * The torrent's trackers: `started`, re-announces at the tracker's interval (sooner when peers
 * run out), `completed`, and `stopped` when the torrent stops (bounded in time). Every failure is
 * an event at once. A tracker that refuses the announce, answers garbage or an HTTP error, or
 * stays unreachable through a few tries has failed for good: when every source has, the torrent
 * can give up instead of waiting for minutes.
 */
import { Duration, Effect, Schedule, type Scope } from "effect"
import { bytesOfPieces } from "../../domain/PieceGeometry.js"
import { isOwnAddress, type PeerAddress } from "../../domain/Peer.js"
import { type AnnounceRequest, type AnnounceResponse, Tracker, type TrackerError } from "../../services/Tracker.js"
import { TorrentEvent, type TorrentSource } from "./TorrentEvent.js"
import type { TorrentState } from "./TorrentState.js"

export const announceRetry = Schedule.exponential("1 second", 2).pipe(Schedule.jittered, Schedule.either(Schedule.spaced("60 seconds")))

/** Unreachable or silent this many times in a row: failed for good (it is still retried). */
const unreachableTries = 3
const lowOnPeersMillis = 15_000
const loopMillis = 1_000

/** One tracker of the torrent, as its announces went. */
export interface TrackerStatus {
  readonly url: string
  /** Its tier (BEP 12), from 0. */
  readonly tier: number
  readonly lastAnnounceMs: number | undefined
  /** "Success", or why the last announce failed. */
  readonly lastResult: string | undefined
  /** What its last answer counted, when it said. */
  readonly seeders: number | undefined
  readonly leechers: number | undefined
}

/** The trackers of the tiers, before any announce. */
export const unannounced = (tiers: ReadonlyArray<ReadonlyArray<string>>): Array<TrackerStatus> =>
  tiers.flatMap((urls, tier) =>
    urls.map((url) => ({ url, tier, lastAnnounceMs: undefined, lastResult: undefined, seeders: undefined, leechers: undefined })))

/** Records an announce's outcome in the torrent's list of trackers. */
const noteAnnounce = (state: TorrentState, url: string, outcome: Pick<TrackerStatus, "lastResult"> & Partial<TrackerStatus>) => {
  const i = state.trackers.findIndex((t) => t.url === url)
  if (i >= 0) state.trackers[i] = { ...state.trackers[i]!, lastAnnounceMs: state.now(), ...outcome }
}

export interface Announcer {
  /** Every tracker has failed for good (true at once when there are none). */
  readonly exhausted: () => boolean
  /** Tells the trackers the download is complete (bounded in time). */
  readonly completed: Effect.Effect<void>
}

export interface AnnouncerOptions {
  readonly announceInterval: Duration.DurationInput | undefined
  readonly stoppedTimeout: Duration.DurationInput
  /** Uploaded payload bytes so far. */
  readonly uploaded: () => number
  readonly addPeer: (address: PeerAddress) => Effect.Effect<void>
}

/** What the torrent lacks, whatever it wants (a seed of part of the data is not a complete seed). */
const bytesMissing = ({ info, picker }: TorrentState): number => info.totalLength - bytesOfPieces(info, picker.have)

const failsForGood = (e: TrackerError) => e.reason === "Failure" || e.reason === "Malformed" || e.reason === "HttpStatus" || e.reason === "Unsupported"

/** Starts announcing in the scope; the `stopped` announce runs when the scope closes. */
export const startAnnouncer = (
  state: TorrentState,
  source: TorrentSource,
  options: AnnouncerOptions
): Effect.Effect<Announcer, never, Tracker | Scope.Scope> =>
  Effect.gen(function* () {
    if (source.trackers.length === 0) return { exhausted: () => true, completed: Effect.void }
    const tiers = yield* (yield* Tracker).tiers(source.trackers)
    let failuresInARow = 0
    let forGood = false
    let started = false

    const request = (event?: AnnounceRequest["event"]): AnnounceRequest => ({
      infoHash: state.info.infoHash,
      peerId: state.peerId,
      port: state.port,
      uploaded: options.uploaded(),
      downloaded: state.counters.downloaded,
      left: bytesMissing(state),
      ...(event === undefined ? {} : { event })
    })

    const answered = (r: AnnounceResponse & { readonly url: string }) =>
      Effect.gen(function* () {
        failuresInARow = 0
        forGood = false
        noteAnnounce(state, r.url, { lastResult: "Success", seeders: r.complete, leechers: r.incomplete })
        const peers = r.peers.filter((p) => !isOwnAddress(p, state.port))
        yield* state.emit(TorrentEvent.Announced({ url: r.url, peers: peers.length, interval: r.interval }))
        yield* Effect.forEach(peers, options.addPeer, { discard: true })
      })

    const failed = (e: TrackerError) =>
      Effect.suspend(() => {
        state.counters.lastTrackerError = e.message
        noteAnnounce(state, e.url, { lastResult: e.message })
        failuresInARow++
        if (failsForGood(e) || failuresInARow >= unreachableTries) forGood = true
        return state.emit(TorrentEvent.AnnounceFailed({ url: e.url, reason: e.message }))
      })

    const announce = (event?: AnnounceRequest["event"]) =>
      Effect.suspend(() => tiers.announce(request(event))).pipe(Effect.tapBoth({ onSuccess: answered, onFailure: failed }))

    // Registered before the loop starts, so it runs after the loop is interrupted.
    yield* Effect.addFinalizer(() =>
      started
        ? Effect.suspend(() => tiers.announce(request("stopped"))).pipe(
            // finalizers run uninterruptibly: without this, the timeout could not cut a hanging request short
            Effect.interruptible,
            Effect.timeout(options.stoppedTimeout),
            Effect.ignore
          )
        : Effect.void
    )
    yield* Effect.gen(function* () {
      let response = yield* announce("started").pipe(Effect.retry(announceRetry))
      started = true
      let lastAnnounce = state.now()
      while (true) {
        yield* Effect.sleep(loopMillis)
        const interval = options.announceInterval === undefined
          ? Math.max(response.interval, 5) * 1000
          : Duration.toMillis(options.announceInterval)
        const since = state.now() - lastAnnounce
        const lowOnPeers = state.sessions.size === 0 && !state.picker.isComplete && since > lowOnPeersMillis
        if (!lowOnPeers && since < interval) continue
        response = yield* announce().pipe(Effect.orElseSucceed(() => response))
        lastAnnounce = state.now()
      }
    }).pipe(Effect.forkScoped)

    return {
      exhausted: () => forGood,
      completed: announce("completed").pipe(Effect.timeout(options.stoppedTimeout), Effect.ignore)
    }
  })
