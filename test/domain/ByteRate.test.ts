import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { parseByteRate, rateMultipliers } from "../../src/domain/ByteRate.js"

describe("parseByteRate", () => {
  it("reads a whole number with any suffix as that many bytes, KiB, MiB or GiB per second", () =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom("", "k", "K", "M", "G"), (n, suffix) => {
        expect(parseByteRate(`${n}${suffix}`)).toEqual(Either.right(n * rateMultipliers[suffix]!))
      })
    ))

  it("reads fractions of a suffix, rounded to whole bytes", () => {
    expect(parseByteRate("4M")).toEqual(Either.right(4 * 1048576))
    expect(parseByteRate("2.5M")).toEqual(Either.right(2621440))
    expect(parseByteRate("1.5k")).toEqual(Either.right(1536))
    expect(parseByteRate("0")).toEqual(Either.right(0))
    expect(parseByteRate("0.5")).toEqual(Either.right(1))
  })

  it("refuses anything else, naming the input", () =>
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        fc.pre(!/^\s*\d+(\.\d+)?[kKMG]?\s*$/.test(text))
        const parsed = parseByteRate(text)
        expect(Either.isLeft(parsed)).toBe(true)
        if (Either.isLeft(parsed)) expect(parsed.left.message).toContain(`'${text}'`)
      })
    ))

  it("refuses rates under a byte per second and beyond what a number holds exactly", () => {
    for (const text of ["-1", "4 M", "4MB", "4m", "1e6", ".5", "M", "", "4.M"]) {
      expect(Either.isLeft(parseByteRate(text)), text).toBe(true)
    }
    expect(parseByteRate("0.4")).toEqual(Either.left(expect.objectContaining({ reason: "TooSmall" })))
    expect(parseByteRate("99999999999G")).toEqual(Either.left(expect.objectContaining({ reason: "TooLarge" })))
  })
})
