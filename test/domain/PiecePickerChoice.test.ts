/**
 * The picker stops its scan for a new piece at the first piece that reaches the best (tier,
 * availability) of all candidates (PieceCandidates). Over random histories of bitfields, haves,
 * departures, starts, verifications and failures, every new piece it starts must be the one a full
 * scan from the same random offset picks: highest tier, then rarest, first in scan order.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { blockSize } from "../../src/domain/PiecePicker.js"
import { bits, makePicker } from "../support/picker.js"

const pieceCount = 12
const others = ["a", "b", "c"] as const
const chooser = "p"

const actionArb = fc.oneof(
  fc.record({ _tag: fc.constant("Bitfield" as const), peer: fc.constantFrom(...others), has: fc.uniqueArray(fc.nat(pieceCount - 1)) }),
  fc.record({ _tag: fc.constant("Have" as const), peer: fc.constantFrom(...others), index: fc.nat(pieceCount - 1) }),
  fc.record({ _tag: fc.constant("Leave" as const), peer: fc.constantFrom(...others) }),
  fc.record({ _tag: fc.constant("Start" as const), peer: fc.constantFrom(...others) }),
  fc.record({ _tag: fc.constant("Finish" as const), k: fc.nat(), pass: fc.boolean() })
)

class Model {
  readonly peers = new Map<string, Set<number>>()
  readonly have = new Set<number>()
  /** Started pieces (requested or being verified), with the peer each was asked of. */
  readonly started = new Map<number, string>()
  constructor(readonly tiers: ReadonlyArray<number>, readonly wanted: ReadonlySet<number>, readonly sequential: boolean) {}

  availability(i: number) {
    let n = 0
    for (const has of this.peers.values()) if (has.has(i)) n++
    return n
  }
  startable(i: number, has: ReadonlySet<number>) {
    return has.has(i) && this.wanted.has(i) && !this.have.has(i) && !this.started.has(i)
  }
  /** The full scan the picker's early stop must agree with (random() is 0.5 in these pickers). */
  expected(has: ReadonlySet<number>): number | undefined {
    let best: number | undefined
    let bestTier = -1
    let bestAvailability = Infinity
    const offset = this.sequential ? 0 : Math.floor(0.5 * pieceCount)
    for (let k = 0; k < pieceCount; k++) {
      const i = (offset + k) % pieceCount
      const better = this.tiers[i]! > bestTier || (!this.sequential && this.tiers[i] === bestTier && this.availability(i) < bestAvailability)
      if (better && this.startable(i, has)) [best, bestTier, bestAvailability] = [i, this.tiers[i]!, this.availability(i)]
    }
    return best
  }
}

const layoutArb = fc.record({
  tiers: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: pieceCount, maxLength: pieceCount }),
  wanted: fc.uniqueArray(fc.nat(pieceCount - 1), { minLength: 1 }),
  have: fc.uniqueArray(fc.nat(pieceCount - 1)),
  sequential: fc.boolean(),
  chooserHas: fc.uniqueArray(fc.nat(pieceCount - 1), { minLength: 1 })
})

describe("PiecePicker's choice of a new piece", () => {
  it.prop("equals a full scan's: highest tier, then rarest, first from the random offset", [layoutArb, fc.array(actionArb, { maxLength: 60 })], ([layout, actions]) => {
    const picker = makePicker(pieceCount, {
      tiers: Uint8Array.from(layout.tiers),
      wanted: bits(pieceCount, layout.wanted),
      have: bits(pieceCount, layout.have),
      sequential: layout.sequential,
      random: () => 0.5
    })
    const model = new Model(layout.tiers, new Set(layout.wanted), layout.sequential)
    for (const i of layout.have) model.have.add(i)
    const join = (peer: string, has: Iterable<number>) => {
      if (!model.peers.has(peer)) picker.addPeer(peer)
      picker.setBitfield(peer, bits(pieceCount, has))
      model.peers.set(peer, new Set(has))
    }
    join(chooser, layout.chooserHas)
    /** One new piece for `peer`: one-block pieces are fully requested once started, so each pick starts one. */
    const start = (peer: string) => {
      const has = model.peers.get(peer)
      if (has === undefined) return
      const expected = model.expected(has)
      const [request] = picker.pick(peer, 1, 0)
      if (expected === undefined) {
        // Nothing to start: at most an endgame copy of a block another peer was asked for.
        if (request !== undefined) expect(model.started.has(request.index) && model.started.get(request.index) !== peer).toBe(true)
        return
      }
      expect(request?.index).toBe(expected)
      model.started.set(expected, peer)
    }
    for (const action of actions) {
      switch (action._tag) {
        case "Bitfield":
          join(action.peer, action.has)
          break
        case "Have":
          if (model.peers.has(action.peer)) {
            picker.addHave(action.peer, action.index)
            model.peers.get(action.peer)!.add(action.index)
          }
          break
        case "Leave":
          // A peer with started pieces stays: leaving hands their blocks back, and the next pick
          // would take those rather than start a new piece.
          if ([...model.started.values()].includes(action.peer)) break
          picker.removePeer(action.peer)
          model.peers.delete(action.peer)
          break
        case "Start":
          start(action.peer)
          break
        case "Finish": {
          const started = [...model.started]
          if (started.length === 0) break
          const [index, peer] = started[action.k % started.length]!
          picker.receive(peer, index, 0, new Uint8Array(blockSize))
          if (action.pass) picker.verified(index)
          else picker.failed(index, { parole: false })
          model.started.delete(index)
          if (action.pass) model.have.add(index)
          break
        }
      }
      start(chooser)
    }
  })
})
