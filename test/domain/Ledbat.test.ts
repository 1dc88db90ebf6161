import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import {
  defaultLedbatOptions,
  type Ledbat,
  makeLedbat,
  maxRtoMillis,
  minRtoMillis,
  onAck,
  onDelaySample,
  onLoss,
  onRttSample,
  onTimeout,
  queuingDelay
} from "../../src/domain/Ledbat.js"

type Event =
  | { readonly _tag: "Sample"; readonly delayMicros: number; readonly afterMillis: number }
  | { readonly _tag: "Ack"; readonly bytes: number; readonly windowLimited: boolean }
  | { readonly _tag: "Loss" }
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "Rtt"; readonly millis: number }

const { lossFactor, minWindow, maxWindow, targetMicros } = defaultLedbatOptions

const eventArb = (offset: number): fc.Arbitrary<Event> =>
  fc.oneof(
    fc.record({
      _tag: fc.constant("Sample" as const),
      // a random clock offset between the ends, plus up to 400 ms of queuing
      delayMicros: fc.integer({ min: 0, max: 400_000 }).map((d) => (offset + d) >>> 0),
      afterMillis: fc.integer({ min: 0, max: 30_000 })
    }),
    fc.record({ _tag: fc.constant("Ack" as const), bytes: fc.integer({ min: 1, max: 100_000 }), windowLimited: fc.boolean() }),
    fc.constant({ _tag: "Loss" as const }),
    fc.constant({ _tag: "Timeout" as const }),
    fc.record({ _tag: fc.constant("Rtt" as const), millis: fc.integer({ min: 0, max: 5000 }) })
  )

const historyArb = fc.integer({ min: 0, max: 0xffffffff }).chain((offset) => fc.array(eventArb(offset), { maxLength: 200 }))

/** Runs a history, checking after each step what must hold. */
const run = (events: ReadonlyArray<Event>, check: (before: Ledbat, event: Event, after: Ledbat) => void) => {
  let now = 0
  let s = makeLedbat(now)
  for (const event of events) {
    const before = s
    switch (event._tag) {
      case "Sample":
        now += event.afterMillis
        s = onDelaySample(s, event.delayMicros, now)
        break
      case "Ack":
        s = onAck(s, event)
        break
      case "Loss":
        s = onLoss(s)
        break
      case "Timeout":
        s = onTimeout(s)
        break
      case "Rtt":
        s = onRttSample(s, event.millis)
    }
    check(before, event, s)
  }
}

