/**
 * Memory of one Session as torrents are added. Run it bundled, as the CLI ships (tsx's loader
 * alone adds about 110 MiB of RSS), with --expose-gc (else garbage not yet collected is counted):
 *   npx esbuild scripts/measure-session.ts --bundle --platform=node --format=esm --outfile=/tmp/measure-session.mjs \
 *     --banner:js='import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);'
 *   node --expose-gc /tmp/measure-session.mjs
 * (`node --expose-gc --import tsx scripts/measure-session.ts` works too, with tsx's share on top.)
 *
 * The session runs on the in-memory network (its host's Transport, no tracker), every torrent
 * active (the queue limits raised to the count): each a seed of 256 KiB checked from a file in a
 * temporary folder, with a leecher of our own torrent core downloading it (on its own simulated
 * host, outside the session) for a few seconds of real time, so every torrent has a live peer
 * session. RSS and heap are printed at 1, 50, 100 and 200 torrents, after the leechers of
 * that step are done and a GC.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Layer } from "effect"
import { make, TorrentInput } from "../src/programs/Session.js"
import { MemoryNetwork } from "../src/services/MemoryNetwork.js"
import { makeTorrent, sessionHost, sessionPort, sessionServices } from "../test/support/SimulatedSession.js"
import { simClient } from "../test/support/SimulatedSwarm.js"

const STEPS = [1, 50, 100, 200]
const SIZE = 256 * 1024
const MiB = 1024 * 1024

const collectGarbage = (globalThis as { gc?: () => void }).gc

const measure = (torrents: number) => {
  collectGarbage?.()
  const m = process.memoryUsage()
  const fmt = (n: number) => (n / MiB).toFixed(1).padStart(7)
  console.log(`${String(torrents).padStart(4)} torrents  rss ${fmt(m.rss)} MiB  heapUsed ${fmt(m.heapUsed)} MiB  external+arrayBuffers ${fmt(m.external + m.arrayBuffers)} MiB`)
  return m
}

const program = Effect.gen(function* () {
  const network = yield* MemoryNetwork.make({ link: { latency: "1 millis" } })
  const context = yield* Layer.build(sessionServices(network))
  const fs = yield* Effect.provide(FileSystem.FileSystem, context)
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "bt-measure-session-" })
  const max = STEPS.at(-1)!
  const session = yield* make({
    downloadDirectory: directory,
    listen: { host: sessionHost, port: sessionPort },
    maxActiveDownloads: max,
    maxActiveSeeds: max,
    maxConnections: 4 * max
  }).pipe(Effect.provide(context))
  const base = measure(0)
  let added = 0
  for (const step of STEPS) {
    // The leechers of a step run in a scope of their own, closed before measuring.
    yield* Effect.scoped(Effect.gen(function* () {
      const leechers = []
      for (; added < step; added++) {
        const t = makeTorrent(`t${added}.bin`, SIZE, added + 1)
        yield* fs.writeFile(`${directory}/${t.info.name}`, t.payload)
        yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }))
        const host = `127.5.${Math.floor(added / 250)}.${(added % 250) + 1}`
        leechers.push(yield* simClient(network, host, t.info, [{ host: sessionHost, port: sessionPort }], { port: 7777 }))
      }
      yield* Effect.forEach(leechers, (l) => l.fiber.await, { discard: true })
    }))
    const list = yield* session.list
    const seeding = list.filter((t) => t.status === "seeding").length
    const uploaded = list.reduce((n, t) => n + t.uploadedBytes, 0) / MiB
    const m = measure(step)
    console.log(`       ${seeding} seeding, ${uploaded} MiB uploaded in all; rss +${((m.rss - base.rss) / MiB / step).toFixed(2)} MiB, ` +
      `heap +${((m.heapUsed - base.heapUsed) / MiB / step).toFixed(2)} MiB per torrent`)
  }
})

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exitCode = 1
})
