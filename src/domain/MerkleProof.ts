/**
 * Parts of a file's BEP 52 merkle tree as `hashes` answers carry them: a run of one layer's hashes
 * and the uncle hashes that link their subtree to the file's `pieces root`. Answering from a
 * file's piece layer (every layer from there up can be rebuilt from it), checking an answer, and
 * the requests that fetch a whole piece layer.
 */
import { Either } from "effect"
import type { HashRange } from "./HashRequest.js"
import { isPowerOfTwo, log2, uncleCount } from "./HashRequest.js"
import { leavesPerPiece, merkleBlockSize, merkleHashLength, nextPowerOfTwo, parent, rootOf, zeroRoot } from "./Merkle.js"
import { equalBytes } from "./Bytes.js"

/** The most hashes one request may ask for (a base layer of 8192 pieces, 128 MiB of 16 KiB blocks). */
export const maxHashesPerRequest = 8192
/** Piece-layer hashes we ask for at once: a whole answer then fits the usual 16 KiB-block frame limit. */
export const layerChunk = 512

/** Layers from the leaves (0) to a file's root: its leaf count rounded up to a power of two, as a power. */
export const treeHeight = (fileLength: number): number => log2(nextPowerOfTwo(Math.ceil(fileLength / merkleBlockSize)))

/** The layer of the tree whose nodes each cover one piece. */
export const pieceLayerHeight = (pieceLength: number): number => log2(leavesPerPiece(pieceLength))

/** A file's tree from its piece layer up: `layers[0]` is the piece layer padded to a power of two, the last one the root alone. */
export interface UpperTree {
  readonly pieceHeight: number
  readonly height: number
  readonly layers: ReadonlyArray<ReadonlyArray<Uint8Array>>
}

/** The upper tree of a file larger than one piece, from its piece layer. */
export const upperTree = (pieceLayer: ReadonlyArray<Uint8Array>, pieceLength: number): UpperTree => {
  const pad = zeroRoot(leavesPerPiece(pieceLength))
  let row: Array<Uint8Array> = [...pieceLayer]
  while (row.length < nextPowerOfTwo(pieceLayer.length)) row.push(pad)
  const layers: Array<ReadonlyArray<Uint8Array>> = [row]
  while (row.length > 1) {
    const next: Array<Uint8Array> = []
    for (let i = 0; i < row.length; i += 2) next.push(parent(row[i]!, row[i + 1]!))
    layers.push((row = next))
  }
  const pieceHeight = pieceLayerHeight(pieceLength)
  return { pieceHeight, height: pieceHeight + layers.length - 1, layers }
}

/** Why a range cannot be answered from a file's tree, or undefined when it can. */
const unanswerable = (tree: UpperTree, r: HashRange): string | undefined => {
  if (r.baseLayer < tree.pieceHeight) return `layer ${r.baseLayer} lies below the piece layer (${tree.pieceHeight}), which is all we keep`
  if (r.baseLayer >= tree.height) return `layer ${r.baseLayer} is not below the root (layer ${tree.height})`
  if (!isPowerOfTwo(r.length) || r.length > maxHashesPerRequest) return `${r.length} hashes is not a power of two up to ${maxHashesPerRequest}`
  if (r.index % r.length !== 0) return `index ${r.index} is not a multiple of the length ${r.length}`
  if (r.index + r.length > 2 ** (tree.height - r.baseLayer)) return `hashes ${r.index}+${r.length} run past layer ${r.baseLayer}`
  if (r.proofLayers >= tree.height - r.baseLayer) return `${r.proofLayers} proof layers reach above the root`
  return undefined
}

/** The hash list of a `hashes` answer to `r` (base hashes, then uncles bottom up), or why there is none. */
export const answerRange = (tree: UpperTree, r: HashRange): Either.Either<Uint8Array, string> => {
  const problem = unanswerable(tree, r)
  if (problem !== undefined) return Either.left(problem)
  const base = tree.layers[r.baseLayer - tree.pieceHeight]!.slice(r.index, r.index + r.length)
  const uncles: Array<Uint8Array> = []
  for (let h = r.baseLayer + log2(r.length); h <= r.baseLayer + r.proofLayers; h++) {
    uncles.push(tree.layers[h - tree.pieceHeight]![(r.index >>> (h - r.baseLayer)) ^ 1]!)
  }
  const out = new Uint8Array((base.length + uncles.length) * merkleHashLength)
  ;[...base, ...uncles].forEach((hash, i) => out.set(hash, i * merkleHashLength))
  return Either.right(out)
}

const split = (hashes: Uint8Array): Array<Uint8Array> =>
  Array.from({ length: hashes.length / merkleHashLength }, (_, i) => hashes.subarray(i * merkleHashLength, (i + 1) * merkleHashLength))

/**
 * The base hashes of an answer, once its proof hashes up to the file's `pieces root` (`height`:
 * the file's `treeHeight`); a string says why not. `hashes` must hold the range's count (the codec
 * checks it).
 */
export const verifyAnswer = (r: HashRange, hashes: Uint8Array, height: number): Either.Either<ReadonlyArray<Uint8Array>, string> => {
  const all = split(hashes)
  const base = all.slice(0, r.length)
  const uncles = all.slice(r.length)
  if (uncles.length !== uncleCount(r.length, r.proofLayers) || base.length !== r.length) return Either.left("the answer's size does not match its range")
  const top = r.baseLayer + log2(r.length) + uncles.length
  if (top !== height) return Either.left(`the proof reaches layer ${top}, not the root's (${height})`)
  let node = rootOf(base, r.length)
  uncles.forEach((uncle, i) => {
    const position = r.index >>> (log2(r.length) + i)
    node = position % 2 === 0 ? parent(node, uncle) : parent(uncle, node)
  })
  return equalBytes(node, r.piecesRoot) ? Either.right(base) : Either.left("the hashes do not hash up to the file's pieces root")
}

/**
 * The requests that fetch the piece layer of a file larger than one piece: chunks of
 * `layerChunk` pieces (at least two hashes, as a run of one is answered inconsistently by some
 * peers), each with the proof up to the root.
 */
export const pieceLayerRequests = (piecesRoot: Uint8Array, fileLength: number, pieceLength: number): ReadonlyArray<HashRange> => {
  const pieces = Math.ceil(fileLength / pieceLength)
  const baseLayer = pieceLayerHeight(pieceLength)
  const proofLayers = treeHeight(fileLength) - baseLayer - 1
  const requests: Array<HashRange> = []
  for (let index = 0; index < pieces; index += layerChunk) {
    const length = Math.max(2, Math.min(layerChunk, nextPowerOfTwo(pieces - index)))
    requests.push({ piecesRoot, baseLayer, index, length, proofLayers })
  }
  return requests
}
