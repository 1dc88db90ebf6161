import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { TokenBucket } from "../../src/domain/TokenBucket.js"

interface Take {
  /** Milliseconds after the previous take. */
  readonly after: number
  readonly bytes: number
}

const bucketArb = fc.record({ rate: fc.integer({ min: 1, max: 10_000_000 }), burst: fc.integer({ min: 1, max: 2_000_000 }) })
/** Takes no larger than the burst, spread over time (often at the same instant). */
const takesArb = (burst: number) =>
  fc.array(fc.record({ after: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2_000 })), bytes: fc.integer({ min: 1, max: burst }) }), {
    minLength: 1,
    maxLength: 120
  })

/** Runs the takes; gives each one's time, size and grant time (when its wait, asked at the take, runs out). */
const run = (rate: number, burst: number, takes: ReadonlyArray<Take>) => {
  const bucket = new TokenBucket(rate, burst, 0)
  let now = 0
  return takes.map(({ after, bytes }) => {
    now += after
    const ticket = bucket.take(bytes, now)
    return { at: now, bytes, ticket, grantedAt: now + bucket.waitFor(ticket, now), bucket }
  })
}

const slack = 1e-6

/**
 * Equal to 6 decimals (toBeCloseTo's 5e-7), widened by what double precision allows at this
 * magnitude: at 1 B/s with 100 MB owed, grant times reach 1e11 ms, where one step of a double is
 * 1.5e-5 ms, and a fixed 5e-7 failed now and then.
 */
const expectNear = (actual: number, expected: number, magnitude = expected) =>
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(5e-7 + 1e-12 * Math.abs(magnitude))

describe("TokenBucket", () => {
  it("never grants more than rate·t + burst over any window of t, over any history", () =>
    fc.assert(
      fc.property(bucketArb.chain((b) => fc.tuple(fc.constant(b), takesArb(b.burst))), ([{ burst, rate }, takes]) => {
        const granted = run(rate, burst, takes)
        for (let i = 0; i < granted.length; i++) {
          let sum = 0
          for (let j = i; j < granted.length; j++) {
            sum += granted[j]!.bytes
            const seconds = (granted[j]!.grantedAt - granted[i]!.grantedAt) / 1000
            expect(sum).toBeLessThanOrEqual(rate * seconds + burst + slack * sum)
          }
        }
      })
    ))

  it("grants in the order of the takes, each within its own bytes and the debt before it (no starvation)", () =>
    fc.assert(
      fc.property(bucketArb.chain((b) => fc.tuple(fc.constant(b), takesArb(b.burst))), ([{ burst, rate }, takes]) => {
        const granted = run(rate, burst, takes)
        const bucket = new TokenBucket(rate, burst, 0)
        granted.forEach((g, i) => {
          if (i > 0) expect(g.grantedAt).toBeGreaterThanOrEqual(granted[i - 1]!.grantedAt)
          const debt = Math.max(0, -bucket.balance(g.at))
          bucket.take(g.bytes, g.at)
          expect(g.grantedAt - g.at).toBeLessThanOrEqual(((debt + g.bytes) / rate) * 1000 + slack)
        })
      })
    ))

  it("asked again later, a wait runs out exactly at the grant time computed at the take, whatever came after", () =>
    fc.assert(
      fc.property(bucketArb.chain((b) => fc.tuple(fc.constant(b), takesArb(b.burst))), ([{ burst, rate }, takes]) => {
        const granted = run(rate, burst, takes)
        const bucket = granted[0]!.bucket
        const end = granted[granted.length - 1]!.at
        for (const g of granted) expect(bucket.waitFor(g.ticket, end)).toBeCloseTo(Math.max(0, g.grantedAt - end), 3)
        // grant times only grow with the takes, so asking at each in turn never goes back in time
        for (const g of granted) expectNear(bucket.waitFor(g.ticket, Math.max(end, g.grantedAt)), 0, g.grantedAt)
      })
    ))

  it("wastes no time: a backlog taken at once is granted at the full rate after the burst", () =>
    fc.assert(
      fc.property(bucketArb.chain((b) => fc.tuple(fc.constant(b), fc.array(fc.integer({ min: 1, max: b.burst }), { minLength: 1, maxLength: 50 }))), ([{ burst, rate }, sizes]) => {
        const bucket = new TokenBucket(rate, burst, 0)
        let ticket = 0
        for (const n of sizes) ticket = bucket.take(n, 0)
        const total = sizes.reduce((a, b) => a + b, 0)
        expectNear(bucket.waitFor(ticket, 0), (Math.max(0, total - burst) / rate) * 1000)
        expectNear(bucket.wouldWait(0, 0), (Math.max(0, total - burst) / rate) * 1000)
      })
    ))

  it("piles up at most the burst while idle, and takes it without waiting", () => {
    const bucket = new TokenBucket(1000, 500, 0)
    expect(bucket.balance(60_000)).toBe(500)
    expect(bucket.wouldWait(500, 60_000)).toBe(0)
    expect(bucket.wouldWait(600, 60_000)).toBeCloseTo(100, 9)
  })

  it("applies a new rate from the moment it is set: what is owed is paid at the new rate", () => {
    const bucket = new TokenBucket(1000, 1000, 0)
    const ticket = bucket.take(3000, 0) // 2000 owed: 2 s at 1000 B/s
    expect(bucket.waitFor(ticket, 0)).toBeCloseTo(2000, 9)
    bucket.setRate(4000, 1000, 1000) // half paid by then; 1000 left at 4000 B/s
    expect(bucket.waitFor(ticket, 1000)).toBeCloseTo(250, 9)
    bucket.setRate(10, 100, 1250)
    expect(bucket.waitFor(ticket, 1250)).toBe(0)
    expect(bucket.balance(1_000_000)).toBe(100)
  })
})
