import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { formatBytes, formatEta, formatPercent, formatRate } from "../../src/web/format.js"

const unitPower: Record<string, number> = { B: 0, KiB: 1, MiB: 2, GiB: 3, TiB: 4, PiB: 5 }

describe("web UI number formats", () => {
  it("writes sizes in binary units with about three figures", () => {
    expect([0, 1023, 1024, 1536, 10_240, 1_048_575, 1_572_864, 5 * 2 ** 40].map(formatBytes)).toEqual(
      ["0 B", "1023 B", "1 KiB", "1.5 KiB", "10 KiB", "1 MiB", "1.5 MiB", "5 TiB"])
    expect(formatRate(2048)).toBe("2 KiB/s")
  })

  it.prop("a size read back is within half a percent of the bytes, below 1024 of its unit", [fc.integer({ min: 1024, max: 2 ** 52 })], ([bytes]) => {
    const [value, unit] = formatBytes(bytes).split(" ") as [string, string]
    expect(Number(value)).toBeLessThan(1024)
    expect(Math.abs(Number(value) * 1024 ** unitPower[unit]! - bytes) / bytes).toBeLessThan(0.005)
  })

  it.prop("a percentage is never 100% before the end", [fc.double({ min: 0, max: 1, noNaN: true })], ([f]) => {
    const text = formatPercent(f)
    expect(text === "100.0%").toBe(f >= 1)
  })

  it("writes times left in their two largest units, a dash when unknown", () => {
    expect([45, 200, 7500, 200_000, null, -1].map(formatEta)).toEqual(["45s", "3m 20s", "2h 5m", "2d 7h", "—", "—"])
  })
})
