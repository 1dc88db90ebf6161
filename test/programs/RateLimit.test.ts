/**
 * Rate limits on the in-memory network under TestClock (virtual time, so the figures are exact for
 * a seed, not measurements of this machine): a limited download and a limited seeder take the time
 * their limit gives, a limit shared by two torrents splits between them, and a rate set while a
 * torrent runs applies.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { makeRateLimits } from "../../src/programs/torrent/RateLimiter.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { handInfo } from "../support/handInfo.js"
import { addressOf, drive, matches, seeded, simClient, simSeeder } from "../support/SimulatedSwarm.js"
import { payloadBytes } from "../support/torrent.js"

const KiB = 1024
const size = 1024 * KiB
const torrent = (seed: number) => handInfo(64 * KiB, [{ path: ["payload.bin"], data: payloadBytes(size, seed) }])
/** A fast network: 20 MiB/s links, 2 ms apart. */
const fastNetwork = MemoryNetwork.make({ link: { bandwidth: 20 * 1024 * KiB, latency: "2 millis" } })
/** What the limiter starts with: a quarter second of the rate, at least 64 KiB. */
const burst = (rate: number) => Math.max(64 * KiB, rate / 4)

const completed = (exit: Exit.Exit<{ readonly _tag: string }, unknown> | null) => exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right"

/** The client's run to its end: complete, the exact bytes, and within `tolerance` of `expectedMillis`. */
const expectTimedDownload = (
  client: Effect.Effect.Success<ReturnType<typeof simClient>>,
  payload: Uint8Array,
  expectedMillis: number,
  tolerance: number
) =>
  Effect.gen(function* () {
    const { exit, millis } = yield* drive(client.fiber, 50, 1000)
    expect(completed(exit)).toBe(true)
    expect(matches(client.bytes, payload)).toBe(true)
    expect(Math.abs(millis - expectedMillis) / expectedMillis, `${millis} ms, expected ${expectedMillis}`).toBeLessThan(tolerance)
  })

describe("rate limits on the in-memory network (TestClock)", () => {
  it.effect("a download limited to 128 KiB/s from two fast seeders takes (size - burst) / rate, within 5%", () =>
    seeded(3)(
      Effect.gen(function* () {
        const { info, payload } = torrent(3)
        const network = yield* fastNetwork
        yield* simSeeder(network, "127.3.0.1", info, payload, 1)
        yield* simSeeder(network, "127.3.0.2", info, payload, 2)
        const limits = yield* makeRateLimits({ download: 128 * KiB })
        const client = yield* simClient(network, "127.3.0.100", info, [addressOf("127.3.0.1"), addressOf("127.3.0.2")], {
          rateLimits: [limits]
        })
        yield* expectTimedDownload(client, payload, ((size - burst(128 * KiB)) / (128 * KiB)) * 1000, 0.05)
      })
    ), 60_000)

  it.effect("a seeder limited to 128 KiB/s serves an unlimited client in size / rate, within 5%", () =>
    seeded(4)(
      Effect.gen(function* () {
        const { info, payload } = torrent(4)
        const network = yield* fastNetwork
        const limits = yield* makeRateLimits({ upload: 128 * KiB })
        yield* simSeeder(network, "127.3.1.1", info, payload, 1, false, { rateLimits: [limits] })
        const client = yield* simClient(network, "127.3.1.100", info, [addressOf("127.3.1.1")])
        yield* expectTimedDownload(client, payload, ((size - burst(128 * KiB)) / (128 * KiB)) * 1000, 0.05)
      })
    ), 60_000)

  it.effect("two torrents sharing a global limit of 128 KiB/s (each with a looser own limit) take twice as long as one", () =>
    seeded(5)(
      Effect.gen(function* () {
        const first = torrent(5)
        const second = torrent(6)
        const network = yield* fastNetwork
        yield* simSeeder(network, "127.3.2.1", first.info, first.payload, 1)
        yield* simSeeder(network, "127.3.2.2", second.info, second.payload, 2)
        const global = yield* makeRateLimits({ download: 128 * KiB })
        const own = [yield* makeRateLimits({ download: 1024 * KiB }), yield* makeRateLimits({ download: 1024 * KiB })]
        const a = yield* simClient(network, "127.3.2.100", first.info, [addressOf("127.3.2.1")], { rateLimits: [own[0]!, global] })
        const b = yield* simClient(network, "127.3.2.101", second.info, [addressOf("127.3.2.2")], { rateLimits: [own[1]!, global] })
        const { exit, millis } = yield* drive(a.fiber, 50, 1000)
        const other = yield* drive(b.fiber, 50, 100)
        expect(completed(exit) && completed(other.exit)).toBe(true)
        expect(matches(a.bytes, first.payload) && matches(b.bytes, second.payload)).toBe(true)
        const expected = ((2 * size - burst(128 * KiB)) / (128 * KiB)) * 1000
        expect(Math.abs(millis + other.millis - expected) / expected, `${millis} + ${other.millis} ms, expected ${expected}`).toBeLessThan(0.05)
        // they shared it: the first was not done long before the second
        expect(other.millis).toBeLessThan(0.1 * expected)
      })
    ), 60_000)

  it.effect("a rate raised while the download runs applies at once", () =>
    seeded(7)(
      Effect.gen(function* () {
        const { info, payload } = torrent(7)
        const network = yield* fastNetwork
        yield* simSeeder(network, "127.3.3.1", info, payload, 1)
        const limits = yield* makeRateLimits({ download: 64 * KiB })
        const client = yield* simClient(network, "127.3.3.100", info, [addressOf("127.3.3.1")], { rateLimits: [limits] })
        // 4 s at 64 KiB/s: 256 KiB plus the burst; the rest at 256 KiB/s
        const slow = yield* drive(client.fiber, 50, 80)
        expect(slow.exit).toBeNull()
        limits.download.set(256 * KiB)
        yield* expectTimedDownload(client, payload, ((size - 64 * KiB - 4 * 64 * KiB) / (256 * KiB)) * 1000, 0.1)
      })
    ), 60_000)
})
