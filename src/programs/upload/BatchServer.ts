/**
 * A peer's server loop, one batch at a time: queued metadata pieces are answered from memory;
 * otherwise runs of contiguous requested blocks are read with one disk read each, after their
 * bytes are granted by the upload limits, and sent as one write that waits for the socket to drain
 * (backpressure). It sleeps while the peer has nothing queued.
 */
import { Effect } from "effect"
import { answerMetadataRequest, encodeMetadataMessage } from "../../domain/Extension.js"
import { Message, type Request } from "../../domain/Wire.js"
import type { PeerError } from "../../services/PeerWire.js"
import type { StorageError, TorrentStorage } from "../../services/Storage.js"
import { anyLimited, charge, type RateLimiter } from "../torrent/RateLimiter.js"
import { mayServe, type UploadPeer } from "./UploadPeer.js"

/** A batch read and sent at once per peer: up to this many blocks... */
const batchBlocks = 32
/** ...and disk reads in flight across all peers. */
export const readConcurrency = 8

/** What every peer's server shares. */
export interface BatchServer {
  readonly storage: Pick<TorrentStorage, "readBlock">
  /** `readConcurrency` permits. */
  readonly reads: Effect.Semaphore
  readonly limits: ReadonlyArray<RateLimiter>
  /** The ut_metadata payload answering a request for a metadata piece; undefined offers none. */
  readonly metadataAnswer: ((piece: number) => Uint8Array) | undefined
  /** Payload bytes sent so far, to all peers. */
  readonly totals: { uploaded: number }
}

/** Answers ut_metadata requests for pieces of `raw`: data (encoded once, every peer gets the same bytes) or a reject. */
export const makeMetadataAnswer = (raw: Uint8Array): ((piece: number) => Uint8Array) => {
  const payloads: Array<Uint8Array | undefined> = []
  return (piece) => {
    const answer = answerMetadataRequest(raw, piece)
    return answer._tag === "Reject" ? encodeMetadataMessage(answer) : (payloads[piece] ??= encodeMetadataMessage(answer))
  }
}

/** Blocks `count` requests of a batch from `first` on, contiguous within one piece: one disk read. */
interface BlockRun {
  readonly index: number
  readonly begin: number
  length: number
  readonly first: number
  count: number
}

const contiguousRuns = (batch: ReadonlyArray<Request>): Array<BlockRun> => {
  const runs: Array<BlockRun> = []
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i]!
    const run = runs[runs.length - 1]
    if (run !== undefined && run.index === r.index && run.begin + run.length === r.begin) {
      run.length += r.length
      run.count++
    } else runs.push({ index: r.index, begin: r.begin, length: r.length, first: i, count: 1 })
  }
  return runs
}

/**
 * Reads the runs (each one disk read), once their bytes are granted by the limits. One after the
 * other: peers are served concurrently (`reads` bounds their disk reads), and a concurrent forEach
 * forked a fiber per run: half of the seeder's Effect steps per piece (174, now 86).
 */
const readRuns = (server: BatchServer, runs: ReadonlyArray<BlockRun>): Effect.Effect<Array<Uint8Array>, StorageError> => {
  // Cancels and chokes while the batch waits for its bytes to be granted apply as during the read.
  const granted = anyLimited(server.limits) ? charge(server.limits, runs.reduce((sum, run) => sum + run.length, 0)) : undefined
  const read = Effect.forEach(runs, (run) => server.reads.withPermits(1)(server.storage.readBlock(run.index, run.begin, run.length)))
  return granted === undefined ? read : Effect.zipRight(granted, read)
}

/** Sends the batch's blocks still wanted, sliced from their runs' reads, as one write, and counts them. */
const sendBlocks = (
  server: BatchServer,
  p: UploadPeer,
  batch: ReadonlyArray<Request>,
  runs: ReadonlyArray<BlockRun>,
  data: ReadonlyArray<Uint8Array>
): Effect.Effect<void, PeerError> => {
  const out: Array<Message> = []
  let bytes = 0
  // A choke while reading cancels the batch (`cancelled`), but for Allowed Fast pieces.
  runs.forEach((run, k) => {
    for (let i = run.first; i < run.first + run.count; i++) {
      const r = batch[i]!
      if (p.cancelled.has(r) || !mayServe(p, r.index)) continue
      const at = r.begin - run.begin
      out.push(Message.piece(r.index, r.begin, data[k]!.subarray(at, at + r.length)))
      bytes += r.length
    }
  })
  p.inflight = []
  p.cancelled.clear()
  server.totals.uploaded += bytes
  p.uploadedSinceRound += bytes
  p.uploadedSinceTick += bytes
  return p.conn.send(out)
}

/** Answers the next queued metadata requests (from memory) as one write. */
const serveMetadata = (p: UploadPeer, metadataAnswer: (piece: number) => Uint8Array): Effect.Effect<void, PeerError> => {
  const pieces = p.metadataQueue.splice(0, batchBlocks)
  const id = p.utMetadata
  // They may have disabled ut_metadata since asking: the requests lapse.
  if (id === undefined) return Effect.void
  return p.conn.send(pieces.map((piece) => Message.extended(id, metadataAnswer(piece))))
}

const awaitRequests = (p: UploadPeer) =>
  Effect.async<void>((resume) => {
    p.wakeUp = () => {
      p.wakeUp = undefined
      resume(Effect.void)
    }
    return Effect.sync(() => {
      p.wakeUp = undefined
    })
  })

/** Serves the peer's next batch, or waits for requests when it has none queued. */
export const serveBatch = (server: BatchServer, p: UploadPeer): Effect.Effect<void, PeerError | StorageError> =>
  Effect.suspend(() => {
    if (server.metadataAnswer !== undefined && p.metadataQueue.length > 0) return serveMetadata(p, server.metadataAnswer)
    if (p.queue.length === 0) return awaitRequests(p)
    const batch = p.queue.splice(0, batchBlocks)
    p.inflight = batch
    const runs = contiguousRuns(batch)
    return Effect.flatMap(readRuns(server, runs), (data) => sendBlocks(server, p, batch, runs, data))
  })
