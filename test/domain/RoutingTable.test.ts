import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { commonPrefixBits, compareDistance, randomIdAtDepth, xorDistance } from "../../src/domain/NodeId.js"
import {
  bucketSize,
  decodeSavedTable,
  encodeSavedTable,
  nodeStatus,
  questionableAfterMillis,
  RoutingTable
} from "../../src/domain/RoutingTable.js"
import { seededRandom } from "../../src/domain/SeededRandom.js"

const id = fc.uint8Array({ minLength: 20, maxLength: 20 })
const bytesFrom = (seed: number) => {
  const random = seededRandom(seed)
  return (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256))
}
let port = 1
const nodeAt = (nodeId: Uint8Array) => ({ id: nodeId, address: { host: "10.0.0.1", port: (port++ % 65535) + 1 } })
const zero = new Uint8Array(20)
/** An id sharing exactly `bits` leading bits with the all-zero id. */
const atDepth = (bits: number, salt: number) => randomIdAtDepth(zero, bits, bytesFrom(salt))

describe("NodeId", () => {
  it("XOR distance: zero only to itself, symmetric, and ordering agrees with the bytes of the distance", () =>
    fc.assert(fc.property(id, id, id, (t, a, b) => {
      expect(xorDistance(a, b)).toEqual(xorDistance(b, a))
      expect(compareDistance(t, a, a)).toBe(0)
      const da = Buffer.from(xorDistance(t, a))
      const db = Buffer.from(xorDistance(t, b))
      expect(Math.sign(compareDistance(t, a, b))).toBe(Math.sign(Buffer.compare(da, db)))
    })))

  it("an id at a depth shares exactly that many leading bits", () =>
    fc.assert(fc.property(id, fc.integer({ min: 0, max: 159 }), fc.nat(), (self, bits, seed) => {
      expect(commonPrefixBits(self, randomIdAtDepth(self, bits, bytesFrom(seed)))).toBe(bits)
    })))
})

