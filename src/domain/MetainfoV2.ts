/**
 * BEP 52 info dicts (`meta version` 2): a v2-only torrent, laid out from its `file tree`, or a
 * hybrid, whose v1 `files` must describe the same files at piece-aligned offsets. The v2 hash of
 * each piece comes from the top-level `piece layers` (or, for a file of one piece, its `pieces root`).
 */
import { Either } from "effect"
import * as Bencode from "./Bencode.js"
import { type FileTreeEntry, isSingleFile, layoutFiles, type MetainfoProblem, parseFileTree, problem } from "./FileTree.js"
import { merkleBlockSize, merkleHashLength, pieceLeafCount, pieceRoot, rootFromLayer, sha256 } from "./Merkle.js"
import { equalBytes, toHex } from "./Bytes.js"
import { type Info, maxPieceLength, type PieceV2 } from "./Metainfo.js"
import { isPadding } from "./Padding.js"
import { sanitizeComponent } from "./TorrentPath.js"

type Checked<A> = Either.Either<A, MetainfoProblem>

const v2PieceLength = (d: Bencode.BencodeDict): Checked<number> => {
  const v = Bencode.get(d, "piece length")
  if (!Bencode.isInt(v)) return problem(v === undefined ? "MissingField" : "WrongType", "info.piece length", "must be an integer")
  const n = Number(v)
  // BEP 52: a power of two, at least one 16 KiB block.
  if (n < merkleBlockSize || n > maxPieceLength || (n & (n - 1)) !== 0) {
    return problem("OutOfRange", "info.piece length", `${v} is not a power of two between 16 KiB and ${maxPieceLength / 1048576} MiB`)
  }
  return Either.right(n)
}

/**
 * A v2-only torrent's name, sanitised as v1 names are: a single file is named by its one tree entry
 * (as libtorrent reads it), a folder by `name`, or by the info hash when nothing of `name` is left.
 */
const v2Name = (d: Bencode.BencodeDict, entries: ReadonlyArray<FileTreeEntry>, infoHash: Uint8Array): Checked<string> => {
  if (isSingleFile(entries)) return Either.right(entries[0]!.path[0]!)
  const v = Bencode.get(d, "name")
  if (!Bencode.isBytes(v)) return problem(v === undefined ? "MissingField" : "WrongType", "info.name", "must be a byte string")
  return Either.right(sanitizeComponent(v) ?? toHex(infoHash.subarray(0, 20)))
}

/**
 * A hybrid's v1 files, checked against its tree: the same files in the same order, each non-empty
 * one on a piece boundary, with only padding between them. Returns the tree entry of each v1 file.
 */
const matchHybrid = (v1: Info, entries: ReadonlyArray<FileTreeEntry>): Checked<ReadonlyArray<FileTreeEntry | undefined>> => {
  const matched: Array<FileTreeEntry | undefined> = []
  const single = isSingleFile(entries)
  let next = 0
  for (const file of v1.files) {
    if (isPadding(file)) {
      matched.push(undefined)
      continue
    }
    const entry = entries[next++]
    const field = `info.files[${matched.length}]`
    const samePath = entry !== undefined && (v1.isMultiFile ? entry.path.join("/") === file.path.join("/") : single)
    if (entry === undefined || !samePath || entry.length !== file.length) {
      return problem("Conflict", field, `${JSON.stringify(file.path.join("/"))} is not the file tree's next file`)
    }
    if (file.length > 0 && file.offset % v1.pieceLength !== 0) return problem("Conflict", field, "does not start on a piece boundary")
    matched.push(entry)
  }
  if (next !== entries.length) return problem("Conflict", "info.file tree", `has ${entries.length} files, 'files' ${next}`)
  return Either.right(matched)
}

/** The piece layer of a file larger than one piece, checked against its root; undefined when absent. */
const pieceLayer = (layers: Bencode.BencodeDict | undefined, entry: FileTreeEntry, pieceLength: number): Checked<ReadonlyArray<Uint8Array> | undefined> => {
  const root = entry.piecesRoot!
  const field = `piece layers[${toHex(root)}]`
  const v = layers?.get(Bencode.bytesToKey(root))
  if (v === undefined) return Either.right(undefined)
  if (!Bencode.isBytes(v)) return problem("WrongType", field, "must be a byte string")
  const count = Math.ceil(entry.length / pieceLength)
  if (v.length !== count * merkleHashLength) {
    return problem("PieceLayer", field, `is ${v.length} bytes, but ${count} pieces need ${count * merkleHashLength}`)
  }
  const copy = new Uint8Array(v)
  const layer = Array.from({ length: count }, (_, i) => copy.subarray(i * merkleHashLength, (i + 1) * merkleHashLength))
  if (!equalBytes(rootFromLayer(layer, pieceLength), root)) return problem("PieceLayer", field, "does not hash to the file's pieces root")
  return Either.right(layer)
}

