import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { log2, uncleCount } from "../../src/domain/HashRequest.js"
import { fileHashes, rootFromLayer } from "../../src/domain/Merkle.js"
import {
  answerRange,
  maxHashesPerRequest,
  pieceLayerHeight,
  pieceLayerRequests,
  treeHeight,
  upperTree,
  verifyAnswer
} from "../../src/domain/MerkleProof.js"
import { payloadBytes } from "../support/torrent.js"

const hash = fc.uint8Array({ minLength: 32, maxLength: 32 })

/** A file larger than one piece, as its piece length, its length and a piece layer of arbitrary hashes. */
const fileArb = fc
  .record({ pieceLength: fc.constantFrom(16384, 32768, 65536, 262144), pieces: fc.integer({ min: 2, max: 600 }) })
  .chain(({ pieceLength, pieces }) =>
    fc.record({
      pieceLength: fc.constant(pieceLength),
      length: fc.integer({ min: (pieces - 1) * pieceLength + 1, max: pieces * pieceLength }),
      layer: fc.array(hash, { minLength: pieces, maxLength: pieces })
    })
  )

const concat = (hashes: ReadonlyArray<Uint8Array>) => Uint8Array.from(Buffer.concat(hashes))

/** A file and a request its tree can answer, with the whole proof up to the root. */
const answerableArb = fileArb.chain((file) => {
  const tree = upperTree(file.layer, file.pieceLength)
  return fc.integer({ min: tree.pieceHeight, max: tree.height - 1 }).chain((baseLayer) => {
    const width = 2 ** (tree.height - baseLayer)
    return fc.integer({ min: 0, max: log2(Math.min(width, maxHashesPerRequest)) }).chain((k) =>
      fc.integer({ min: 0, max: width / 2 ** k - 1 }).map((slot) => ({
        file,
        tree,
        range: { piecesRoot: tree.layers.at(-1)![0]!, baseLayer, index: slot * 2 ** k, length: 2 ** k, proofLayers: tree.height - baseLayer - 1 }
      }))
    )
  })
})

const right = <A>(e: Either.Either<A, string>): A => {
  if (Either.isLeft(e)) throw new Error(e.left)
  return e.right
}

describe("MerkleProof", () => {
  it.prop("the tree above a piece layer ends in the file's pieces root, at the file's tree height", [fileArb], ([f]) => {
    const tree = upperTree(f.layer, f.pieceLength)
    expect(tree.layers.at(-1)).toEqual([rootFromLayer(f.layer, f.pieceLength)])
    expect(tree.height).toBe(treeHeight(f.length))
    expect(tree.pieceHeight).toBe(pieceLayerHeight(f.pieceLength))
  })

  it.prop("the piece layer requests, answered, verify and give back the whole layer", [fileArb], ([f]) => {
    const tree = upperTree(f.layer, f.pieceLength)
    const root = rootFromLayer(f.layer, f.pieceLength)
    const got = pieceLayerRequests(root, f.length, f.pieceLength).flatMap((r) => right(verifyAnswer(r, right(answerRange(tree, r)), treeHeight(f.length))))
    expect(got.slice(0, f.layer.length)).toEqual(f.layer)
  })

  it.prop("any answerable range verifies against the root", [answerableArb], ([{ file, range, tree }]) => {
    const base = right(verifyAnswer(range, right(answerRange(tree, range)), treeHeight(file.length)))
    expect(base).toEqual(tree.layers[range.baseLayer - tree.pieceHeight]!.slice(range.index, range.index + range.length))
  })

  it.prop("a tampered answer is refused", [answerableArb, fc.nat(), fc.integer({ min: 1, max: 255 })], ([{ file, range, tree }, at, xor]) => {
    const hashes = Uint8Array.from(right(answerRange(tree, range)))
    hashes[at % hashes.length]! ^= xor
    expect(Either.isLeft(verifyAnswer(range, hashes, treeHeight(file.length)))).toBe(true)
  })

  it.prop("an answer of another file's range, or at another index, is refused", [answerableArb, hash], ([{ file, range, tree }, other]) => {
    const hashes = right(answerRange(tree, range))
    const height = treeHeight(file.length)
    expect(Either.isLeft(verifyAnswer({ ...range, piecesRoot: other }, hashes, height))).toBe(true)
    const width = 2 ** (tree.height - range.baseLayer)
    fc.pre(width > range.length)
    const moved = { ...range, index: (range.index + range.length) % width }
    // A run identical to its neighbour (padding on both sides) proves both places: only other runs must fail.
    fc.pre(Buffer.compare(right(answerRange(tree, moved)), hashes) !== 0)
    expect(Either.isLeft(verifyAnswer(moved, hashes, height))).toBe(true)
  })

  it.prop("a proof that stops short of the root is not taken", [answerableArb], ([{ file, range, tree }]) => {
    // A run as wide as its subtree up to the root needs no uncles: there is nothing to leave out.
    fc.pre(uncleCount(range.length, range.proofLayers) > 0)
    const short = { ...range, proofLayers: range.proofLayers - 1 }
    expect(verifyAnswer(short, right(answerRange(tree, short)), treeHeight(file.length))).toEqual(Either.left(expect.stringMatching(/reaches layer/)))
  })

  it("rejects what it cannot answer: below the piece layer, misaligned, past the layer, proofs above the root, too many", () => {
    const pieceLength = 65536
    const layer = Array.from({ length: 10 }, (_, i) => new Uint8Array(32).fill(i))
    const tree = upperTree(layer, pieceLength)
    const ok = { piecesRoot: tree.layers.at(-1)![0]!, baseLayer: 2, index: 0, length: 4, proofLayers: 1 }
    expect(Either.isRight(answerRange(tree, ok))).toBe(true)
    const refused = (patch: Partial<typeof ok>, why: RegExp) => expect(answerRange(tree, { ...ok, ...patch })).toEqual(Either.left(expect.stringMatching(why)))
    refused({ baseLayer: 1 }, /below the piece layer/)
    refused({ baseLayer: 6 }, /not below the root/)
    refused({ index: 2 }, /not a multiple/)
    refused({ index: 16 }, /run past/)
    refused({ proofLayers: 4 }, /above the root/)
    refused({ length: 3 }, /power of two/)
    refused({ length: 16384 }, /power of two up to 8192/)
  })

  it("agrees with a tree hashed from real data: the layer from the bytes verifies under their pieces root", () => {
    const pieceLength = 32768
    const data = payloadBytes(pieceLength * 37 + 1234, 5)
    const { pieceLayer, piecesRoot } = fileHashes(data, pieceLength)
    const tree = upperTree(pieceLayer, pieceLength)
    const got = pieceLayerRequests(piecesRoot, data.length, pieceLength).flatMap((r) => right(verifyAnswer(r, right(answerRange(tree, r)), treeHeight(data.length))))
    expect(concat(got.slice(0, 38))).toEqual(concat(pieceLayer))
  })
})
