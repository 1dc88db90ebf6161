import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { allowedFastSet } from "../../src/domain/FastExtension.js"

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
const infoHash = fc.uint8Array({ minLength: 20, maxLength: 20 })

describe("allowedFastSet", () => {
  // The example vectors BEP 6 gives: 1313 pieces, info hash of twenty 0xaa bytes, 80.4.4.200.
  const bepHash = new Uint8Array(20).fill(0xaa)

  it("matches BEP 6's 7-piece example", () => {
    expect(allowedFastSet(bepHash, "80.4.4.200", 1313, 7)).toEqual([1059, 431, 808, 1217, 287, 376, 1188])
  })

  it("matches BEP 6's 9-piece example", () => {
    expect(allowedFastSet(bepHash, "80.4.4.200", 1313, 9)).toEqual([1059, 431, 808, 1217, 287, 376, 1188, 353, 508])
  })

  it.prop(
    "gives min(k, pieces) distinct pieces in range, a smaller k being a prefix of a larger one",
    [infoHash, ipv4, fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 12 })],
    ([hash, ip, pieces, k]) => {
      const set = allowedFastSet(hash, ip.join("."), pieces, k)
      expect(set).toHaveLength(Math.min(k, pieces))
      expect(new Set(set).size).toBe(set.length)
      for (const i of set) expect(i >= 0 && i < pieces).toBe(true)
      expect(allowedFastSet(hash, ip.join("."), pieces, k + 3).slice(0, set.length)).toEqual(set)
    }
  )

  it.prop(
    "depends only on the address's /24 prefix",
    [infoHash, ipv4, fc.nat(255), fc.integer({ min: 1, max: 3000 })],
    ([hash, [a, b, c, d], other, pieces]) => {
      expect(allowedFastSet(hash, `${a}.${b}.${c}.${other}`, pieces, 10)).toEqual(
        allowedFastSet(hash, `${a}.${b}.${c}.${d}`, pieces, 10)
      )
    }
  )

  it.prop("treats an IPv4-mapped IPv6 address as the IPv4 one", [infoHash, ipv4], ([hash, ip]) => {
    expect(allowedFastSet(hash, `::ffff:${ip.join(".")}`, 1000, 10)).toEqual(allowedFastSet(hash, ip.join("."), 1000, 10))
  })

  it.each(["::1", "2001:db8::1", "80.4.4", "80.4.4.256", "localhost", ""])("is empty for %j", (address) => {
    expect(allowedFastSet(bepHash, address, 1313, 10)).toEqual([])
  })
})
