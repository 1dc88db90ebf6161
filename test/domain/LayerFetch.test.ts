import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { LayerFetch } from "../../src/domain/LayerFetch.js"
import { rootFromLayer } from "../../src/domain/Merkle.js"
import { answerRange, upperTree } from "../../src/domain/MerkleProof.js"
import type { FileLayer } from "../../src/domain/PieceLayers.js"
import { Message } from "../../src/domain/Wire.js"

const pieceLength = 16384
const hash = fc.uint8Array({ minLength: 32, maxLength: 32 })

/** Files larger than a piece, as their piece layers of arbitrary hashes (one over 512 pieces at times). */
const filesArb = fc.array(
  fc.integer({ min: 2, max: 700 }).chain((pieces) => fc.array(hash, { minLength: pieces, maxLength: pieces })),
  { minLength: 1, maxLength: 3 }
)

const missing = (layers: ReadonlyArray<ReadonlyArray<Uint8Array>>): ReadonlyArray<FileLayer> =>
  layers.map((layer) => ({ piecesRoot: rootFromLayer(layer, pieceLength), length: layer.length * pieceLength - 1, hashes: layer.map(() => undefined) }))

/** Answers every request `fetch` makes, `window` at a time, through `answer`; the first error, if any. */
const drive = (fetch: LayerFetch, window: number, answer: (r: ReturnType<LayerFetch["take"]>[number]) => Parameters<LayerFetch["receive"]>[0]) => {
  while (!fetch.isComplete) {
    const asked = fetch.take(window)
    expect(asked.length).toBeLessThanOrEqual(window)
    for (const r of asked) {
      const taken = fetch.receive(answer(r))
      if (Either.isLeft(taken)) return taken.left
    }
  }
  return undefined
}

describe("LayerFetch", () => {
  it.prop("honest answers give back every file's layer, by pieces root", [filesArb, fc.integer({ min: 1, max: 4 })], ([layers, window]) => {
    const files = missing(layers)
    const trees = new Map(layers.map((l, i) => [Bencode.bytesToKey(files[i]!.piecesRoot), upperTree(l, pieceLength)]))
    const fetch = new LayerFetch(files, pieceLength)
    const error = drive(fetch, window, (r) => Message.hashes(r, Either.getOrThrow(answerRange(trees.get(Bencode.bytesToKey(r.piecesRoot))!, r))))
    expect(error).toBeUndefined()
    expect([...fetch.result().values()]).toEqual(layers)
  })

  it.prop("a tampered answer is BadHashes, a reject is Rejected; an answer to nothing asked changes nothing", [filesArb, fc.nat(), hash], ([layers, at, other]) => {
    const files = missing(layers)
    const tree = upperTree(layers[0]!, pieceLength)
    const fetch = new LayerFetch(files, pieceLength)
    const [first] = fetch.take(1)
    expect(fetch.receive(Message.hashReject({ ...first!, piecesRoot: other }))).toEqual(Either.void)
    const hashes = Uint8Array.from(Either.getOrThrow(answerRange(tree, first!)))
    hashes[at % hashes.length]! ^= 0x80
    expect(fetch.receive(Message.hashes(first!, hashes))).toEqual(Either.left(expect.objectContaining({ reason: "BadHashes" })))
    expect(fetch.receive(Message.hashReject(first!))).toEqual(Either.left(expect.objectContaining({ reason: "Rejected" })))
    expect(fetch.isComplete).toBe(false)
  })
})
