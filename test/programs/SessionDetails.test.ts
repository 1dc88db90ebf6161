/**
 * What a front end shows of a session's torrent beside its summary: its files with their verified
 * bytes and priorities, its connected peers, its trackers; and the settings it changes, file
 * priorities and per-torrent speed limits, which a restarted session keeps.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { TorrentInput } from "../../src/programs/Session.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { StateStore } from "../../src/services/StateStore.js"
import { sessionServices, simSession, until } from "../support/SimulatedSession.js"
import { addressOf, seeded, simSeeder } from "../support/SimulatedSwarm.js"
import { multiFileInfo, payloadBytes, torrentBytes } from "../support/torrent.js"

/** Three files of uneven sizes, 16 KiB pieces (so pieces straddle files). */
const multiFile = () => {
  const files = [
    { path: ["a.bin"], data: payloadBytes(100_000, 61) },
    { path: ["sub", "b.bin"], data: payloadBytes(70_000, 62) },
    { path: ["c.bin"], data: payloadBytes(30_001, 63) }
  ]
  const bytes = torrentBytes(multiFileInfo("multi", files, 16 * 1024), {})
  const info = Either.getOrThrow(parseTorrent(bytes)).info
  const payload = new Uint8Array(files.reduce((n, f) => n + f.data.length, 0))
  let at = 0
  for (const f of files) {
    payload.set(f.data, at)
    at += f.data.length
  }
  return { bytes, info, payload, files }
}

/** The multi-file torrent seeded by our core at `seeder` on a fresh network of the given link. */
const multiFileSwarm = (seeder: string, n: number, link: { readonly latency: "5 millis"; readonly bandwidth?: number }) =>
  Effect.gen(function* () {
    const network = yield* MemoryNetwork.make({ link })
    const t = multiFile()
    yield* simSeeder(network, seeder, t.info, t.payload, n)
    return { network, t }
  })

