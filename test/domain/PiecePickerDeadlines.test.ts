/** The picker's deadlines (streaming): due pieces first, in order, above tiers and rarest first. */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { blockSize } from "../../src/domain/PiecePicker.js"
import { bits, makePicker, pickOrder } from "../support/picker.js"

describe("PiecePicker deadlines", () => {
  it("fetches due pieces first, in deadline order, even above a higher tier", () => {
    const picker = makePicker(8, { tiers: Uint8Array.from([1, 1, 1, 1, 1, 3, 1, 1]) })
    picker.addPeer("a")
    picker.setBitfield("a", Bitfield.full(8))
    picker.setDeadlines([6, 2, 3])
    expect(pickOrder(picker, "a")).toEqual([6, 2, 3, 5, 0, 1, 4, 7])
  })

  it("a due piece already started by others comes before another started piece", () => {
    const picker = makePicker(4, {}, 4 * blockSize)
    for (const peer of ["a", "b"]) {
      picker.addPeer(peer)
      picker.setBitfield(peer, Bitfield.full(4))
    }
    expect(picker.pick("a", 1, 0)[0]?.index).toBe(0)
    expect(picker.pick("a", 1, 0)[0]?.index).toBe(0)
    picker.setDeadlines([0])
    // b has piece 0 due; its free blocks come first.
    expect(picker.pick("b", 2, 0).map((r) => [r.index, r.begin / blockSize])).toEqual([[0, 2], [0, 3]])
  })

  it("skips pieces not wanted, already verified, or that the peer lacks; counts stay those of the selection", () => {
    const picker = makePicker(6, { wanted: bits(6, [0, 1, 2, 3]), have: bits(6, [1]) })
    picker.addPeer("a")
    picker.setBitfield("a", bits(6, [0, 1, 3, 4, 5]))
    picker.setDeadlines([5, 1, 2, 3, -1, 99])
    expect(picker.bytesLeft).toBe(3 * blockSize)
    expect(pickOrder(picker, "a")).toEqual([3, 0])
    expect(picker.piecesLeft).toBe(1) // piece 2: nobody has it
  })

  it("releaseExcept hands back a peer's requests for other pieces (to cancel), keeping those of due pieces", () => {
    const picker = makePicker(4, {}, 2 * blockSize)
    for (const peer of ["a", "b"]) {
      picker.addPeer(peer)
      picker.setBitfield(peer, Bitfield.full(4))
    }
    expect(picker.pick("a", 6, 0).map((r) => r.index)).toEqual([0, 0, 1, 1, 2, 2])
    picker.setDeadlines([1, 3])
    const released = picker.releaseExcept("a", new Set([1, 3]))
    expect(released.map((r) => [r.index, r.begin / blockSize])).toEqual([[0, 0], [0, 1], [2, 0], [2, 1]])
    expect(picker.outstandingCount("a")).toBe(2)
    // The released blocks are free again: b takes the due piece 3 first, then them.
    expect(picker.pick("b", 6, 0).map((r) => r.index)).toEqual([3, 3, 0, 0, 2, 2])
    // A block still on its way from a is no longer taken from it.
    expect(picker.receive("a", 0, 0, new Uint8Array(blockSize)).accepted).toBe(false)
  })

  it.prop(
    "a peer's first new pieces are the due ones it can fetch, in deadline order; then the rest by tier",
    [
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 30 }),
      fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
      fc.uniqueArray(fc.nat(29), { maxLength: 12 })
    ],
    ([tierList, has, due]) => {
      const count = tierList.length
      const tiers = Uint8Array.from(tierList)
      const picker = makePicker(count, { tiers })
      const held = tierList.flatMap((_, i) => (has[i] ? [i] : []))
      picker.addPeer("a")
      picker.setBitfield("a", bits(count, held))
      picker.setDeadlines(due)
      const order = pickOrder(picker, "a")
      const fetchableDue = due.filter((i) => i < count && has[i])
      expect(order.slice(0, fetchableDue.length)).toEqual(fetchableDue)
      expect(new Set(order)).toEqual(new Set(held))
      const rest = order.slice(fetchableDue.length)
      for (let k = 1; k < rest.length; k++) expect(tiers[rest[k]!]!).toBeLessThanOrEqual(tiers[rest[k - 1]!]!)
    }
  )
})
