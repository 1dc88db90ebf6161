/**
 * The Session on the in-memory network, under TestClock: several torrents at once from simulated
 * seeders, pause and resume, removal with the data, the queue's limit, a seeding goal, and the
 * one listen port routing inbound peers (plain and MSE) to their torrents.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { equalBytes } from "../../src/domain/Bytes.js"
import { TorrentInput, type SessionEvent, type SessionTorrent } from "../../src/programs/Session.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { makeTorrent, sessionHost, sessionPort, simSession, until } from "../support/SimulatedSession.js"
import { addressOf, drive, seeded, simClient, simSeeder } from "../support/SimulatedSwarm.js"

const ofTag = <T extends SessionEvent["_tag"]>(events: ReadonlyArray<SessionEvent>, tag: T) =>
  events.filter((e): e is Extract<SessionEvent, { _tag: T }> => e._tag === tag)

const allSeeding = (list: ReadonlyArray<SessionTorrent>) => list.length > 0 && list.every((t) => t.status === "seeding")

const readFile = (path: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFile(path))

describe("Session on the in-memory network (TestClock)", () => {
  it.effect("downloads several torrents at once, each from its own seeder, into its files", () =>
    seeded(21)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", bandwidth: 1024 * 1024 } })
        const torrents = [1, 2, 3].map((n) => ({ ...makeTorrent(`t${n}.bin`, 300_000 + n * 1000, n), seeder: `127.4.1.${n}` }))
        for (const [i, t] of torrents.entries()) yield* simSeeder(network, t.seeder, t.info, t.payload, 10 + i)
        const { session, directory, events, context } = yield* simSession(network)
        const ids = yield* Effect.forEach(torrents, (t) => session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf(t.seeder)] }))
        expect(ids).toEqual([1, 2, 3])
        expect(yield* until(Effect.map(session.list, allSeeding), 100, 600)).toBe(true)
        for (const t of torrents) {
          const written = yield* readFile(`${directory}/${t.info.name}`).pipe(Effect.provide(context))
          expect(equalBytes(written, t.payload)).toBe(true)
        }
        const list = yield* session.list
        expect(list.map((t) => t.name)).toEqual(["t1.bin", "t2.bin", "t3.bin"])
        expect(list.every((t) => t.piecesDone === t.piecesTotal && t.verifiedBytes === t.totalBytes)).toBe(true)
        expect(ofTag(events, "Added").map((e) => e.id)).toEqual([1, 2, 3])
        expect(ofTag(events, "Completed").map((e) => e.id).sort()).toEqual([1, 2, 3])
      })
    ), 60_000)
})
