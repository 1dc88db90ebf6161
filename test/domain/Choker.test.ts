import { describe, expect, it } from "@effect/vitest"
import { type ChokeCandidate, chokeRound, initialChokerState } from "../../src/domain/Choker.js"

const peer = (name: string, rate: number, interested = true): ChokeCandidate => ({ peer: name, rate, interested })

describe("Choker", () => {
  it("gives the regular slots to the fastest interested peers, plus one optimistic unchoke", () => {
    const candidates = [peer("a", 10), peer("b", 50), peer("c", 30), peer("d", 99, false), peer("e", 1)]
    const { unchoked } = chokeRound(initialChokerState, candidates, 2, () => 0)
    // b and c by rate; d is not interested; the optimistic slot goes to one of a, e.
    expect(unchoked.has("b") && unchoked.has("c")).toBe(true)
    expect(unchoked.has("d")).toBe(false)
    expect(unchoked.size).toBe(3)
  })

  it("keeps the optimistic peer for three rounds, then rotates it", () => {
    const candidates = [peer("fast", 100), peer("x", 0), peer("y", 0)]
    let state = initialChokerState
    const picks: Array<string | undefined> = []
    let draw = 0
    for (let round = 0; round < 6; round++) {
      const decision = chokeRound(state, candidates, 1, () => (draw++ % 2 === 0 ? 0 : 0.99))
      state = decision.state
      picks.push(state.optimistic)
    }
    expect(picks.slice(0, 3)).toEqual(["x", "x", "x"])
    expect(picks.slice(3, 6)).toEqual(["y", "y", "y"])
  })

  it("drops an optimistic peer that lost interest", () => {
    const first = chokeRound(initialChokerState, [peer("a", 5), peer("b", 1)], 1, () => 0)
    expect(first.state.optimistic).toBe("b")
    const second = chokeRound(first.state, [peer("a", 5), peer("b", 1, false)], 1, () => 0)
    expect(second.state.optimistic).toBeUndefined()
    expect([...second.unchoked]).toEqual(["a"])
  })
})