/** The v2 pieces of one file, in order; undefined hashes where the layer is unknown. */
const filePieces = (entry: FileTreeEntry, layer: ReadonlyArray<Uint8Array> | undefined, pieceLength: number): ReadonlyArray<PieceV2> => {
  const count = Math.ceil(entry.length / pieceLength)
  const leafCount = pieceLeafCount(entry.length, pieceLength)
  return Array.from({ length: count }, (_, i) => ({
    hash: count === 1 ? entry.piecesRoot : layer?.[i],
    dataLength: Math.min(pieceLength, entry.length - i * pieceLength),
    leafCount
  }))
}

/**
 * Parses a `meta version` 2 info dict. `v1` is the same dict read as v1 (a hybrid) or undefined
 * (v2-only); `layers` is the metainfo's top-level `piece layers`, undefined for a bare info dict.
 * A v2-only torrent must have every piece layer, since no other hash checks its pieces, unless
 * `layersLater` (a magnet's info dict, whose layers are to be fetched from peers: that Info only
 * says which are missing, and must not be downloaded).
 */
export const parseInfoV2 = (
  d: Bencode.BencodeDict,
  raw: Uint8Array,
  v1: Info | undefined,
  layers: Bencode.Bencode | undefined,
  layersLater = false
): Checked<Info> =>
  Either.gen(function* () {
    const version = Bencode.get(d, "meta version")
    if (!Bencode.isInt(version) || version !== 2n) return yield* problem("OutOfRange", "info.meta version", "only version 2 is known")
    const tree = Bencode.get(d, "file tree")
    if (tree === undefined) return yield* problem("MissingField", "info.file tree", "is missing")
    const entries = yield* parseFileTree(tree)
    const pieceLength = yield* v2PieceLength(d)
    if (layers !== undefined && !Bencode.isDict(layers)) return yield* problem("WrongType", "piece layers", "must be a dictionary")
    const infoHash = sha256(raw)
    const name = v1?.name ?? (yield* v2Name(d, entries, infoHash))
    const files = v1?.files ?? (yield* layoutFiles(entries, pieceLength))
    let nextEntry = 0
    const byFile = v1 === undefined ? files.map((f) => (f.padding === true ? undefined : entries[nextEntry++])) : yield* matchHybrid(v1, entries)
    const pieces: Array<PieceV2> = []
    for (const entry of byFile) {
      if (entry === undefined || entry.length === 0) continue
      const layer = entry.length > pieceLength ? yield* pieceLayer(layers, entry, pieceLength) : undefined
      if (layer === undefined && entry.length > pieceLength && v1 === undefined && !layersLater) {
        return yield* problem("MissingField", "piece layers", `has no layer for ${JSON.stringify(entry.path.join("/"))}, and a v2-only torrent needs it`)
      }
      pieces.push(...filePieces(entry, layer, pieceLength))
    }
    const last = files[files.length - 1]
    const totalLength = last === undefined ? 0 : last.offset + last.length
    if (totalLength === 0) return yield* problem("OutOfRange", "info.file tree", "holds no data")
    const pieceCount = Math.ceil(totalLength / pieceLength)
    if (pieces.length !== pieceCount) {
      return yield* problem("PieceCount", "info.file tree", `files make ${pieces.length} pieces, but ${totalLength} bytes make ${pieceCount}`)
    }
    const v2 = { infoHash, hybrid: v1 !== undefined, piecesRoots: byFile.map((e) => e?.piecesRoot), pieces }
    if (v1 !== undefined) return { ...v1, v2 }
    return {
      name,
      pieceLength,
      pieceHashes: [],
      pieceCount,
      files,
      isMultiFile: !isSingleFile(entries),
      totalLength,
      private: Bencode.get(d, "private") === 1n,
      infoHash: infoHash.slice(0, 20),
      raw,
      v2
    }
  })

/** Whether piece `index`'s bytes match its v2 hash (true when the torrent or the piece has none). */
export const matchesV2 = (info: Info, index: number, data: Uint8Array): boolean => {
  const piece = info.v2?.pieces[index]
  if (piece === undefined || piece.hash === undefined) return true
  for (let i = piece.dataLength; i < data.length; i++) if (data[i] !== 0) return false
  return equalBytes(pieceRoot(data.subarray(0, piece.dataLength), piece.leafCount), piece.hash)
}

/**
 * The 20-byte ids a peer may handshake with for this torrent: the info hash, and for a hybrid also
 * its v2 hash cut to 20 bytes (what v2-only peers of the same swarm send).
 */
export const swarmIds = (info: Info): ReadonlyArray<Uint8Array> =>
  info.v2?.hybrid === true ? [info.infoHash, info.v2.infoHash.subarray(0, 20)] : [info.infoHash]