describe("Ledbat", () => {
  it("keeps the window between one packet and the maximum, over any history", () =>
    fc.assert(
      fc.property(historyArb, (events) =>
        run(events, (_, __, s) => {
          expect(s.cwnd).toBeGreaterThanOrEqual(minWindow)
          expect(s.cwnd).toBeLessThanOrEqual(maxWindow)
        })
      )
    ))

  it("never grows the window while the queuing delay is above the target", () =>
    fc.assert(
      fc.property(historyArb, (events) =>
        run(events, (before, event, after) => {
          if (event._tag === "Ack" && queuingDelay(before) > targetMicros) expect(after.cwnd).toBeLessThanOrEqual(before.cwnd)
        })
      )
    ))

  it("shrinks on loss (by the loss factor, down to one packet) and falls to one packet on a timeout, to slow start up to half the old window", () =>
    fc.assert(
      fc.property(historyArb, (events) =>
        run(events, (before, event, after) => {
          if (event._tag === "Loss") {
            expect(after.cwnd).toBe(Math.max(minWindow, before.cwnd * lossFactor))
            expect(after.slowStart).toBe(false)
            expect(after.ssthresh).toBe(after.cwnd)
          }
          if (event._tag === "Timeout") {
            expect(after.cwnd).toBe(minWindow)
            expect(after.slowStart).toBe(true)
            expect(after.ssthresh).toBe(Math.max(minWindow, before.cwnd / 2))
            expect(after.rtoMillis).toBe(Math.min(maxRtoMillis, before.rtoMillis * 2))
          }
        })
      )
    ))

  it("slow start never takes the window past ssthresh, and ends there", () =>
    fc.assert(
      fc.property(historyArb, (events) =>
        run(events, (before, event, after) => {
          if (event._tag === "Ack" && before.slowStart && after.cwnd > before.cwnd) {
            expect(after.cwnd).toBeLessThanOrEqual(Math.max(before.ssthresh, before.cwnd))
            if (after.cwnd >= before.ssthresh) expect(after.slowStart).toBe(false)
          }
        })
      )
    ))

  it("after a timeout, a full window at low delay doubles per round trip back to half the old window, then grows slowly", () => {
    let s = onDelaySample(makeLedbat(0), 5000, 0)
    s = { ...s, slowStart: false, cwnd: 64_000 }
    s = onTimeout(s)
    let roundTrips = 0
    while (s.slowStart && roundTrips < 100) {
      s = onAck(s, { bytes: s.cwnd, windowLimited: true })
      roundTrips++
    }
    expect(s.cwnd).toBe(32_000)
    // 1400 doubling to 32000 takes five round trips; growing 3000 bytes per round trip would take ten
    expect(roundTrips).toBeLessThanOrEqual(5)
    const next = onAck(s, { bytes: s.cwnd, windowLimited: true })
    expect(next.cwnd - s.cwnd).toBeLessThanOrEqual(defaultLedbatOptions.maxIncreasePerRtt)
  })

  it("grows while the window is full and the delay is low, and not while the sender leaves it unused", () => {
    let s = onDelaySample(makeLedbat(0), 12345, 0)
    const idle = onAck(s, { bytes: 10_000, windowLimited: false })
    expect(idle.cwnd).toBe(s.cwnd)
    for (let i = 0; i < 10; i++) s = onAck(s, { bytes: s.cwnd, windowLimited: true })
    expect(s.cwnd).toBeGreaterThan(minWindow * 100)
  })

  it("measures queuing delay against the least delay seen, whatever the clock offset, across the 32-bit wrap", () =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.array(fc.integer({ min: 0, max: 300_000 }), { minLength: 1, maxLength: 20 }), (offset, delays) => {
        let s = makeLedbat(0)
        delays.forEach((d, i) => {
          s = onDelaySample(s, (offset + d) >>> 0, i * 10)
        })
        const recent = delays.slice(-3)
        expect(queuingDelay(s)).toBe(Math.min(...recent) - Math.min(...delays))
      })
    ))

  it("forgets a base delay older than its buckets: a route that got longer becomes the new base", () => {
    let s = onDelaySample(makeLedbat(0), 10_000, 0)
    for (const at of [1000, 1001, 1002]) s = onDelaySample(s, 60_000, at)
    expect(queuingDelay(s)).toBe(50_000)
    for (let minute = 1; minute <= 4; minute++) s = onDelaySample(s, 60_000, minute * 60_000 + 1000)
    expect(queuingDelay(s)).toBe(0)
  })

  it("keeps its state when a peer repeats its measurement, until a new bucket starts", () => {
    let s = onDelaySample(makeLedbat(0), 10_000, 0)
    for (const at of [1, 2, 3]) s = onDelaySample(s, 30_000, at)
    expect(onDelaySample(s, 30_000, 4)).toBe(s)
    expect(onDelaySample(s, 30_001, 4)).not.toBe(s)
    const later = onDelaySample(s, 30_000, 60_001)
    expect(later.baseDelays).toEqual([10_000, 30_000])
    expect(queuingDelay(later)).toBe(20_000)
  })

  it("estimates the retransmission timeout as rtt + 4 rttvar, at least 500 ms", () => {
    const first = onRttSample(makeLedbat(0), 200)
    expect(first.rtoMillis).toBe(600)
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 50 }), (samples) => {
        const s = samples.reduce(onRttSample, makeLedbat(0))
        expect(s.rtoMillis).toBeGreaterThanOrEqual(minRtoMillis)
        expect(s.rtoMillis).toBeLessThanOrEqual(maxRtoMillis)
      })
    )
  })
})
