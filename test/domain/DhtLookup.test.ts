import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { DhtLookup } from "../../src/domain/DhtLookup.js"
import { compareDistance } from "../../src/domain/NodeId.js"
import { PeerStore } from "../../src/domain/PeerStore.js"

const id = fc.uint8Array({ minLength: 20, maxLength: 20 })
const nodes = fc.uniqueArray(id, { maxLength: 300, selector: (i) => Buffer.from(i).toString("hex") })
  .map((ids) => ids.map((i, n) => ({ id: i, address: { host: "10.0.0.1", port: n + 1 } })))

describe("DhtLookup", () => {
  it("keeps at most α in flight, at most maxQueries in all, and a bounded candidate list, closest first", () =>
    fc.assert(fc.property(id, nodes, fc.array(fc.boolean(), { maxLength: 400 }), (target, all, answers) => {
      const lookup = new DhtLookup(target, { maxQueries: 40 })
      lookup.add(all.slice(0, 10))
      let given = 10
      let step = 0
      while (!lookup.done && step < 1000) {
        const sent = lookup.next()
        expect(lookup.inFlight).toBeLessThanOrEqual(3)
        if (sent.length === 0 && lookup.inFlight === 0) break
        for (const n of sent) {
          if (answers[step++ % Math.max(1, answers.length)] ?? true) {
            lookup.answered(n.id, { nodes: all.slice(given, given + 8) })
            given += 8
          } else {
            lookup.failed(n.id)
          }
        }
      }
      expect(lookup.done).toBe(true)
      expect(lookup.queries).toBeLessThanOrEqual(40)
      const closest = lookup.closestAnswered()
      expect(closest.length).toBeLessThanOrEqual(8)
      for (let i = 1; i < closest.length; i++) expect(compareDistance(target, closest[i - 1]!.node.id, closest[i]!.node.id)).toBeLessThan(0)
    })))

  it("ends when the k closest candidates have all answered", () => {
    const target = new Uint8Array(20)
    const lookup = new DhtLookup(target, { k: 2, alpha: 2 })
    const near = (b: number) => ({ id: Uint8Array.of(...new Array(19).fill(0), b), address: { host: "10.0.0.1", port: b } })
    lookup.add([near(5), near(9)])
    const first = lookup.next()
    expect(first.map((n) => n.address.port)).toEqual([5, 9])
    lookup.answered(first[0]!.id, { nodes: [near(1)], values: [{ host: "10.1.1.1", port: 1 }], token: Uint8Array.of(7) })
    expect(lookup.next().map((n) => n.address.port)).toEqual([1])
    lookup.failed(first[1]!.id)
    lookup.answered(near(1).id, {})
    expect(lookup.done).toBe(true)
    expect(lookup.closestAnswered().map((a) => [a.node.address.port, a.token?.[0]])).toEqual([[1, undefined], [5, 7]])
    expect(lookup.peers).toEqual([{ host: "10.1.1.1", port: 1 }])
    expect(lookup.hops).toBe(1)
  })
})

describe("PeerStore", () => {
  it("stays within its hash and per-hash bounds under any announces", () =>
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(30), fc.nat(50)), { maxLength: 500 }), (announces) => {
      const store = new PeerStore({ maxHashes: 10, maxPeersPerHash: 5 })
      for (const [h, p] of announces) store.add(Uint8Array.of(h), { host: "10.0.0.1", port: p + 1 }, 0)
      expect(store.hashCount).toBeLessThanOrEqual(10)
      expect(store.peerCount).toBeLessThanOrEqual(50)
      const last = announces.at(-1)
      if (last !== undefined) expect(store.get(Uint8Array.of(last[0]), 0)[0]).toEqual({ host: "10.0.0.1", port: last[1] + 1 })
    })))

  it("expires announces after the ttl", () => {
    const store = new PeerStore({ ttlMillis: 1000 })
    store.add(Uint8Array.of(1), { host: "10.0.0.1", port: 1 }, 0)
    expect(store.get(Uint8Array.of(1), 999)).toHaveLength(1)
    expect(store.get(Uint8Array.of(1), 1000)).toHaveLength(0)
    store.expire(1000)
    expect(store.hashCount).toBe(0)
  })
})
