import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { admitted, moveInQueue, type QueuedTorrent } from "../../src/domain/TorrentQueue.js"

const torrents = fc
  .array(fc.record({ role: fc.constantFrom("download" as const, "seed" as const), running: fc.boolean() }), { maxLength: 30 })
  .map((ts): Array<QueuedTorrent> => ts.map((t, position) => ({ ...t, position })))
const limits = fc.record({ downloads: fc.nat(6), seeds: fc.nat(6) })

describe("TorrentQueue.admitted", () => {
  it("never admits more than the limits, and fills every slot it can", () =>
    fc.assert(
      fc.property(torrents, limits, (ts, l) => {
        const admit = admitted(ts, l)
        for (const [role, limit] of [["download", l.downloads], ["seed", l.seeds]] as const) {
          const ofRole = ts.filter((t) => t.role === role)
          expect(ofRole.filter((t) => admit.has(t.position)).length).toBe(Math.min(limit, ofRole.length))
        }
      })
    ))

  it("keeps running torrents within the limit rather than an earlier waiting one", () =>
    fc.assert(
      fc.property(torrents, limits, (ts, l) => {
        const admit = admitted(ts, l)
        for (const role of ["download", "seed"] as const) {
          const limit = role === "download" ? l.downloads : l.seeds
          const running = ts.filter((t) => t.role === role && t.running)
          // The first `limit` running ones (queue order) all stay.
          for (const t of running.slice(0, limit)) expect(admit.has(t.position)).toBe(true)
          // A waiting one is admitted only when every running one within the limit is.
          const waitingAdmitted = ts.some((t) => t.role === role && !t.running && admit.has(t.position))
          if (waitingAdmitted) expect(running.length).toBeLessThan(limit)
        }
      })
    ))

  it("gives free slots in queue order", () => {
    const ts: Array<QueuedTorrent> = [
      { position: 3, role: "download", running: false },
      { position: 1, role: "download", running: false },
      { position: 2, role: "download", running: true },
      { position: 4, role: "seed", running: false }
    ]
    expect([...admitted(ts, { downloads: 2, seeds: 0 })].sort()).toEqual([1, 2])
  })
})

const orderAndMoved = fc
  .uniqueArray(fc.nat(50), { maxLength: 20 })
  .chain((order) => fc.tuple(fc.constant(order), fc.subarray(order), fc.constantFrom("top" as const, "up" as const, "down" as const, "bottom" as const)))

describe("TorrentQueue.moveInQueue", () => {
  it.each([
    ["top", [3, 5], [3, 5, 1, 2, 4]],
    ["bottom", [1, 3], [2, 4, 5, 1, 3]],
    ["up", [2, 4], [2, 1, 4, 3, 5]],
    ["up", [1, 2, 4], [1, 2, 4, 3, 5]],
    ["down", [2, 4], [1, 3, 2, 5, 4]],
    ["down", [4, 5], [1, 2, 3, 4, 5]],
    ["up", [9], [1, 2, 3, 4, 5]]
  ] as const)("%s %j", (move, moved, expected) => {
    expect(moveInQueue([1, 2, 3, 4, 5], new Set(moved), move)).toEqual(expected)
  })

  it("is a permutation that keeps the moved torrents' order and the others' order", () =>
    fc.assert(
      fc.property(orderAndMoved, ([order, moved, move]) => {
        const set = new Set(moved)
        const next = moveInQueue(order, set, move)
        expect([...next].sort((a, b) => a - b)).toEqual([...order].sort((a, b) => a - b))
        expect(next.filter((id) => set.has(id))).toEqual(order.filter((id) => set.has(id)))
        expect(next.filter((id) => !set.has(id))).toEqual(order.filter((id) => !set.has(id)))
      })
    ))

  it("up and down move each torrent at most one place, in their direction", () =>
    fc.assert(
      fc.property(orderAndMoved, ([order, moved, move]) => {
        const next = moveInQueue(order, new Set(moved), move)
        for (const id of moved) {
          const shift = next.indexOf(id) - order.indexOf(id)
          if (move === "up") expect([-1, 0]).toContain(shift)
          if (move === "down") expect([0, 1]).toContain(shift)
        }
      })
    ))
})
