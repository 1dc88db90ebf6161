/**
 * Web seeds (BEP 19) in the torrent: each is a source that has every piece, scheduled by the same
 * picker as the peers (under its URL as the peer key), whose blocks go into the picker and on to
 * the verify stage like a peer's. So verification, parole and bans apply unchanged: a web seed
 * convicted of bad data is banned and the picker fetches the piece elsewhere (BEP 19). A web seed
 * whose requests keep failing (after the service's retries) is dropped.
 */
import { Effect, Queue, type Scope } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import type { BlockRequest, CompletedPiece } from "../../domain/PiecePicker.js"
import { blockSize, Message } from "../../domain/Wire.js"
import type { WebSeedSource } from "../../services/WebSeed.js"
import { TorrentEvent } from "./TorrentEvent.js"
import type { TorrentState } from "./TorrentState.js"

export interface WebSeeds {
  /** Web seeds still in use (neither dropped nor banned): sources the torrent need not give up on. */
  readonly running: () => number
  /** The last error that dropped a web seed (it names the URL and the status). */
  readonly lastError: () => string | undefined
}

/** Bytes asked of one web seed per round (at least a piece), and HTTP requests at once per web seed. */
const roundBytes = 1024 * 1024
const requestsAtOnce = 4
/** A web seed with nothing to fetch (the rest is in flight elsewhere) looks again after this long. */
const idleMillis = 500

/** A contiguous range of the payload: the picker's block requests that it covers, in order. */
interface Run {
  readonly offset: number
  length: number
  readonly blocks: Array<BlockRequest>
}

/** Groups block requests whose bytes follow each other in the payload into runs (one HTTP range each). */
export const contiguousRuns = (requests: ReadonlyArray<BlockRequest>, pieceLength: number): ReadonlyArray<Run> => {
  const runs: Array<Run> = []
  for (const r of requests) {
    const offset = r.index * pieceLength + r.begin
    const last = runs.at(-1)
    if (last !== undefined && last.offset + last.length === offset) {
      last.length += r.length
      last.blocks.push(r)
    } else {
      runs.push({ offset, length: r.length, blocks: [r] })
    }
  }
  return runs
}

/** Starts every web seed in the scope. */
export const startWebSeeds = (state: TorrentState, sources: ReadonlyArray<WebSeedSource>): Effect.Effect<WebSeeds, never, Scope.Scope> =>
  Effect.gen(function* () {
    let running = 0
    let lastError: string | undefined
    const started = new Set<string>()
    for (const source of sources) {
      // The URL is its key in the picker: a URL listed twice is one web seed.
      if (state.banned.has(source.url) || started.has(source.url)) continue
      started.add(source.url)
      running++
      yield* runWebSeed(state, source).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(Effect.sync(() => (lastError = e.message)), state.emit(TorrentEvent.PeerDropped({ peer: source.url, reason: e.message })))
        ),
        Effect.ensuring(Effect.sync(() => running--)),
        Effect.forkScoped
      )
    }
    return { running: () => running, lastError: () => lastError }
  })

/** One web seed until the torrent has every wanted piece, or the web seed is banned or fails. */
const runWebSeed = (state: TorrentState, source: WebSeedSource) =>
  Effect.gen(function* () {
    const { picker, info } = state
    const key = source.url
    const batch = Math.ceil(Math.max(roundBytes, info.pieceLength) / blockSize)
    picker.addPeer(key)
    picker.setBitfield(key, Bitfield.full(info.pieceCount))
    while (!picker.isComplete && !state.banned.has(key)) {
      const requests = picker.pick(key, batch, state.now())
      if (requests.length === 0) {
        yield* Effect.sleep(idleMillis)
        continue
      }
      yield* Effect.forEach(
        contiguousRuns(requests, info.pieceLength),
        (run) => Effect.flatMap(source.fetch(run.offset, run.length), (data) => deliver(state, key, run, data)),
        { concurrency: requestsAtOnce, discard: true }
      )
    }
  }).pipe(Effect.ensuring(Effect.sync(() => state.picker.removePeer(source.url))))

/** A run's bytes into the picker, block by block, as a peer's would go; completed pieces to the verify stage. */
const deliver = (state: TorrentState, key: string, run: Run, data: Uint8Array) =>
  Effect.suspend(() => {
    // Banned while this was in flight: nothing more of it is taken.
    if (state.banned.has(key)) return Effect.void
    const completed: Array<CompletedPiece> = []
    for (const block of run.blocks) {
      const at = block.index * state.info.pieceLength + block.begin - run.offset
      const outcome = state.picker.receive(key, block.index, block.begin, data.subarray(at, at + block.length))
      if (!outcome.accepted) continue
      state.counters.downloaded += block.length
      if (outcome.completed !== undefined) completed.push(outcome.completed)
      for (const c of outcome.cancels) state.sessions.get(c.peer)?.outbox.push(Message.cancel(c.index, c.begin, c.length))
    }
    return Queue.offerAll(state.completedPieces, completed)
  })