describe("Session details and settings (in-memory network, TestClock)", () => {
  it.effect("files, peers and trackers of a torrent; unknown ids and bad priorities are typed errors", () =>
    seeded(51)(
      Effect.gen(function* () {
        // 64 KiB/s: the 200 kB torrent takes a few seconds, long enough to see the peer.
        const { network, t } = yield* multiFileSwarm("127.4.10.1", 30, { latency: "5 millis", bandwidth: 64 * 1024 })
        const { session } = yield* simSession(network)
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.10.1")] })
        const unchoked = Effect.map(session.peers(id), (peers) => peers.length === 1 && !peers[0]!.peerChoking)
        expect(yield* until(unchoked, 100, 200)).toBe(true)
        const [peer] = yield* session.peers(id)
        expect(peer).toMatchObject({ address: "127.4.10.1:6881", client: "EB0010", transport: "tcp", inbound: false, progress: 1, amInterested: true })
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 300)).toBe(true)
        expect(yield* session.files(id)).toEqual([
          { index: 0, path: "multi/a.bin", length: 100_000, bytesCompleted: 100_000, priority: "normal" },
          { index: 1, path: "multi/sub/b.bin", length: 70_000, bytesCompleted: 70_000, priority: "normal" },
          { index: 2, path: "multi/c.bin", length: 30_001, bytesCompleted: 30_001, priority: "normal" }
        ])
        expect(yield* session.trackers(id)).toEqual([])
        expect((yield* Effect.flip(session.files(99)))._tag).toBe("UnknownTorrent")
        expect((yield* Effect.flip(session.peers(99)))._tag).toBe("UnknownTorrent")
        expect((yield* Effect.flip(session.setRateLimits(99, { download: 1 })))._tag).toBe("UnknownTorrent")
        expect((yield* Effect.flip(session.setFilePriorities(id, ["skip"])))._tag).toBe("FileSelectionError")
        // Stopped: no peers, the files as verified.
        yield* session.pause(id)
        expect(yield* session.peers(id)).toEqual([])
        expect((yield* session.files(id)).map((f) => f.bytesCompleted)).toEqual([100_000, 70_000, 30_001])
      })
    ), 60_000)

  it.effect("a torrent added with a file skipped seeds once its wanted files are verified", () =>
    seeded(54)(
      Effect.gen(function* () {
        const { network, t } = yield* multiFileSwarm("127.4.10.3", 32, { latency: "5 millis" })
        const { session } = yield* simSession(network)
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.10.3")], files: ["normal", "skip", "normal"] })
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 300)).toBe(true)
        const files = yield* session.files(id)
        expect(files.map((f) => f.priority)).toEqual(["normal", "skip", "normal"])
        expect([files[0]!.bytesCompleted, files[2]!.bytesCompleted]).toEqual([100_000, 30_001])
        // Only what its pieces cover: the skipped file's shares of the pieces it has with its neighbours.
        expect(files[1]!.bytesCompleted).toBeLessThan(70_000)
      })
    ), 60_000)

  it.effect("a magnet link's trackers are listed by tier before any announce; its files are none until the metadata", () =>
    seeded(52)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const { session } = yield* simSession(network)
        const uri = `magnet:?xt=urn:btih:${"ab".repeat(20)}&tr=http%3A%2F%2Ft1.example%2Fa&tr=udp%3A%2F%2Ft2.example%3A80`
        const id = yield* session.add(TorrentInput.Magnet({ uri }), { paused: true })
        expect(yield* session.trackers(id)).toEqual([
          { url: "http://t1.example/a", tier: 0, lastAnnounceMs: undefined, lastResult: undefined, seeders: undefined, leechers: undefined },
          { url: "udp://t2.example:80", tier: 1, lastAnnounceMs: undefined, lastResult: undefined, seeders: undefined, leechers: undefined }
        ])
        expect(yield* session.files(id)).toEqual([])
        expect((yield* Effect.flip(session.setFilePriorities(id, ["normal"])))._tag).toBe("FileSelectionError")
      })
    ), 60_000)

  it.effect("file priorities and speed limits survive a restart; a skipped file is never created", () =>
    seeded(53)(
      Effect.gen(function* () {
        const { network, t } = yield* multiFileSwarm("127.4.10.2", 31, { latency: "5 millis" })
        const store = yield* Effect.provide(StateStore, StateStore.Memory)
        const fs = yield* Effect.provide(FileSystem.FileSystem, sessionServices(network))
        const directory = yield* fs.makeTempDirectoryScoped({ prefix: "bt-details-" })
        const options = { stateStore: store, downloadDirectory: directory }
        yield* Effect.scoped(
          Effect.gen(function* () {
            const { session } = yield* simSession(network, options)
            const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.10.2")], paused: true })
            yield* session.setFilePriorities(id, ["high", "skip", "low"])
            yield* session.setRateLimits(id, { download: 500_000, upload: 0 })
          })
        )
        const { session } = yield* simSession(network, options)
        const [record] = yield* session.records
        expect(record!.options).toMatchObject({ files: ["high", "skip", "low"], rateLimits: { download: 500_000 } })
        expect(record!.options.rateLimits?.upload).toBeUndefined()
        expect((yield* session.files(1)).map((f) => f.priority)).toEqual(["high", "skip", "low"])
        yield* session.resume(1)
        const wantedDone = Effect.map(session.files(1), (files) => files[0]!.bytesCompleted === 100_000 && files[2]!.bytesCompleted === 30_001)
        expect(yield* until(wantedDone, 100, 300)).toBe(true)
        expect(yield* fs.exists(`${directory}/multi/a.bin`)).toBe(true)
        expect(yield* fs.exists(`${directory}/multi/sub/b.bin`)).toBe(false)
        // Wanted again as it runs: the file is created and fetched.
        yield* session.setFilePriorities(1, ["normal", "normal", "normal"])
        const allDone = Effect.map(session.files(1), (files) => files[1]!.bytesCompleted === 70_000)
        expect(yield* until(allDone, 100, 300)).toBe(true)
      })
    ), 60_000)
})
