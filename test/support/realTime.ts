/**
 * Waiting on real sockets from tests whose Effect time is virtual: fake trackers and peers run in
 * real time while the TestClock holds the clock still, so these poll in short real pauses, bounded.
 */
import { Effect, TestClock } from "effect"

/** A 5 ms real-time pause (not a TestClock sleep). */
export const realPause = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))

/** Polls `condition` up to 1000 times (5 s of real time at least); dies naming `what` if it never holds. */
export const waitUntil = (condition: () => boolean, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000; i++) {
      if (condition()) return
      yield* realPause
    }
    return yield* Effect.dieMessage(`timed out waiting for ${what}`)
  })

/** Advances the TestClock once the fiber under test is asleep (a sleep begun after an adjust would miss it). */
export const advanceWhenAsleep = (duration: `${number} ${"millis" | "seconds"}`) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000 && (yield* TestClock.sleeps()).length === 0; i++) yield* realPause
    yield* TestClock.adjust(duration)
  })
