/**
 * Measures SHA-1 piece hashing strategies for the Hasher service (run: `npx tsx scripts/measure-hash.ts`).
 *
 * For each piece size, hashes TOTAL bytes of pieces with a few hashes in flight (as the engine does when
 * several pieces complete close together) and reports throughput plus how long the event loop was busy
 * (event-loop utilisation, active ms), the main thread's CPU time, and the longest stall seen by a 1 ms timer.
 *   sync      node:crypto createHash on the event loop, yielding between pieces
 *   subtle    crypto.subtle.digest("SHA-1"): copies the input and hashes on libuv's thread pool
 *   pool-N    Hasher.layerWorkers with N workers (input copied into a SharedArrayBuffer slot)
 *   clone     2 workers, input sent by structured clone (a copy made by postMessage)
 *   transfer  2 workers, input transferred (zero copy, but it would detach the engine's buffer, so the
 *             caller copies first)
 */
import { createHash, webcrypto } from "node:crypto"
import { readFileSync } from "node:fs"
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import { Worker } from "node:worker_threads"
import { Effect, ManagedRuntime } from "effect"
import { Hasher } from "../src/services/Hasher.js"

const TOTAL = 256 * 1024 * 1024
const IN_FLIGHT = 4
const REPEATS = 5
const WORKERS = 2
/** 256 KiB and 1 MiB are typical piece lengths; 16 and 64 KiB locate the point where workers start to pay. */
const SIZES = [16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024]

type Strategy = {
  readonly name: string
  readonly digest: (piece: Uint8Array) => Promise<Uint8Array>
  readonly close: () => Promise<void>
}

/** A plain worker pool using postMessage, used to compare copying strategies against Hasher.Live. */
const messagePool = (name: string, transfer: boolean): Strategy => {
  const source = `
    const { parentPort } = require("node:worker_threads")
    const { createHash } = require("node:crypto")
    parentPort.on("message", ({ id, data }) => {
      const digest = createHash("sha1").update(data).digest()
      parentPort.postMessage({ id, digest, data: ${transfer ? "data" : "undefined"} }, ${transfer ? "[data.buffer]" : "[]"})
    })`
  const workers = Array.from({ length: WORKERS }, () => new Worker(source, { eval: true }))
  const pending = new Map<number, (d: Uint8Array) => void>()
  for (const w of workers) w.on("message", ({ id, digest }: { id: number; digest: Uint8Array }) => {
    pending.get(id)!(digest)
    pending.delete(id)
  })
  let next = 0
  return {
    name,
    digest: (piece) =>
      new Promise((resolve) => {
        const id = next++
        pending.set(id, resolve)
        // The transfer variant must hand over a buffer it owns: the engine's piece buffer would be detached.
        const data = transfer ? piece.slice() : piece
        workers[id % WORKERS]!.postMessage({ id, data }, transfer ? [data.buffer as ArrayBuffer] : [])
      }),
    close: async () => {
      await Promise.all(workers.map((w) => w.terminate()))
    }
  }
}

const syncStrategy: Strategy = {
  name: "sync",
  digest: async (piece) => {
    // Yield first so each piece is its own event-loop task, as when pieces arrive from the network.
    await new Promise((r) => setImmediate(r))
    return createHash("sha1").update(piece).digest()
  },
  close: async () => {}
}

const subtleStrategy: Strategy = {
  name: "subtle",
  digest: async (piece) => new Uint8Array(await webcrypto.subtle.digest("SHA-1", piece)),
  close: async () => {}
}

/** The Hasher service's worker pool, every input sent to the workers. */
const hasherStrategy = async (workers: number): Promise<Strategy> => {
  const runtime = ManagedRuntime.make(Hasher.layerWorkers({ workers, inlineBelow: 0 }))
  const hasher = await runtime.runPromise(Hasher)
  return {
    name: `pool-${workers}`,
    digest: (piece) => Effect.runPromise(hasher.sha1(piece)),
    close: () => runtime.dispose()
  }
}

/** CPU time of the main thread alone (ns), which wall-clock loop utilisation overstates when threads compete for cores. */
const mainThreadCpu = () => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0])

const run = async (strategy: Strategy, pieceLength: number) => {
  const count = TOTAL / pieceLength
  // 16 distinct pieces, reused: realistic cache behaviour without allocating the whole total.
  const pieces = Array.from({ length: 16 }, (_, i) => {
    const p = new Uint8Array(pieceLength)
    for (let j = 0; j < pieceLength; j += 4096) p[j] = (i * 31 + j) & 0xff
    return p
  })
  const expected = pieces.map((p) => createHash("sha1").update(p).digest())
  const delay = monitorEventLoopDelay({ resolution: 1 })
  const ticker = setInterval(() => {}, 1)
  delay.enable()
  const elu0 = performance.eventLoopUtilization()
  const cpu0 = mainThreadCpu()
  const t0 = performance.now()
  let issued = 0
  let wrong = 0
  const lane = async () => {
    while (issued < count) {
      const i = issued++ % pieces.length
      const d = await strategy.digest(pieces[i]!)
      if (!Buffer.from(d).equals(expected[i]!)) wrong++
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  const ms = performance.now() - t0
  const elu = performance.eventLoopUtilization(elu0)
  const cpu = mainThreadCpu() - cpu0
  delay.disable()
  clearInterval(ticker)
  if (wrong > 0) throw new Error(`${strategy.name}: ${wrong} wrong digests`)
  return {
    "MiB/s": TOTAL / 1048576 / (ms / 1000),
    "wall ms": ms,
    "loop busy ms": elu.active,
    "loop busy %": elu.utilization * 100,
    "main CPU ms": cpu / 1e6,
    "max stall ms": delay.max / 1e6
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

const main = async () => {
  const rows = []
  const strategies = [
    syncStrategy,
    subtleStrategy,
    await hasherStrategy(1),
    await hasherStrategy(2),
    messagePool("clone", false),
    messagePool("transfer", true)
  ]
  for (const pieceLength of SIZES) {
    for (const s of strategies) await run(s, pieceLength) // warm-up (JIT, worker start, thread pool start)
    const samples = strategies.map(() => [] as Array<Awaited<ReturnType<typeof run>>>)
    // Round robin, so that load from elsewhere on the machine spreads over all strategies alike.
    for (let r = 0; r < REPEATS; r++) for (const [i, s] of strategies.entries()) samples[i]!.push(await run(s, pieceLength))
    for (const [i, s] of strategies.entries()) {
      const row: Record<string, string | number> = { strategy: s.name, piece: `${pieceLength / 1024} KiB` }
      for (const key of Object.keys(samples[i]![0]!) as Array<keyof (typeof samples)[number][number]>) {
        const m = median(samples[i]!.map((x) => x[key]))
        row[key] = key === "max stall ms" ? Math.round(m * 10) / 10 : Math.round(m)
      }
      rows.push(row)
    }
  }
  for (const s of strategies) await s.close()
  console.table(rows)
  console.log(
    `total ${TOTAL / 1048576} MiB per run, median of ${REPEATS} runs, ${IN_FLIGHT} hashes in flight, ` +
      `UV_THREADPOOL_SIZE=${process.env["UV_THREADPOOL_SIZE"] ?? "4 (default)"}`
  )
}

void main()
