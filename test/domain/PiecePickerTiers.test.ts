/** The picker's priority tiers (file priorities) and run-time changes of what it wants. */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { blockSize as pieceLength } from "../../src/domain/PiecePicker.js"
import { bits, makePicker as make, pickOrder } from "../support/picker.js"

describe("PiecePicker tiers", () => {
  it("starts higher tiers first, rarest first within a tier", () => {
    const picker = make(6, { tiers: Uint8Array.from([1, 3, 2, 3, 2, 1]) })
    for (const [peer, has] of [["a", [0, 1, 2, 3, 4, 5]], ["b", [1, 4]]] as const) {
      picker.addPeer(peer)
      picker.setBitfield(peer, bits(6, has))
    }
    // Tier 3: 3 (one holder) before 1 (two); tier 2: 2 before 4; then tier 1.
    expect(pickOrder(picker, "a")).toEqual([3, 1, 2, 4, 0, 5])
  })

  it("sequential mode goes in order within each tier", () => {
    const picker = make(6, { tiers: Uint8Array.from([1, 3, 2, 3, 2, 1]), sequential: true })
    picker.addPeer("a")
    picker.setBitfield("a", Bitfield.full(6))
    expect(pickOrder(picker, "a")).toEqual([1, 3, 2, 4, 0, 5])
  })

  it.prop(
    "every piece started is of the highest tier among the pieces the peer could start",
    [fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), fc.boolean()],
    ([tierList, has, sequential]) => {
      const count = tierList.length
      const tiers = Uint8Array.from(tierList)
      const picker = make(count, { tiers, sequential })
      picker.addPeer("a")
      picker.setBitfield("a", bits(count, tierList.flatMap((_, i) => (has[i] ? [i] : []))))
      const order = pickOrder(picker, "a")
      expect(new Set(order)).toEqual(new Set(tierList.flatMap((_, i) => (has[i] ? [i] : []))))
      for (let k = 1; k < order.length; k++) expect(tiers[order[k]!]!).toBeLessThanOrEqual(tiers[order[k - 1]!]!)
      if (sequential) for (let k = 1; k < order.length; k++) if (tiers[order[k]!] === tiers[order[k - 1]!]) expect(order[k]!).toBeGreaterThan(order[k - 1]!)
    }
  )
})

describe("PiecePicker.setWanted", () => {
  it("fetches what is newly wanted, keeps what it verified, and counts only wanted pieces", () => {
    const picker = make(6, { wanted: bits(6, [0, 1]) })
    picker.addPeer("a")
    picker.setBitfield("a", Bitfield.full(6))
    expect(pickOrder(picker, "a")).toEqual([0, 1])
    expect(picker.isComplete).toBe(true)
    picker.setWanted(bits(6, [1, 2, 5]), Uint8Array.from([0, 2, 1, 0, 0, 3]))
    expect(picker.piecesLeft).toBe(2)
    expect(picker.bytesWanted).toBe(3 * pieceLength)
    expect(picker.bytesLeft).toBe(2 * pieceLength)
    expect(picker.isInteresting("a")).toBe(true)
    expect(pickOrder(picker, "a")).toEqual([5, 2])
    expect(picker.isComplete).toBe(true)
  })

  it("a started piece no longer wanted does not hold up the wanted ones", () => {
    const picker = make(3)
    picker.addPeer("a")
    picker.setBitfield("a", Bitfield.full(3))
    const [first] = picker.pick("a", 1, 0)
    expect(first?.index).toBe(0)
    picker.setWanted(bits(3, [2]))
    // Piece 0 is still in flight; piece 2 is started beside it.
    expect(picker.pick("a", 1, 0).map((r) => r.index)).toEqual([2])
    picker.receive("a", 2, 0, new Uint8Array(pieceLength))
    picker.verified(2)
    expect(picker.isComplete).toBe(true)
  })
})
