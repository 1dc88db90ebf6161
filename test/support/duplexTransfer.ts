/** Moving bytes through a `Duplex` in tests, honouring its flow control both ways. */
import { Effect, Fiber, TestClock } from "effect"
import { concatBytes } from "../../src/domain/Bytes.js"
import type { Duplex } from "../../src/services/Transport.js"

/** Writes all of `data` in chunks, waiting for "drain" whenever `write` asks to. */
export const writeAll = (duplex: Duplex, data: Uint8Array, chunk = 64 * 1024): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    let at = 0
    const pump = () => {
      while (at < data.length) {
        const part = data.subarray(at, at + chunk)
        at += part.length
        if (!duplex.write(part)) return
      }
      duplex.off("drain", pump)
      resume(Effect.void)
    }
    duplex.on("drain", pump)
    pump()
    return Effect.sync(() => duplex.off("drain", pump))
  })

/** Reads until `length` bytes arrived or the read side ended; what arrived. */
export const readBytes = (duplex: Duplex, length: number): Effect.Effect<Uint8Array> =>
  Effect.async<Uint8Array>((resume) => {
    const parts: Array<Uint8Array> = []
    let got = 0
    const pull = () => {
      for (let bytes = duplex.read(); bytes !== null; bytes = duplex.read()) {
        parts.push(bytes)
        got += bytes.length
      }
      if (got < length && !duplex.readEnded) return
      duplex.off("readable", pull)
      resume(Effect.succeed(concatBytes(parts)))
    }
    duplex.on("readable", pull)
    pull()
    return Effect.sync(() => duplex.off("readable", pull))
  })

/** Advances the TestClock in steps until the fiber is done (at most `limitMillis` of virtual time); its result. */
export const runVirtually = <A, E>(fiber: Fiber.Fiber<A, E>, limitMillis: number, stepMillis = 10): Effect.Effect<A, E | string> =>
  Effect.gen(function* () {
    for (let elapsed = 0; elapsed < limitMillis; elapsed += stepMillis) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return yield* done.value
      yield* TestClock.adjust(`${stepMillis} millis`)
    }
    yield* Fiber.interrupt(fiber)
    return yield* Effect.fail(`not done after ${limitMillis} ms of virtual time`)
  })

/** Deterministic pseudo-random bytes. */
export const patternBytes = (length: number, seed = 1): Uint8Array => {
  const out = new Uint8Array(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x
  }
  return out
}
