import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { admitted, type QueuedTorrent } from "../../src/domain/TorrentQueue.js"

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
