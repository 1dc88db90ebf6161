/**
 * The BEP 52 `file tree`: a dictionary of path components whose leaves, under the empty key, hold
 * a file's `length` and, for a non-empty file, its `pieces root`. Files come in the tree's key
 * order, and each starts on a piece boundary: the payload is laid out with padding after every
 * file that does not end on one, as libtorrent lays it out.
 */
import { Either } from "effect"
import * as Bencode from "./Bencode.js"
import { merkleHashLength } from "./Merkle.js"
import type { MetainfoRule, TorrentFile } from "./Metainfo.js"
import { sanitizeComponent } from "./TorrentPath.js"

/** A rule broken by a v2 info dict; Metainfo turns it into a MetainfoError. */
export interface MetainfoProblem {
  readonly reason: MetainfoRule
  readonly field: string
  readonly detail: string
}

type Checked<A> = Either.Either<A, MetainfoProblem>

export const problem = (reason: MetainfoRule, field: string, detail: string): Checked<never> =>
  Either.left({ reason, field, detail })

/** One file of the tree, in tree order; `path` is relative to the torrent's folder. */
export interface FileTreeEntry {
  readonly path: ReadonlyArray<string>
  readonly length: number
  /** 32 bytes; undefined for an empty file, which has no tree. */
  readonly piecesRoot: Uint8Array | undefined
}

const fileLeaf = (leaf: Bencode.Bencode, path: ReadonlyArray<string>, field: string): Checked<FileTreeEntry> => {
  if (!Bencode.isDict(leaf)) return problem("WrongType", field, "must be a dictionary")
  const length = Bencode.get(leaf, "length")
  if (!Bencode.isInt(length)) return problem(length === undefined ? "MissingField" : "WrongType", `${field}.length`, "must be an integer")
  if (length < 0n || length > BigInt(Number.MAX_SAFE_INTEGER)) return problem("OutOfRange", `${field}.length`, `${length} is out of range`)
  const root = Bencode.get(leaf, "pieces root")
  if (length === 0n) return Either.right({ path, length: 0, piecesRoot: undefined })
  if (!Bencode.isBytes(root)) return problem(root === undefined ? "MissingField" : "WrongType", `${field}.pieces root`, "must be a byte string")
  if (root.length !== merkleHashLength) {
    return problem("PieceHashes", `${field}.pieces root`, `is ${root.length} bytes, not ${merkleHashLength}`)
  }
  return Either.right({ path, length: Number(length), piecesRoot: new Uint8Array(root) })
}

/** `depth`: how many names lead here (some may have been dropped by sanitising, so `path` can be shorter). */
const walk = (node: Bencode.Bencode, path: ReadonlyArray<string>, depth: number, field: string, out: Array<FileTreeEntry>): Checked<void> =>
  Either.gen(function* () {
    if (!Bencode.isDict(node)) return yield* problem("WrongType", field, "must be a dictionary")
    if (node.size === 0) return yield* problem("MissingField", field, "is an empty folder")
    const leaf = Bencode.get(node, "")
    if (leaf !== undefined) {
      if (node.size !== 1) return yield* problem("Conflict", field, "is both a file and a folder")
      if (depth === 0) return yield* problem("UnsafePath", field, "is a file without a name")
      // Every name of it was dropped by sanitising (`..`, `.`): it still needs one, as in v1.
      out.push(yield* fileLeaf(leaf, path.length === 0 ? ["_"] : path, `${field}[""]`))
      return
    }
    for (const [key, child] of node) {
      const raw = Bencode.keyToBytes(key)
      const childField = `${field}[${JSON.stringify(Bencode.toText(raw))}]`
      // A v2 tree is new enough to be strict: a name that would climb, stay put or hold a path
      // separator is refused (libtorrent sanitises it; docs/v2.md). Other oddities are sanitised
      // as v1 names are.
      const name = Bencode.toText(raw)
      if (name === ".." || name === "." || name.includes("/") || name.includes("\\")) {
        return yield* problem("UnsafePath", childField, "is not a plain file or folder name (path traversal or a separator)")
      }
      const component = sanitizeComponent(raw)
      yield* walk(child, component === undefined ? path : [...path, component], depth + 1, childField, out)
    }
  })

/** The files of a `file tree`, in its order, names sanitised; a malformed leaf or an empty tree is a problem. */
export const parseFileTree = (tree: Bencode.Bencode, field = "info.file tree"): Checked<ReadonlyArray<FileTreeEntry>> =>
  Either.gen(function* () {
    const out: Array<FileTreeEntry> = []
    yield* walk(tree, [], 0, field, out)
    return out
  })

/** A single-file torrent's tree names one file at its top (libtorrent reads it so whatever the torrent's name). */
export const isSingleFile = (entries: ReadonlyArray<FileTreeEntry>): boolean => entries.length === 1 && entries[0]!.path.length === 1

/** A padding entry of `length` bytes at `offset` (named as libtorrent names its pad files). */
const padding = (length: number, offset: number): TorrentFile => ({ path: [".pad", String(length)], length, offset, padding: true })

/**
 * The payload layout of a v2-only torrent: the tree's files with a padding entry after each one
 * that does not end on a piece boundary, so that no piece spans two files.
 */
export const layoutFiles = (entries: ReadonlyArray<FileTreeEntry>, pieceLength: number): Checked<ReadonlyArray<TorrentFile>> => {
  const files: Array<TorrentFile> = []
  let offset = 0
  for (const entry of entries) {
    files.push({ path: entry.path, length: entry.length, offset })
    offset += entry.length
    const gap = (pieceLength - (offset % pieceLength)) % pieceLength
    if (gap > 0) {
      files.push(padding(gap, offset))
      offset += gap
    }
    if (!Number.isSafeInteger(offset)) return problem("OutOfRange", "info.file tree", "total length exceeds 2^53 - 1 bytes")
  }
  return Either.right(files)
}
