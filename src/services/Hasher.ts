/**
 * SHA-1 of pieces, off the event loop where it pays; v2 (BEP 52) merkle roots on the loop.
 *
 * Measured with scripts/measure-hash.ts: Node 20.20, OpenSSL 3 (SHA-NI), 2-core VM shared with other jobs,
 * 256 MiB per run, median of 5, 4 hashes in flight. Figures: MiB/s, event-loop busy ms, main-thread CPU ms
 * (per 256 MiB; the loop's and the main thread's cost is what the download engine pays).
 *                          16 KiB          64 KiB          256 KiB         1 MiB
 *   createHash on loop     1309/196/190    1652/155/153    1747/147/144    1702/151/145
 *   subtle.digest          983/211/204     1507/116/119    2090/91/53      2426/63/44    (libuv thread pool)
 *   2 workers, SAB (Live)  466/439/366     1100/155/136    1978/57/61      2011/54/46
 *   2 workers, clone       547/271/259     1177/83/110     1649/53/54      1794/67/52
 *   2 workers, transfer    574/341/267     1054/129/130    1283/126/103    1089/200/99   (copy first: callers keep buffers)
 * On the loop a 256 KiB piece blocks it ~0.14 ms (1 MiB: ~0.6 ms). An earlier, quieter run gave the pool
 * 2272 and 2365 MiB/s (subtle 2085, 2151) at 256 KiB and 1 MiB; hashing while writing each piece to disk,
 * the pool cost 62-84 ms of main-thread CPU per 256 MiB against subtle's 83-100, at similar speed.
 * The pool and subtle.digest are close; the pool is Live because it leaves libuv's 4 threads to Storage's
 * file I/O. A round trip costs ~10-20 us of main-thread CPU whatever carries it, so inputs under 64 KiB are
 * hashed on the loop (at 16 KiB every off-loop way costs more than hashing in place).
 */
import { createHash } from "node:crypto"
import type { Worker } from "node:worker_threads"
import { Context, Effect, Layer } from "effect"
import { equalBytes } from "../domain/Bytes.js"
import type { Info } from "../domain/Metainfo.js"
import { matchesV2 } from "../domain/MetainfoV2.js"

type HasherService = {
  readonly sha1: (data: Uint8Array) => Effect.Effect<Uint8Array>
  readonly verify: (data: Uint8Array, expected: Uint8Array) => Effect.Effect<boolean>
  /**
   * Whether `data` is piece `index` of the torrent: under its SHA-1 (v1), its merkle root (v2, SHA-256
   * on the loop), or both for a hybrid, where a piece bad under either hash is bad.
   */
  readonly verifyPiece: (info: Info, index: number, data: Uint8Array) => Effect.Effect<boolean>
}

const digestOnLoop = (data: Uint8Array): Uint8Array => {
  const d = createHash("sha1").update(data).digest()
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}

const fromSha1 = (sha1: HasherService["sha1"]): HasherService => {
  const verify: HasherService["verify"] = (data, expected) => Effect.map(sha1(data), (digest) => equalBytes(digest, expected))
  return {
    sha1,
    verify,
    verifyPiece: (info, index, data) => {
      const v1 = info.pieceHashes[index]
      return Effect.map(v1 === undefined ? Effect.succeed(true) : verify(data, v1), (ok) => ok && matchesV2(info, index, data))
    }
  }
}

/** Two jobs per worker: one hashing while the next is already copied in, so a worker never waits for the loop. */
const SLOTS_PER_WORKER = 2
const DIGEST = 20

/**
 * Runs inside each worker (inlined, so it works from the esbuild bundle). A job names a slot: its input is
 * the slot's SharedArrayBuffer (sent once, again only when it grows) and its digest goes to the shared
 * result area; the reply is just the slot number.
 */
const workerSource = `"use strict"
const { parentPort, workerData } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const results = new Uint8Array(workerData)
const inputs = []
parentPort.on("message", (job) => {
  if (job.buffer !== undefined) inputs[job.slot] = job.buffer
  const digest = createHash("sha1").update(new Uint8Array(inputs[job.slot], 0, job.length)).digest()
  results.set(digest, job.slot * ${DIGEST})
  parentPort.postMessage(job.slot)
})`

interface Job {
  readonly data: Uint8Array
  readonly done: (result: Effect.Effect<Uint8Array>) => void
}

/**
 * A fixed pool of hashing workers. Callers' buffers stay theirs: the input is copied into a slot's shared
 * memory (a memcpy, far cheaper than hashing on the loop) rather than transferred, which would detach it.
 */
