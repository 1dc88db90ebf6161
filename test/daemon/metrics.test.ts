/**
 * The daemon's /metrics over a real HTTP socket, its session on the in-memory network in real
 * time: after a torrent downloads from a simulated seeder, the exposition counts its pieces, its
 * bytes and its status.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { start } from "../../src/programs/Daemon.js"
import { TorrentInput } from "../../src/programs/Session.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { StateStore } from "../../src/services/StateStore.js"
import { makeTorrent, sessionHost, sessionPort, sessionServices } from "../support/SimulatedSession.js"
import { addressOf, simSeeder } from "../support/SimulatedSwarm.js"

/** The value of the sample line that starts with `prefix` (name and labels). */
const valueOf = (text: string, prefix: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${prefix} `))
  return line === undefined ? undefined : Number(line.slice(prefix.length + 1))
}

describe("daemon /metrics", () => {
  it.live("counts a torrent's verified pieces, bytes and status in Prometheus's format", () =>
  Effect.gen(function* () {
      const network = yield* MemoryNetwork.make({ link: { latency: "1 millis" } })
      const t = makeTorrent("metrics.bin", 300_000, 41, 32 * 1024)
      yield* simSeeder(network, "127.4.9.1", t.info, t.payload, 91)
      yield* scrapeAfterDownload(t).pipe(Effect.provide(sessionServices(network)))
    }).pipe(Effect.scoped), 60_000)
})

const scrapeAfterDownload = (t: ReturnType<typeof makeTorrent>) =>
  Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const folder = yield* fs.makeTempDirectoryScoped({ prefix: "bt-metrics-" })
      const stateStore = yield* Effect.provide(StateStore, StateStore.layer(`${folder}/state`))
      const daemon = yield* start({
        http: { host: "127.0.0.1", port: 0 },
        session: { downloadDirectory: `${folder}/dl`, listen: { host: sessionHost, port: sessionPort } },
        stateStore,
        version: "test"
      })
      const id = yield* daemon.session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.9.1")] })
      // Bounded: 200 checks, 50 ms apart.
      yield* Effect.map(daemon.session.get(id), (s) => s.status === "seeding").pipe(
        Effect.repeat({ until: (done) => done, times: 200, schedule: Schedule.spaced("50 millis") })
      )
      expect(yield* daemon.session.get(id)).toMatchObject({ status: "seeding" })
      const response = yield* Effect.promise(() => fetch(`${daemon.address.url}/metrics`))
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4")
      const text = yield* Effect.promise(() => response.text())
      expect(text).toContain("# TYPE bt_pieces_verified_total counter")
      expect(valueOf(text, "bt_pieces_verified_total")).toBeGreaterThanOrEqual(t.info.pieceCount)
      expect(valueOf(text, 'bt_torrents{status="seeding"}')).toBe(1)
      expect(valueOf(text, 'bt_torrents{status="error"}')).toBe(0)
      expect(valueOf(text, "bt_verified_bytes")).toBe(t.payload.length)
      expect(valueOf(text, "bt_pieces_done")).toBe(t.info.pieceCount)
      expect(valueOf(text, "bt_downloaded_bytes")).toBeGreaterThanOrEqual(t.payload.length)
    })
