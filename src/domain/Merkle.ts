/**
 * BEP 52 merkle trees: SHA-256 over 16 KiB blocks, a branching factor of 2, and leaves beyond the
 * end of a file set to zero. A file's `pieces root` is the root of its whole tree; its piece layer
 * is the row of the tree whose nodes each cover one piece.
 */
import { createHash } from "node:crypto"

/** Every leaf of a v2 tree covers this many bytes (the last one of a file may be shorter). */
export const merkleBlockSize = 16 * 1024
/** Length of a node hash (SHA-256). */
export const merkleHashLength = 32

export const sha256 = (data: Uint8Array): Uint8Array => {
  const d = createHash("sha256").update(data).digest()
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}

/** A node's hash from its two children. */
export const parent = (left: Uint8Array, right: Uint8Array): Uint8Array => {
  const d = createHash("sha256").update(left).update(right).digest()
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}

/** The smallest power of two not below `n` (1 for n <= 1). */
export const nextPowerOfTwo = (n: number): number => {
  let p = 1
  while (p < n) p *= 2
  return p
}

const zeroLeaf: Uint8Array = new Uint8Array(merkleHashLength)

/** Root of a tree of `leafCount` zero leaves (`leafCount` a power of two): the padding of upper layers. */
export const zeroRoot = (leafCount: number): Uint8Array => {
  let node = zeroLeaf
  for (let width = 1; width < leafCount; width *= 2) node = parent(node, node)
  return node
}

/**
 * Root over `nodes` padded with `pad` to `width` nodes (`width` a power of two, at least
 * `nodes.length`); `pad` is the root of a zero subtree of the nodes' height.
 */
export const rootOf = (nodes: ReadonlyArray<Uint8Array>, width: number, pad: Uint8Array = zeroLeaf): Uint8Array => {
  let row: ReadonlyArray<Uint8Array> = nodes
  let padding = pad
  for (let w = width; w > 1; w /= 2) {
    const next: Array<Uint8Array> = []
    for (let i = 0; i < w; i += 2) {
      if (i >= row.length) break
      next.push(parent(row[i]!, row[i + 1] ?? padding))
    }
    row = next
    padding = parent(padding, padding)
  }
  return row[0] ?? padding
}

/** The leaf hashes of `data`: one per 16 KiB block, the last block possibly short. */
export const leafHashes = (data: Uint8Array): Array<Uint8Array> => {
  const leaves: Array<Uint8Array> = []
  for (let at = 0; at < data.length; at += merkleBlockSize) leaves.push(sha256(data.subarray(at, at + merkleBlockSize)))
  return leaves
}

/** Leaves under one node of a file's piece layer. */
export const leavesPerPiece = (pieceLength: number): number => pieceLength / merkleBlockSize

/**
 * How many leaves the hash of one piece covers: a whole piece's worth, except for a file of at
 * most one piece, whose only "piece hash" is its `pieces root` (a tree just wide enough for it).
 */
export const pieceLeafCount = (fileLength: number, pieceLength: number): number =>
  fileLength > pieceLength ? leavesPerPiece(pieceLength) : nextPowerOfTwo(Math.ceil(fileLength / merkleBlockSize))

/** The v2 hash of one piece: `data` is the file's bytes in it (no padding). */
export const pieceRoot = (data: Uint8Array, leafCount: number): Uint8Array => rootOf(leafHashes(data), leafCount)

/** A file's `pieces root` from its piece layer (files larger than one piece). */
export const rootFromLayer = (layer: ReadonlyArray<Uint8Array>, pieceLength: number): Uint8Array =>
  rootOf(layer, nextPowerOfTwo(layer.length), zeroRoot(leavesPerPiece(pieceLength)))

export interface FileHashes {
  readonly piecesRoot: Uint8Array
  /** One hash a piece; empty for a file of at most one piece (BEP 52 lists no layer for it). */
  readonly pieceLayer: ReadonlyArray<Uint8Array>
}

/**
 * A file's `pieces root` and piece layer from its bytes fed in order, in chunks of any size; it
 * holds one block and the layer, never the file.
 */
export class FileHasherV2 {
  private readonly block = new Uint8Array(merkleBlockSize)
  private inBlock = 0
  private leaves: Array<Uint8Array> = []
  private readonly layer: Array<Uint8Array> = []
  private readonly perPiece: number

  constructor(private readonly pieceLength: number) {
    this.perPiece = leavesPerPiece(pieceLength)
  }

  update(data: Uint8Array): void {
    for (let at = 0; at < data.length;) {
      const take = Math.min(merkleBlockSize - this.inBlock, data.length - at)
      this.block.set(data.subarray(at, at + take), this.inBlock)
      this.inBlock += take
      at += take
      if (this.inBlock === merkleBlockSize) this.endBlock()
    }
  }

  private endBlock(): void {
    this.leaves.push(sha256(this.block.subarray(0, this.inBlock)))
    this.inBlock = 0
    if (this.leaves.length === this.perPiece) {
      this.layer.push(rootOf(this.leaves, this.perPiece))
      this.leaves = []
    }
  }

  /** The hashes of what was fed (a non-empty file). */
  digest(): FileHashes {
    if (this.inBlock > 0) this.endBlock()
    if (this.layer.length === 0) return { piecesRoot: rootOf(this.leaves, nextPowerOfTwo(this.leaves.length)), pieceLayer: [] }
    if (this.leaves.length > 0) this.layer.push(rootOf(this.leaves, this.perPiece))
    if (this.layer.length === 1) return { piecesRoot: this.layer[0]!, pieceLayer: [] }
    return { piecesRoot: rootFromLayer(this.layer, this.pieceLength), pieceLayer: this.layer }
  }
}

/** The `pieces root` and piece layer of a non-empty file's bytes. */
export const fileHashes = (data: Uint8Array, pieceLength: number): FileHashes => {
  const hasher = new FileHasherV2(pieceLength)
  hasher.update(data)
  return hasher.digest()
}
