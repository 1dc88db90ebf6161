/** File selection in the torrent core, on the in-memory network under TestClock. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schedule } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { piecePlan } from "../../src/domain/FileSelection.js"
import { makePeerId } from "../../src/domain/Peer.js"
import { start } from "../../src/programs/torrent/Torrent.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { handInfo } from "../support/handInfo.js"
import { addressOf, drive, hostLayer, matches, memorySink, seeded, simClient, simSeeder } from "../support/SimulatedSwarm.js"
import { payloadBytes } from "../support/torrent.js"

const client = "127.1.0.100"
const seeder = "127.1.0.1"

// 16 KiB pieces: piece 1 is shared by a and b, piece 4 by b and c.
const three = handInfo(16384, [
  { path: ["a"], data: payloadBytes(20000, 1) },
  { path: ["b"], data: payloadBytes(50000, 2) },
  { path: ["c"], data: payloadBytes(30000, 3) }
])

const pieceBytes = (bytes: Uint8Array, index: number) => bytes.subarray(index * 16384, (index + 1) * 16384)

describe("file selection in the torrent core", () => {
  it.effect("fetches exactly the pieces touching the wanted files, and completes", () =>
    seeded(1)(
      Effect.gen(function* () {
        const { info, payload } = three
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" }, seed: 1 })
        yield* simSeeder(network, seeder, info, payload, 1)
        const files = ["skip", "normal", "skip"] as const
        const { events, bytes, fiber } = yield* simClient(network, client, info, [addressOf(seeder)], { files })
        const { exit } = yield* drive(fiber, 100, 600)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
        const verified = events.flatMap((e) => (e._tag === "PieceVerified" ? [e.index] : [])).sort()
        const plan = piecePlan(info, files)
        expect(verified).toEqual([1, 2, 3, 4])
        for (let i = 0; i < info.pieceCount; i++) {
          expect(plan.wanted.has(i)).toBe(verified.includes(i))
          expect(matches(pieceBytes(bytes, i), plan.wanted.has(i) ? pieceBytes(payload, i) : new Uint8Array(pieceBytes(bytes, i).length))).toBe(true)
        }
      })
    ))

  it.effect("setFilePriorities on the handle widens the selection as it runs, even once complete (seeding); a wrong list is refused", () =>
    seeded(2)(
      Effect.gen(function* () {
        const { info, payload } = three
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" }, seed: 2 })
        yield* simSeeder(network, seeder, info, payload, 1)
        const { bytes, sink } = memorySink(info)
        const handle = yield* start({ info, trackers: [], peers: [addressOf(seeder)] }, sink, Bitfield.empty(info.pieceCount), {
          peerId: makePeerId(() => new Uint8Array(12).fill(9)),
          port: 6882,
          seed: true,
          files: ["normal", "skip", "skip"]
        }).pipe(Effect.provide(hostLayer(network, client)))
        const refused = yield* Effect.flip(handle.setFilePriorities(["normal"]))
        expect(refused._tag).toBe("FileSelectionError")
        /** Moves the clock on until `n` pieces are verified (bounded). */
        const untilDone = (n: number) =>
          Effect.flatMap(
            Effect.fork(Effect.repeat(handle.stats, { until: (s) => s.piecesDone >= n, schedule: Schedule.spaced("100 millis") })),
            (fiber) => drive(fiber, 100, 600)
          )
        yield* untilDone(2)
        expect(yield* handle.stats).toMatchObject({ piecesDone: 2, totalBytes: 2 * 16384 })
        yield* handle.setFilePriorities(["normal", "low", "high"])
        yield* untilDone(info.pieceCount)
        expect(matches(bytes, payload)).toBe(true)
        expect((yield* handle.stats).totalBytes).toBe(info.totalLength)
        yield* handle.stop
      })
    ))
})
