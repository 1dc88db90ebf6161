/**
 * The limiters torrents share, under TestClock: peers taking from one limiter take turns (a slow
 * one is never starved by a fast one), a limit applies across all its limiters, changing or
 * lifting a rate reaches a waiting taker within a slice, and no limit costs no wait.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, TestClock } from "effect"
import { charge, makeRateLimiter, type RateLimiter } from "../../src/programs/torrent/RateLimiter.js"

const KiB = 1024

/**
 * A peer's reads until `until`: a greedy one reads `bytes` as soon as the last read is granted; a
 * paced one (`sends`: bytes per second) reads what arrived meanwhile, as from a socket. Gives the
 * bytes read and the longest wait for a grant.
 */
const reader = (limiters: ReadonlyArray<RateLimiter>, until: number, bytes: number, sends?: number) =>
  Effect.gen(function* () {
    let taken = 0
    let longestWait = 0
    let last = yield* Clock.currentTimeMillis
    while ((yield* Clock.currentTimeMillis) < until) {
      if (sends !== undefined) yield* Effect.sleep(50)
      const before = yield* Clock.currentTimeMillis
      const read = sends === undefined ? bytes : Math.round(((before - last) * sends) / 1000)
      last = before
      const wait = charge(limiters, read)
      if (wait !== undefined) yield* wait
      longestWait = Math.max(longestWait, (yield* Clock.currentTimeMillis) - before)
      taken += read
    }
    return { taken, longestWait }
  })

const runFor = <A>(fibers: ReadonlyArray<Fiber.RuntimeFiber<A>>, millis: number) =>
  Effect.gen(function* () {
    for (let t = 0; t < millis + 1000; t += 50) yield* TestClock.adjust(50)
    return yield* Fiber.joinAll(fibers)
  })

describe("RateLimiter", () => {
  it.effect("a slow peer under its share gets all it asks for beside a greedy one, and each waits at most a turn", () =>
    Effect.gen(function* () {
      const limiter = yield* makeRateLimiter(200 * KiB)
      const greedy = yield* Effect.fork(reader([limiter], 10_000, 64 * KiB))
      const slow = yield* Effect.fork(reader([limiter], 10_000, 0, 40 * KiB))
      const [g, s] = yield* runFor([greedy, slow], 10_000)
      // 10 s of the slow peer's pace, and what is left of the rate for the greedy one
      expect(s!.taken).toBeGreaterThanOrEqual(0.9 * 400 * KiB)
      // its wait: the greedy peer's read ahead of it and its own (at most half a second's worth)
      expect(s!.longestWait).toBeLessThanOrEqual(((64 + 20) * KiB / (200 * KiB)) * 1000 + 100)
      const total = g!.taken + s!.taken
      expect(total).toBeLessThanOrEqual(200 * KiB * 10 + 50 * KiB + 2 * 64 * KiB)
      expect(total).toBeGreaterThanOrEqual(0.95 * 200 * KiB * 10)
    }))

  it.effect("bytes count against every limiter given, and wait for the slowest", () =>
    Effect.gen(function* () {
      const own = yield* makeRateLimiter(1024 * KiB)
      const global = yield* makeRateLimiter(100 * KiB)
      const [t] = yield* runFor([yield* Effect.fork(reader([own, global], 10_000, 16 * KiB))], 10_000)
      expect(t!.taken).toBeLessThanOrEqual(100 * KiB * 10 + 64 * KiB + 16 * KiB)
      expect(t!.taken).toBeGreaterThanOrEqual(0.95 * 100 * KiB * 10)
    }))

  it.effect("a rate changed or lifted while a take waits reaches it within a tenth of a second", () =>
    Effect.gen(function* () {
      const limiter = yield* makeRateLimiter(1 * KiB)
      expect(charge([limiter], 64 * KiB)).toBeUndefined() // the first burst is free
      const waiting = yield* Effect.fork(charge([limiter], 100 * KiB)!) // 100 s at 1 KiB/s
      yield* TestClock.adjust(1000)
      limiter.set(1024 * KiB) // what is left is owed at the new rate
      yield* TestClock.adjust(200)
      expect(waiting.unsafePoll()).not.toBeNull()
      const again = yield* Effect.fork(charge([limiter], 10_000 * KiB)!)
      limiter.set(undefined)
      yield* TestClock.adjust(100)
      expect(again.unsafePoll()).not.toBeNull()
      expect(limiter.bytesPerSecond).toBeUndefined()
      expect(charge([limiter], 1 << 30)).toBeUndefined()
    }))
})
