/**
 * Local service discovery (BEP 14) through the `Lsd` test layer (a bus in memory; nothing is
 * multicast): a leecher that knows no peer and no tracker finds a seeder that announces itself,
 * its own announcements are not heard back, and a private torrent uses none of it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Stream, TestClock } from "effect"
import { Lsd, makeLsdTestNetwork } from "../../src/services/Lsd.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { handInfo } from "../support/handInfo.js"
import { drive, matches, port, seeded, simClient, simSeeder } from "../support/SimulatedSwarm.js"
import { payloadBytes } from "../support/torrent.js"

const leecher = "127.5.0.100"
const seeder = "127.5.0.1"
const torrent = (seed: number) => handInfo(65536, [{ path: ["payload.bin"], data: payloadBytes(4 * 65536 - 10, seed) }])

describe("the Lsd test layer", () => {
  it.scoped("delivers a datagram to the other layers of its network, not back to its sender", () =>
    Effect.gen(function* () {
      const network = yield* makeLsdTestNetwork
      const a = yield* Effect.provide(Lsd, Lsd.test(network, "127.5.0.1"))
      const b = yield* Effect.provide(Lsd, Lsd.test(network, "127.5.0.2"))
      const heardByA = yield* Effect.flatMap(a.subscribe, (heard) => Effect.fork(Stream.runCollect(Stream.take(heard, 1))))
      const heardByB = yield* Effect.flatMap(b.subscribe, (heard) => Effect.fork(Stream.runCollect(Stream.take(heard, 1))))
      const hash = new Uint8Array(20).fill(9)
      yield* a.announce([hash], 6881)
      yield* b.announce([new Uint8Array(20).fill(8)], 7000)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(heardByB))).toEqual([{ infoHash: hash, address: { host: "127.5.0.1", port: 6881 } }])
      expect(Chunk.toReadonlyArray(yield* Fiber.join(heardByA))[0]?.address).toEqual({ host: "127.5.0.2", port: 7000 })
    }))
})

describe("local service discovery in a torrent (TestClock)", () => {
  it.effect("a leecher with no peer and no tracker finds a seeder that announces itself, and completes", () =>
    seeded(21)(
      Effect.gen(function* () {
        const { info, payload } = torrent(21)
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const lsd = yield* makeLsdTestNetwork
        const { bytes, fiber, events } = yield* simClient(network, leecher, info, [], { giveUpAfter: "10 minutes" }).pipe(
          Effect.provide(Lsd.test(lsd, leecher)))
        yield* TestClock.adjust(100)
        yield* simSeeder(network, seeder, info, payload, 1).pipe(Effect.provide(Lsd.test(lsd, seeder)))
        // The seeder announces at its start and every 5 minutes: within 6 minutes the leecher has heard it.
        const { exit } = yield* drive(fiber, 100, 3600)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
        expect(matches(bytes, payload)).toBe(true)
        expect(events.some((e) => e._tag === "PeerConnected" && e.peer === `${seeder}:${port}`)).toBe(true)
      })
    ))

  it.effect("a private torrent (BEP 27) neither announces nor takes announced peers", () =>
    seeded(22)(
      Effect.gen(function* () {
        const { info: publicInfo, payload } = torrent(22)
        const info = { ...publicInfo, private: true }
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const lsd = yield* makeLsdTestNetwork
        const heard = yield* Effect.provide(Lsd, Lsd.test(lsd, "127.5.0.50")).pipe(
          Effect.flatMap((probe) => probe.subscribe),
          Effect.flatMap((peers) => Effect.fork(Stream.runCollect(Stream.take(peers, 1)))))
        const { events } = yield* simClient(network, leecher, info, [], { giveUpAfter: "10 minutes" }).pipe(
          Effect.provide(Lsd.test(lsd, leecher)))
        yield* simSeeder(network, seeder, info, payload, 1).pipe(Effect.provide(Lsd.test(lsd, seeder)))
        for (let i = 0; i < 35; i++) yield* TestClock.adjust(10_000)
        expect(heard.unsafePoll()).toBeNull()
        expect(events.some((e) => e._tag === "PeerConnected")).toBe(false)
      })
    ))
})
