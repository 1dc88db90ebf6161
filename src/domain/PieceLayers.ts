/**
 * A v2 torrent's piece layers (BEP 52) as the Info holds them, one hash a piece in `v2.pieces`:
 * per file, to serve them to peers (`makeHashServer`), to write them as a metainfo's `piece
 * layers`, and to tell which a magnet's info dict still lacks.
 */
import { Either } from "effect"
import * as Bencode from "./Bencode.js"
import { concatBytes } from "./Bytes.js"
import type { HashRange } from "./HashRequest.js"
import { nextPowerOfTwo } from "./Merkle.js"
import { answerRange, maxHashesPerRequest, type UpperTree, upperTree } from "./MerkleProof.js"
import type { Info } from "./Metainfo.js"
import { isPadding } from "./Padding.js"

/** One file's share of the v2 pieces. */
export interface FileLayer {
  readonly piecesRoot: Uint8Array
  readonly length: number
  /** Its pieces' hashes, undefined where unknown. */
  readonly hashes: ReadonlyArray<Uint8Array | undefined>
}

/** The files of a v2 or hybrid torrent larger than one piece (only they have a piece layer), in order. */
export const fileLayers = (info: Info): ReadonlyArray<FileLayer> => {
  const v2 = info.v2
  if (v2 === undefined) return []
  const out: Array<FileLayer> = []
  let piece = 0
  info.files.forEach((file, i) => {
    const piecesRoot = v2.piecesRoots[i]
    if (isPadding(file) || file.length === 0 || piecesRoot === undefined) return
    const count = Math.ceil(file.length / info.pieceLength)
    if (count > 1) out.push({ piecesRoot, length: file.length, hashes: v2.pieces.slice(piece, piece + count).map((p) => p.hash) })
    piece += count
  })
  return out
}

const isKnown = (layer: FileLayer): layer is FileLayer & { readonly hashes: ReadonlyArray<Uint8Array> } => layer.hashes.every((h) => h !== undefined)

/** The files whose piece layer is not known (a magnet's info dict before the layers came). */
export const missingLayers = (info: Info): ReadonlyArray<FileLayer> => fileLayers(info).filter((l) => !isKnown(l))

/** The piece layers known, by pieces root (`Bencode.bytesToKey`). */
export const knownLayers = (info: Info): ReadonlyMap<string, ReadonlyArray<Uint8Array>> =>
  new Map(fileLayers(info).filter(isKnown).map((l) => [Bencode.bytesToKey(l.piecesRoot), l.hashes]))

/** A metainfo's `piece layers` dictionary: each root to its layer's hashes, concatenated. */
export const pieceLayersDict = (layers: ReadonlyMap<string, ReadonlyArray<Uint8Array>>): Bencode.BencodeDict =>
  new Map([...layers].map(([root, hashes]) => [root, concatBytes(hashes)]))

/** Answers peers' hash requests from a torrent's known piece layers: the hash list, or why not. */
export type HashServer = (request: HashRange) => Either.Either<Uint8Array, string>

/**
 * The hash server of a torrent. A file's tree above its piece layer is built at its first request
 * and kept; files of one piece, and files whose layer we lack, are refused.
 */
export const makeHashServer = (info: Info): HashServer => {
  const layers = knownLayers(info)
  const trees = new Map<string, UpperTree>()
  return (request) => {
    const key = Bencode.bytesToKey(request.piecesRoot)
    const layer = layers.get(key)
    if (layer === undefined) return Either.left("no piece layer of that pieces root")
    let tree = trees.get(key)
    if (tree === undefined) trees.set(key, (tree = upperTree(layer, info.pieceLength)))
    return answerRange(tree, request)
  }
}

/**
 * Hashes one peer may have from us: an honest one asks for each tree above a piece layer (under
 * twice the layer's padded width) about once; this allows it twice, plus one largest answer.
 */
export const hashBudget = (info: Info): number => {
  let total = 0
  for (const layer of knownLayers(info).values()) total += nextPowerOfTwo(layer.length)
  return 4 * total + maxHashesPerRequest
}