describe("RoutingTable", () => {
  it("never holds more than k nodes a bucket, nor our own id, whatever is inserted", () =>
    fc.assert(fc.property(id, fc.array(id, { maxLength: 300 }), (self, ids) => {
      const table = new RoutingTable(self, 0)
      table.insert(nodeAt(self), "answered", 0)
      for (const i of ids) table.insert(nodeAt(i), "answered", 0)
      expect(table.bucketSizes().every((n) => n <= bucketSize)).toBe(true)
      expect(table.get(self)).toBeUndefined()
      expect(table.size).toBeLessThanOrEqual(ids.length)
    })))

  it("splits only the bucket holding our id: far buckets stay full at 8, near nodes keep coming in", () => {
    const table = new RoutingTable(zero, 0)
    for (let i = 0; i < 20; i++) table.insert(nodeAt(atDepth(0, i)), "answered", 0)
    // The one bucket holds our id: full, it split, the far half kept its 8 and the rest were cached.
    expect(table.bucketSizes()).toEqual([8, 0])
    // Nodes at depths 1..3 split the last bucket each time it fills.
    for (let d = 1; d <= 3; d++) for (let i = 0; i < 8; i++) table.insert(nodeAt(atDepth(d, 100 * d + i)), "answered", 0)
    expect(table.bucketSizes()).toEqual([8, 8, 8, 8])
    expect(table.insert(nodeAt(atDepth(0, 999)), "answered", 0)._tag).toBe("Cached")
  })

  it("a full bucket caches a newcomer and names its least recently seen questionable node to ping", () => {
    const table = new RoutingTable(zero, 0)
    const olds = Array.from({ length: 8 }, (_, i) => nodeAt(atDepth(0, i)))
    olds.forEach((n, i) => table.insert(n, "answered", i))
    // A neighbour bucket keeps the far bucket from being the last one, so it cannot split.
    table.insert(nodeAt(atDepth(5, 77)), "answered", 0)
    const later = questionableAfterMillis + 10
    const newcomer = nodeAt(atDepth(0, 50))
    const result = table.insert(newcomer, "answered", later)
    expect(result._tag === "Cached" && result.ping?.id).toEqual(olds[0]!.id)
    // The pinged node fails to answer: questionable turns bad, the newcomer takes its place.
    table.failed(olds[0]!.id, later)
    expect(table.get(olds[0]!.id)).toBeUndefined()
    expect(table.get(newcomer.id)).toBeDefined()
  })

  it("good nodes turn questionable after 15 minutes and bad after two failures; bad ones give way", () => {
    const table = new RoutingTable(zero, 0)
    const n = nodeAt(atDepth(0, 1))
    table.insert(n, "answered", 0)
    expect(nodeStatus(table.get(n.id)!, questionableAfterMillis)).toBe("good")
    expect(nodeStatus(table.get(n.id)!, questionableAfterMillis + 1)).toBe("questionable")
    table.failed(n.id, 1)
    expect(nodeStatus(table.get(n.id)!, 1)).toBe("good")
    table.failed(n.id, 1)
    expect(nodeStatus(table.get(n.id)!, 1)).toBe("bad")
    expect(table.closest(n.id, 8, 1)).toEqual([])
  })

  it("a known id from another address, or another id at a known address, is ignored", () => {
    const table = new RoutingTable(zero, 0)
    const n = nodeAt(atDepth(0, 1))
    table.insert(n, "answered", 0)
    expect(table.insert({ id: n.id, address: { host: "10.9.9.9", port: 1 } }, "answered", 0)._tag).toBe("Ignored")
    expect(table.insert({ id: atDepth(0, 2), address: n.address }, "answered", 0)._tag).toBe("Ignored")
  })

  it("closest gives up to k nodes ordered by XOR distance to the target", () =>
    fc.assert(fc.property(id, id, fc.array(id, { maxLength: 200 }), (self, target, ids) => {
      const table = new RoutingTable(self, 0)
      for (const i of ids) table.insert(nodeAt(i), "answered", 0)
      const closest = table.closest(target, 8, 0)
      expect(closest.length).toBe(Math.min(8, table.size))
      for (let i = 1; i < closest.length; i++) expect(compareDistance(target, closest[i - 1]!.id, closest[i]!.id)).toBeLessThan(0)
      const farthest = closest.at(-1)
      if (farthest !== undefined) {
        for (const n of table.nodes()) {
          if (!closest.includes(n)) expect(compareDistance(target, n.id, farthest.id)).toBeGreaterThan(0)
        }
      }
    })))

  it("closest with answeredOnly leaves out nodes that only queried us", () => {
    const table = new RoutingTable(zero, 0)
    const asked = nodeAt(atDepth(0, 1))
    const answered = nodeAt(atDepth(0, 2))
    table.insert(asked, "queried", 0)
    table.insert(answered, "answered", 0)
    expect(table.closest(zero, 8, 0).length).toBe(2)
    expect(table.closest(zero, 8, 0, true).map((n) => n.id)).toEqual([answered.id])
  })

  it("stale buckets are listed for refresh until touched", () => {
    const table = new RoutingTable(zero, 0)
    expect(table.staleBuckets(questionableAfterMillis)).toEqual([0])
    table.touch(0, questionableAfterMillis)
    expect(table.staleBuckets(questionableAfterMillis + 1)).toEqual([])
  })

  it("a saved table round-trips; damaged bytes give undefined", () => {
    fc.assert(fc.property(id, fc.array(id, { maxLength: 40 }), (self, ids) => {
      const nodes = ids.map(nodeAt)
      expect(decodeSavedTable(encodeSavedTable({ id: self, nodes }))).toEqual({ id: self, nodes })
    }))
    expect(decodeSavedTable(new TextEncoder().encode("d2:id3:abce"))).toBeUndefined()
    expect(decodeSavedTable(new Uint8Array([1, 2, 3]))).toBeUndefined()
  })
})
