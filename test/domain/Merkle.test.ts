import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { createHash } from "node:crypto"
import * as Merkle from "../../src/domain/Merkle.js"
import { payloadBytes } from "../support/torrent.js"

const sha = (...parts: ReadonlyArray<Uint8Array>) => {
  const h = createHash("sha256")
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** The BEP 52 tree written out in full: leaves padded with zero hashes to a power of two, then pairs hashed up. */
const naiveRoot = (data: Uint8Array, minLeaves = 1): Uint8Array => {
  let row: Array<Uint8Array> = []
  for (let at = 0; at < data.length; at += 16384) row.push(sha(data.subarray(at, at + 16384)))
  let width = 1
  while (width < Math.max(row.length, minLeaves)) width *= 2
  while (row.length < width) row.push(new Uint8Array(32))
  while (row.length > 1) {
    const next: Array<Uint8Array> = []
    for (let i = 0; i < row.length; i += 2) next.push(sha(row[i]!, row[i + 1]!))
    row = next
  }
  return row[0]!
}

describe("Merkle", () => {
  it("a zero subtree's root is the full tree of zero leaves", () => {
    expect(Merkle.zeroRoot(1)).toEqual(new Uint8Array(32))
    expect(Merkle.zeroRoot(4)).toEqual(sha(sha(new Uint8Array(32), new Uint8Array(32)), sha(new Uint8Array(32), new Uint8Array(32))))
  })

  it("rootOf over leaf hashes is the fully padded tree's root", () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 * 16384 }), fc.integer({ min: 0, max: 3 }), (length, extra) => {
        const data = payloadBytes(length, length)
        const leaves = Merkle.leafHashes(data)
        const width = Merkle.nextPowerOfTwo(leaves.length) * 2 ** extra
        expect(Merkle.rootOf(leaves, width)).toEqual(naiveRoot(data, width))
      }),
      { numRuns: 30 }
    ))

  it("a file's pieces root, from its piece layer, is the root over all its leaves", () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 * 16384 }), fc.constantFrom(16384, 32768, 65536), (length, pieceLength) => {
        const data = payloadBytes(length, length + 7)
        const { piecesRoot, pieceLayer } = Merkle.fileHashes(data, pieceLength)
        expect(piecesRoot).toEqual(naiveRoot(data))
        const pieces = Math.ceil(length / pieceLength)
        expect(pieceLayer.length).toBe(pieces > 1 ? pieces : 0)
        pieceLayer.forEach((hash, i) =>
          expect(hash).toEqual(naiveRoot(data.subarray(i * pieceLength, (i + 1) * pieceLength), pieceLength / 16384)))
      }),
      { numRuns: 30 }
    ))

  it("a piece's leaf count: a whole piece's worth, or just enough for a file of one piece", () => {
    expect(Merkle.pieceLeafCount(100_000, 32768)).toBe(2)
    expect(Merkle.pieceLeafCount(32768, 32768)).toBe(2)
    expect(Merkle.pieceLeafCount(16385, 65536)).toBe(2)
    expect(Merkle.pieceLeafCount(3 * 16384, 262144)).toBe(4)
    expect(Merkle.pieceLeafCount(5, 262144)).toBe(1)
  })
})
