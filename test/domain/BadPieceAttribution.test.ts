import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { BadPieceAttribution } from "../../src/domain/BadPieceAttribution.js"
import { blockSize } from "../../src/domain/Wire.js"

// Pieces of three blocks, the last one short; the true bytes of piece i are derived from i.
const pieceLength = 2 * blockSize + 777
const blocks = 3
const truth = (index: number) => new Uint8Array(pieceLength).map((_, k) => (k * 7 + index * 13) & 0xff)

/** A copy of a piece: each block from its sender, a lie being the true block with one byte flipped. */
const copyOf = (index: number, senders: ReadonlyArray<string>, lies: ReadonlyArray<boolean>) => {
  const data = truth(index)
  lies.forEach((lie, b) => {
    if (lie) data[b * blockSize + (b * 31) % 100] ^= 0x5a
  })
  return { index, data, senders }
}

const honest = ["h0", "h1", "h2"]
const liars = ["l0", "l1", "l2"]

/** One copy arriving: a piece, and per block a sender and whether a liar lies about it. */
const arrival = fc.record({
  index: fc.nat(3),
  blocks: fc.array(fc.tuple(fc.constantFrom(...honest, ...liars), fc.boolean()), { minLength: blocks, maxLength: blocks })
})

type Arrival = typeof arrival extends fc.Arbitrary<infer A> ? A : never

/** Plays copies through the attribution: verified copies convict, failed ones are recorded. */
const play = (attribution: BadPieceAttribution, history: ReadonlyArray<Arrival>) => {
  const convicted = new Set<string>()
  /** Liars whose differing block is in a failed copy of each piece not yet verified. */
  const owed = new Map<number, Set<string>>()
  const due = new Set<string>()
  for (const { index, blocks: sent } of history) {
    const senders = sent.map(([peer]) => peer)
    const lies = sent.map(([peer, lie]) => lie && peer.startsWith("l"))
    const copy = copyOf(index, senders, lies)
    if (lies.includes(true)) {
      for (const peer of attribution.failed(copy)) convicted.add(peer)
      const set = owed.get(index) ?? new Set()
      lies.forEach((lie, b) => lie && set.add(senders[b]!))
      owed.set(index, set)
    } else {
      for (const peer of attribution.convict(index, copy.data)) convicted.add(peer)
      for (const peer of owed.get(index) ?? []) due.add(peer)
      owed.delete(index)
    }
  }
  return { convicted, due }
}

describe("BadPieceAttribution", () => {
  it.prop("never convicts an honest peer, whatever liars send", [fc.array(arrival, { maxLength: 40 }), fc.integer({ min: 1, max: 8 })], ([history, bound]) => {
    const { convicted } = play(new BadPieceAttribution(bound), history)
    for (const peer of honest) expect(convicted.has(peer)).toBe(false)
  })

  it.prop("convicts every liar whose differing block was in a copy of a piece that later verified", [fc.array(arrival, { maxLength: 40 })], ([history]) => {
    const { convicted, due } = play(new BadPieceAttribution(history.length + 1), history)
    for (const peer of due) expect(convicted.has(peer)).toBe(true)
  })

  it("convicts the lone sender of a failed piece at once, and records nothing for it", () => {
    const attribution = new BadPieceAttribution()
    expect([...attribution.failed(copyOf(0, ["l0", "l0", "l0"], [false, true, false]))]).toEqual(["l0"])
    expect(attribution.size).toBe(0)
  })

  it("convicts against every failed copy of a piece, then forgets them", () => {
    const attribution = new BadPieceAttribution()
    expect(attribution.failed(copyOf(1, ["h0", "l0", "h1"], [false, true, false])).size).toBe(0)
    expect(attribution.failed(copyOf(1, ["l1", "h0", "h1"], [true, false, false])).size).toBe(0)
    expect(attribution.failed(copyOf(2, ["l2", "h0", "h1"], [true, false, false])).size).toBe(0)
    expect(new Set(attribution.convict(1, truth(1)))).toEqual(new Set(["l0", "l1"]))
    expect(attribution.size).toBe(1)
    expect(attribution.convict(1, truth(1)).size).toBe(0)
  })

  it("keeps at most the bound, dropping the oldest copy", () => {
    const attribution = new BadPieceAttribution(2)
    for (const index of [0, 1, 2]) attribution.failed(copyOf(index, ["l0", "h0", "h1"], [true, false, false]))
    expect(attribution.size).toBe(2)
    expect(attribution.convict(0, truth(0)).size).toBe(0)
    expect([...attribution.convict(2, truth(2))]).toEqual(["l0"])
  })
})
