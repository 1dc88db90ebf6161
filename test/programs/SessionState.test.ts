/**
 * A Session with a state store, twice over the same store and folder (in-memory network,
 * TestClock set to the wall clock so that file times and save times compare): the second session
 * restores every saved torrent as it was (ids in order of addition, paused ones paused, a magnet
 * link with its metadata), resumes a finished torrent without reading it, forgets a removed one,
 * and names a damaged state file while the rest starts.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import { TorrentInput } from "../../src/programs/Session.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { StateStore } from "../../src/services/StateStore.js"
import { makeTorrent, sessionServices, simSession, until } from "../support/SimulatedSession.js"
import { addressOf, seeded, simSeeder } from "../support/SimulatedSwarm.js"

describe("Session with a state store (TestClock)", () => {
  it.effect("a restarted session restores its torrents as they were and resumes without reading unchanged files", () =>
    seeded(41)(
      Effect.gen(function* () {
        yield* TestClock.setTime(Date.now())
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const [a, b, c, d] = [1, 2, 3, 4].map((n) => makeTorrent(`s${n}.bin`, 200_000 + n * 1000, 40 + n))
        yield* simSeeder(network, "127.4.9.1", a!.info, a!.payload, 91)
        yield* simSeeder(network, "127.4.9.3", c!.info, c!.payload, 93)
        const store = yield* Effect.provide(StateStore, StateStore.Memory)
        const fs = yield* Effect.provide(FileSystem.FileSystem, sessionServices(network))
        const directory = yield* fs.makeTempDirectoryScoped({ prefix: "bt-state-" })
        const options = { stateStore: store, downloadDirectory: directory }
        const magnet = `magnet:?xt=urn:btih:${toHex(c!.info.infoHash)}&x.pe=127.4.9.3:6881`

        yield* Effect.scoped(
          Effect.gen(function* () {
            const { session } = yield* simSession(network, options)
            yield* session.add(TorrentInput.Metainfo({ bytes: a!.bytes }), { peers: [addressOf("127.4.9.1")], seedingGoal: { ratio: 2.5 } })
            yield* session.add(TorrentInput.Metainfo({ bytes: b!.bytes }), { paused: true, maxPeers: 7 })
            yield* session.add(TorrentInput.Magnet({ uri: magnet }))
            const gone = yield* session.add(TorrentInput.Metainfo({ bytes: d!.bytes }), { paused: true })
            yield* session.remove(gone)
            const seeding = Effect.map(session.list, (l) => l.filter((t) => t.status === "seeding").length === 2)
            expect(yield* until(seeding, 100, 400)).toBe(true)
            // Past the racy window, so that the resume data's file times are trusted.
            yield* until(Effect.succeed(false), 100, 30)
            yield* session.pause(1)
          })
        )
        const names = yield* store.list
        const key = (t: typeof a) => toHex(t!.info.infoHash)
        for (const t of [a, c]) expect(names).toEqual(expect.arrayContaining([`${key(t)}.session`, `${key(t)}.torrent`, `${key(t)}.resume`]))
        expect(names).toEqual(expect.arrayContaining([`${key(b)}.session`, `${key(b)}.torrent`]))
        expect(names.some((n) => n.startsWith(key(d)))).toBe(false)
        const damaged = `${"ff".repeat(20)}.session`
        yield* store.write(damaged, new TextEncoder().encode("d7:versioni1e"))

        const { session } = yield* simSession(network, options)
        expect(session.unrestored.map((e) => e.path)).toEqual([store.pathOf(damaged)])
        expect(session.unrestored[0]!.message).toContain(store.pathOf(damaged))
        const records = yield* session.records
        expect(records.map((r) => [r.id, r.paused, r.input._tag])).toEqual([[1, true, "Metainfo"], [2, true, "Metainfo"], [3, false, "Magnet"]])
        expect(records[0]!.options).toMatchObject({ peers: [addressOf("127.4.9.1")], seedingGoal: { ratio: 2.5 } })
        expect(records[1]!.options).toMatchObject({ maxPeers: 7 })
        // The magnet link's metadata was saved: no metadata fetch, its check is through the resume data.
        expect((yield* session.get(3)).name).toBe("s3.bin")
        expect(yield* until(Effect.map(session.get(3), (t) => t.status === "seeding"), 100, 100)).toBe(true)
        const resumed = (yield* session.get(3)).resumed
        expect(resumed).toMatchObject({ settled: c!.info.pieceCount, rechecked: [] })
        expect(resumed?.have.isComplete).toBe(true)
        yield* session.resume(1)
        expect(yield* until(Effect.map(session.get(1), (t) => t.status === "seeding"), 100, 100)).toBe(true)
        expect((yield* session.get(1)).resumed).toMatchObject({ settled: a!.info.pieceCount, rechecked: [] })
        yield* session.remove(2)
        expect(Option.isNone(yield* store.read(`${key(b)}.session`))).toBe(true)
      })
    ), 60_000)

  it.effect("a damaged resume file is named in a StateFileUnusable event and the torrent is checked in full", () =>
    seeded(42)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const t = makeTorrent("damaged.bin", 150_000, 48)
        yield* simSeeder(network, "127.4.9.8", t.info, t.payload, 98)
        const store = yield* Effect.provide(StateStore, StateStore.Memory)
        const resumeName = `${toHex(t.info.infoHash)}.resume`
        yield* store.write(resumeName, new TextEncoder().encode("d7:version"))
        const { session, events } = yield* simSession(network, { stateStore: store })
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.9.8")] })
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 300)).toBe(true)
        const unusable = events.filter((e) => e._tag === "StateFileUnusable")
        expect(unusable).toEqual([expect.objectContaining({ path: store.pathOf(resumeName) })])
        expect((yield* session.get(id)).resumed).toMatchObject({ settled: 0, rechecked: [0] })
        expect(events.filter((e) => e._tag === "PieceVerified")).toHaveLength(t.info.pieceCount)
      })
    ), 60_000)
})