const makePool = (size: number) => {
  const slotCount = size * SLOTS_PER_WORKER
  const results = new SharedArrayBuffer(DIGEST * slotCount)
  const resultBytes = new Uint8Array(results)
  const inputs: Array<SharedArrayBuffer | undefined> = new Array(slotCount)
  const running: Array<Job | undefined> = new Array(slotCount)
  const free: Array<number> = []
  const queue: Array<Job> = []
  let broken: Effect.Effect<never> | undefined

  const start = (slot: number, job: Job, worker: Worker) => {
    running[slot] = job
    let input = inputs[slot]
    const grown = input === undefined || input.byteLength < job.data.length
    if (grown) input = inputs[slot] = new SharedArrayBuffer(job.data.length)
    new Uint8Array(input!, 0, job.data.length).set(job.data)
    worker.postMessage(grown ? { slot, length: job.data.length, buffer: input } : { slot, length: job.data.length })
  }

  // A worker failing is a bug (hashing cannot fail): every job in flight or queued, and every later one, dies.
  const fail = (cause: unknown) => {
    if (broken !== undefined) return
    broken = Effect.die(cause)
    for (let slot = 0; slot < slotCount; slot++) running[slot]?.done(broken)
    for (const job of queue.splice(0)) job.done(broken)
  }

  // Loaded here, not imported: the CLI hashes on the loop, and node:worker_threads costs every
  // command ~4 ms to load.
  const { Worker } = process.getBuiltinModule("node:worker_threads")
  const workers = Array.from({ length: size }, (_, w) => {
    const worker = new Worker(workerSource, { eval: true, workerData: results })
    worker.on("message", (slot: number) => {
      const job = running[slot]!
      // Take the digest before the slot is reused: the worker may overwrite it as soon as the next job is posted.
      const digest = resultBytes.slice(slot * DIGEST, slot * DIGEST + DIGEST)
      running[slot] = undefined
      const next = queue.shift()
      if (next === undefined) free.push(slot)
      else start(slot, next, worker)
      job.done(Effect.succeed(digest))
    })
    worker.on("error", fail)
    worker.on("exit", (code) => fail(new Error(`hash worker ${w} exited with code ${code}`)))
    return worker
  })
  // Interleave slots across workers so two jobs land on two workers.
  for (let i = 0; i < SLOTS_PER_WORKER; i++) for (let w = 0; w < size; w++) free.push(i * size + w)

  const submit = (job: Job) => {
    if (broken !== undefined) return job.done(broken)
    const slot = free.shift()
    if (slot === undefined) queue.push(job)
    else start(slot, job, workers[slot % size]!)
  }

  const cancel = (job: Job) => {
    const at = queue.indexOf(job)
    if (at >= 0) queue.splice(at, 1)
  }

  const terminate = Effect.promise(() => {
    fail(new Error("hash workers terminated"))
    return Promise.all(workers.map((w) => w.terminate()))
  })

  return { submit, cancel, terminate }
}

export class Hasher extends Context.Tag("bt/Hasher")<Hasher, HasherService>() {
  /** node:crypto on the event loop: simplest, blocks the loop for the whole hash. */
  static Sync: Layer.Layer<Hasher> = Layer.succeed(Hasher, fromSha1((data) => Effect.sync(() => digestOnLoop(data))))

  /**
   * A pool of `workers` threads, started on first use and terminated when the layer's scope closes.
   * Inputs shorter than `inlineBelow` bytes are hashed on the loop, where the round trip costs more than the hash.
   */
  static layerWorkers = (options: { readonly workers: number; readonly inlineBelow: number }): Layer.Layer<Hasher> =>
    Layer.scoped(
      Hasher,
      Effect.gen(function* () {
        let pool: ReturnType<typeof makePool> | undefined
        yield* Effect.addFinalizer(() => (pool === undefined ? Effect.void : pool.terminate))
        return fromSha1((data) =>
          data.length < options.inlineBelow
            ? Effect.sync(() => digestOnLoop(data))
            : Effect.async<Uint8Array>((resume) => {
                const owner = (pool ??= makePool(options.workers))
                const job: Job = { data, done: resume }
                owner.submit(job)
                return Effect.sync(() => owner.cancel(job))
              })
        )
      })
    )

  static Live: Layer.Layer<Hasher> = Hasher.layerWorkers({ workers: 2, inlineBelow: 64 * 1024 })
}
