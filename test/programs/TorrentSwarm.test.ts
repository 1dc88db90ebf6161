/**
 * Whole swarms on the in-memory network, under TestClock: deterministic for a seed, and quick,
 * since no real time passes. Our torrent core is the client, the honest and lying seeders (the
 * liars flip every bit they send), and the network's links carry latency and loss.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { DownloadEvent } from "../../src/programs/Download.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { handInfo } from "../support/handInfo.js"
import {
  addressOf,
  chokingPeer,
  drive,
  matches,
  refusingTracker,
  seeded,
  simClient,
  simSeeder
} from "../support/SimulatedSwarm.js"
import { payloadBytes } from "../support/torrent.js"

const client = "127.1.0.100"
const ofTag = <T extends DownloadEvent["_tag"]>(events: ReadonlyArray<DownloadEvent>, tag: T) =>
  events.filter((e): e is Extract<DownloadEvent, { _tag: T }> => e._tag === tag)

/** 8 pieces of 4 blocks each: pieces have several senders, so blame has to be worked out. */
const torrent = (seed: number) => handInfo(65536, [{ path: ["payload.bin"], data: payloadBytes(8 * 65536 - 1000, seed) }])

describe("swarms on the in-memory network (TestClock)", () => {
  it.effect("2 liars and 1 honest seeder, over 100 seeds: always completes, and the honest peer is never banned", () =>
    Effect.gen(function* () {
      let rejected = 0
      let liarsBanned = 0
      for (let run = 1; run <= 100; run++) {
        yield* seeded(run)(
          Effect.gen(function* () {
            const { info, payload } = torrent(run)
            const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", loss: 0.02 }, seed: run })
            const honest = "127.1.0.1"
            const liars = ["127.1.0.2", "127.1.0.3"]
            yield* simSeeder(network, honest, info, payload, 1)
            for (const [i, liar] of liars.entries()) yield* simSeeder(network, liar, info, payload, 2 + i, true)
            // The liars first: they get the first requests.
            const { events, bytes, fiber } = yield* simClient(network, client, info, [...liars, honest].map(addressOf))
            const { exit } = yield* drive(fiber, 100, 3000)
            expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right", `run ${run} did not complete`).toBe(true)
            expect(matches(bytes, payload), `run ${run}: wrong data`).toBe(true)
            const banned = ofTag(events, "PeerBanned").map((e) => e.peer)
            expect(banned, `run ${run}`).not.toContain(`${honest}:6881`)
            rejected += ofTag(events, "PieceRejected").length
            liarsBanned += banned.length
          })
        )
      }
      // The liars did lie, and were caught: the runs are not honest by luck.
      expect(rejected).toBeGreaterThan(100)
      expect(liarsBanned).toBeGreaterThan(100)
    }), 120_000)

  it.effect("30 peers that never unchoke and 1 good one: completes", () =>
    seeded(7)(
      Effect.gen(function* () {
        const { info, payload } = torrent(7)
        const network = yield* MemoryNetwork.make({ link: { latency: "10 millis" } })
        const chokers = Array.from({ length: 30 }, (_, i) => `127.2.0.${i + 1}`)
        for (const [i, a] of chokers.entries()) yield* chokingPeer(network, a, info, 10 + i)
        const good = "127.2.1.1"
        yield* simSeeder(network, good, info, payload, 1)
        const { bytes, fiber } = yield* simClient(network, client, info, [...chokers, good].map(addressOf))
        const { exit } = yield* drive(fiber, 200, 1000)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
        expect(matches(bytes, payload)).toBe(true)
      })
    ))

  it.effect("chokers holding every connection slot are evicted for a peer that waits for one", () =>
    seeded(8)(
      Effect.gen(function* () {
        const { info, payload } = torrent(8)
        const network = yield* MemoryNetwork.make({ link: { latency: "10 millis" } })
        const chokers = Array.from({ length: 8 }, (_, i) => `127.2.2.${i + 1}`)
        for (const [i, a] of chokers.entries()) yield* chokingPeer(network, a, info, 50 + i)
        const good = "127.2.3.1"
        yield* simSeeder(network, good, info, payload, 1)
        // 4 slots, 8 chokers listed before the good peer: it gets a slot only when chokers make room.
        const { events, bytes, fiber } = yield* simClient(network, client, info, [...chokers, good].map(addressOf), { maxPeers: 4 })
        const { exit, millis } = yield* drive(fiber, 500, 400)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
        expect(matches(bytes, payload)).toBe(true)
        expect(ofTag(events, "PeerDropped").filter((e) => /evicted/.test(e.reason)).length).toBeGreaterThanOrEqual(4)
        // two rounds of evictions, 30 s of uselessness each, and some slack
        expect(millis).toBeLessThanOrEqual(90_000)
      })
    ))

  it.effect("seeders that come and go: completes", () =>
    seeded(11)(
      Effect.gen(function* () {
        const { info, payload } = torrent(11)
        const network = yield* MemoryNetwork.make({ link: { latency: "20 millis", bandwidth: 64 * 1024 } })
        const seeders = ["127.3.0.1", "127.3.0.2", "127.3.0.3"]
        for (const [i, a] of seeders.entries()) yield* simSeeder(network, a, info, payload, 1 + i)
        const { bytes, fiber } = yield* simClient(network, client, info, seeders.map(addressOf))
        // Every second one seeder goes down and the one before comes back: at most one is up at a time... or two.
        for (let t = 0; t < 60 && fiber.unsafePoll() === null; t++) {
          yield* network.disconnect(seeders[t % 3]!)
          yield* network.reconnect(seeders[(t + 2) % 3]!)
          yield* drive(fiber, 100, 10)
        }
        const { exit } = yield* drive(fiber, 100, 3000)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
        expect(matches(bytes, payload)).toBe(true)
      })
    ), 60_000)

  it.effect("a tracker that refuses the announce, as the only source: a typed error within the give-up time", () =>
    seeded(3)(
      Effect.gen(function* () {
        const { info } = torrent(3)
        const network = yield* MemoryNetwork.make()
        const { events, fiber } = yield* simClient(network, client, info, [], {}, refusingTracker)
        const { exit, millis } = yield* drive(fiber, 500, 200)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Left").toBe(true)
        const error = exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Left" ? exit.value.left : undefined
        expect(error).toMatchObject({ _tag: "NoPeerSources" })
        expect(error?.message).toMatch(/refused the announce: torrent not registered/)
        expect(millis).toBeLessThanOrEqual(30_000)
        expect(ofTag(events, "AnnounceFailed").length).toBeGreaterThanOrEqual(1)
      })
    ))
})
