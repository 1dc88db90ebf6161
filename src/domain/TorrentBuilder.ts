/**
 * Building `.torrent` files (BEP 3 metainfo, BEP 12 announce-list, BEP 27 private flag), pure: the
 * caller lists the content and supplies the piece hashes; src/programs/CreateTorrent.ts reads and
 * hashes the data. Output is canonical bencode with no creation date unless one is asked for, so
 * the same input always gives the same bytes and the same info hash.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { concatBytes } from "./Bytes.js"
import { type FileHashes, merkleHashLength, rootFromLayer } from "./Merkle.js"
import { maxPieceLength, type Metainfo, parseTorrent, pathComponentProblem } from "./Metainfo.js"

export const createdBy = "effect-bittorrent 0.1.0"

export const minPieceLength = 16 * 1024
/** The parser's bound: downloaders hold a whole piece in memory while it is verified. */
export { maxPieceLength }

const maxDefaultPieceLength = 16 * 1024 * 1024
const targetPieceCount = 2000

/**
 * The piece length when none is given: the smallest power of two that cuts the payload into at most
 * 2000 pieces (hence 1001 to 2000 of them from 32 MiB up), kept between 16 KiB and 16 MiB.
 */
export const defaultPieceLength = (totalBytes: number): number => {
  let length = minPieceLength
  while (length < maxDefaultPieceLength && length * targetPieceCount < totalBytes) length *= 2
  return length
}

export interface FileEntry {
  /** Relative to the torrent's folder (`name`), one component per folder level. */
  readonly path: ReadonlyArray<string>
  readonly length: number
}

export type TorrentContent =
  | { readonly _tag: "SingleFile"; readonly length: number }
  /** Files in torrent order: their data is concatenated in this order to cut pieces. */
  | { readonly _tag: "MultiFile"; readonly files: ReadonlyArray<FileEntry> }

export interface TorrentSpec {
  /** The file name of a single-file torrent, the folder name of a multi-file one. */
  readonly name: string
  readonly content: TorrentContent
  readonly pieceLength: number
  /** The first URL becomes `announce`; with several, `announce-list` gets one tier per URL, in order. */
  readonly announce?: ReadonlyArray<string>
  readonly private?: boolean
  readonly comment?: string
  /** Defaults to `createdBy`. */
  readonly createdBy?: string
  /** Unix seconds; absent by default, so that building twice gives identical bytes. */
  readonly creationDate?: number
  /** BEP 52: `v2` (v2 only) or `hybrid` (v1 and v2, files padded to piece boundaries); `v1` by default. */
  readonly version?: TorrentVersion
}

export type TorrentVersion = "v1" | "v2" | "hybrid"

export type TorrentBuildRule = "PieceLength" | "Empty" | "UnsafeName" | "AnnounceUrl" | "PieceHashes" | "Invalid"

/** A torrent that cannot be built from the given content and options. */
export class TorrentBuildError extends Data.TaggedError("TorrentBuildError")<{
  readonly reason: TorrentBuildRule
  readonly detail: string
}> {
  override get message() {
    return `cannot create the torrent: ${this.detail}`
  }
}

type Built<A> = Either.Either<A, TorrentBuildError>

const fail = (reason: TorrentBuildRule, detail: string): Built<never> =>
  Either.left(new TorrentBuildError({ reason, detail }))

const isPowerOfTwo = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0

/** A piece length must be a power of two from 16 KiB to 64 MiB. */
export const validatePieceLength = (pieceLength: number): Built<number> =>
  isPowerOfTwo(pieceLength) && pieceLength >= minPieceLength && pieceLength <= maxPieceLength
    ? Either.right(pieceLength)
    : fail("PieceLength", `piece length ${pieceLength} is not a power of two from ${minPieceLength} (16 KiB) to ${maxPieceLength} (64 MiB)`)

export const totalLength = (content: TorrentContent): number =>
  content._tag === "SingleFile" ? content.length : content.files.reduce((sum, f) => sum + f.length, 0)

/** The content's files with their paths (a single file's path is empty). */
const contentFiles = (content: TorrentContent): ReadonlyArray<FileEntry> =>
  content._tag === "SingleFile" ? [{ path: [], length: content.length }] : content.files

/** How many pieces: with v2, every file starts a piece of its own. */
export const pieceCount = (spec: TorrentSpec): number =>
  (spec.version ?? "v1") === "v1"
    ? Math.ceil(totalLength(spec.content) / spec.pieceLength)
    : contentFiles(spec.content).reduce((sum, f) => sum + Math.ceil(f.length / spec.pieceLength), 0)

/** How many 20-byte SHA-1 hashes `buildTorrent` expects (none for v2 only). */
export const v1HashCount = (spec: TorrentSpec): number => (spec.version === "v2" ? 0 : pieceCount(spec))

const isTrackerUrl = (url: string): boolean => URL.canParse(url) && /^(https?|udp):$/.test(new URL(url).protocol)

const checkLength = (length: number, what: string): Built<void> =>
  Number.isSafeInteger(length) && length >= 0 ? Either.void : fail("Invalid", `${what} has length ${length}`)

/** Two files on one path, or a file where another needs a folder: a reader would have to rename one. */
const checkDistinctPaths = (files: ReadonlyArray<{ readonly path: ReadonlyArray<string> }>): Built<void> => {
  const filePaths = new Set<string>()
  const folderPaths = new Set<string>()
  for (const { path } of files) {
    const joined = path.join("/")
    if (filePaths.has(joined) || folderPaths.has(joined)) return fail("Invalid", `${JSON.stringify(joined)} is used by an earlier file`)
    for (let j = 1; j < path.length; j++) {
      const folder = path.slice(0, j).join("/")
      if (filePaths.has(folder)) return fail("Invalid", `${JSON.stringify(folder)} is a file, not a folder`)
      folderPaths.add(folder)
    }
    filePaths.add(joined)
  }
  return Either.void
}

/** The rules a creator breaks in practice, each with a message naming the culprit. */
const checkFields = (spec: TorrentSpec): Built<void> =>
  Either.gen(function* () {
    yield* validatePieceLength(spec.pieceLength)
    const nameProblem = pathComponentProblem(spec.name)
    if (nameProblem !== undefined) return yield* fail("UnsafeName", `the name ${nameProblem}`)
    const { content } = spec
    if (content._tag === "SingleFile") {
      yield* checkLength(content.length, spec.name)
    } else {
      if (content.files.length === 0) return yield* fail("Empty", `${spec.name} holds no file`)
      for (const file of content.files) {
        const shown = JSON.stringify(file.path.join("/"))
        if (file.path.length === 0) return yield* fail("UnsafeName", "a file has an empty path")
        for (const component of file.path) {
          const problem = pathComponentProblem(component)
          if (problem !== undefined) return yield* fail("UnsafeName", `file ${shown}: path component ${problem}`)
        }
        yield* checkLength(file.length, shown)
      }
      yield* checkDistinctPaths(content.files)
    }
    const total = totalLength(content)
    if (!Number.isSafeInteger(total)) return yield* fail("Invalid", `the total length ${total} exceeds 2^53 - 1 bytes`)
    if (total === 0) return yield* fail("Empty", `${spec.name} holds no data (0 bytes)`)
    for (const url of spec.announce ?? []) {
      if (!isTrackerUrl(url)) return yield* fail("AnnounceUrl", `tracker ${JSON.stringify(url)} is not an http(s):// or udp:// URL`)
    }
  })

/** A hybrid's v1 file list: a padding file (BEP 47) after each file that does not end on a piece boundary. */
const paddedV1Files = (files: ReadonlyArray<FileEntry>, pieceLength: number): Array<Bencode.Bencode> => {
  const out: Array<Bencode.Bencode> = []
  const padNames = new Set<string>()
  for (const f of files) {
    out.push(Bencode.dict({ length: Bencode.int(f.length), path: f.path.map(Bencode.text) }))
    const gap = (pieceLength - (f.length % pieceLength)) % pieceLength
    if (gap === 0) continue
    // `.pad/<size>` as libtorrent names them, with a suffix where two are alike (paths must stay unique).
    let name = String(gap)
    for (let k = 1; padNames.has(name); k++) name = `${gap}.${k}`
    padNames.add(name)
    out.push(Bencode.dict({ attr: Bencode.text("p"), length: Bencode.int(gap), path: [Bencode.text(".pad"), Bencode.text(name)] }))
  }
  return out
}

/** The BEP 52 `file tree` of the content: nested folders, each file a leaf under the empty key. */
const fileTree = (spec: TorrentSpec, v2: ReadonlyArray<FileHashes | undefined>): Bencode.BencodeDict => {
  const root = new Map<string, Bencode.Bencode>()
  contentFiles(spec.content).forEach((file, i) => {
    const path = spec.content._tag === "SingleFile" ? [spec.name] : file.path
    let node = root
    for (const component of path.slice(0, -1)) {
      const key = Bencode.bytesToKey(Bencode.text(component))
      if (!node.has(key)) node.set(key, new Map())
      node = node.get(key) as Map<string, Bencode.Bencode>
    }
    const leaf = Bencode.dict({ length: Bencode.int(file.length), "pieces root": file.length > 0 ? v2[i]!.piecesRoot : undefined })
    node.set(Bencode.bytesToKey(Bencode.text(path[path.length - 1]!)), Bencode.dict({ "": leaf }))
  })
  return root
}

const pieceLayers = (v2: ReadonlyArray<FileHashes | undefined>): Bencode.BencodeDict =>
  new Map(v2.flatMap((h) => (h === undefined || h.pieceLayer.length === 0 ? [] : [[Bencode.bytesToKey(h.piecesRoot), concatBytes(h.pieceLayer)] as const])))

const encodeTorrent = (spec: TorrentSpec, pieces: Uint8Array, v2: ReadonlyArray<FileHashes | undefined> = []): Uint8Array => {
  const { content } = spec
  const version = spec.version ?? "v1"
  const hasV1 = version !== "v2"
  const files = content._tag === "MultiFile" && hasV1
    ? version === "hybrid" ? paddedV1Files(content.files, spec.pieceLength) : content.files.map((f) => Bencode.dict({ length: Bencode.int(f.length), path: f.path.map(Bencode.text) }))
    : undefined
  const info = Bencode.dict({
    name: Bencode.text(spec.name),
    "piece length": Bencode.int(spec.pieceLength),
    pieces: hasV1 ? pieces : undefined,
    private: spec.private === true ? Bencode.int(1) : undefined,
    length: content._tag === "SingleFile" && hasV1 ? Bencode.int(content.length) : undefined,
    files,
    "meta version": version === "v1" ? undefined : Bencode.int(2),
    "file tree": version === "v1" ? undefined : fileTree(spec, v2)
  })
  const announce = spec.announce ?? []
  return Bencode.encode(
    Bencode.dict({
      announce: announce.length > 0 ? Bencode.text(announce[0]!) : undefined,
      "announce-list": announce.length > 1 ? announce.map((url) => [Bencode.text(url)]) : undefined,
      comment: spec.comment !== undefined ? Bencode.text(spec.comment) : undefined,
      "created by": Bencode.text(spec.createdBy ?? createdBy),
      "creation date": spec.creationDate !== undefined ? Bencode.int(spec.creationDate) : undefined,
      info,
      "piece layers": version === "v1" ? undefined : pieceLayers(v2)
    })
  )
}

/** Stand-in v2 hashes for `checkSpec`: all-zero piece layers and the roots they hash to. */
const placeholderV2 = (spec: TorrentSpec): ReadonlyArray<FileHashes | undefined> =>
  contentFiles(spec.content).map((f) => {
    if (f.length === 0) return undefined
    const count = Math.ceil(f.length / spec.pieceLength)
    if (count === 1) return { piecesRoot: new Uint8Array(merkleHashLength), pieceLayer: [] }
    const pieceLayer = Array.from({ length: count }, () => new Uint8Array(merkleHashLength))
    return { piecesRoot: rootFromLayer(pieceLayer, spec.pieceLength), pieceLayer }
  })

/**
 * Whatever we write must pass our own parser (duplicate paths, a file where a folder is needed, ...):
 * the parser is the one statement of those rules.
 */
const parseBuilt = (bytes: Uint8Array): Built<Metainfo> =>
  Either.mapLeft(parseTorrent(bytes), (e) => new TorrentBuildError({ reason: "Invalid", detail: e.message }))

/** Checks a spec before any data is hashed, so that a bad name or option fails at once rather than after hours of reading. */
export const checkSpec = (spec: TorrentSpec): Built<TorrentSpec> =>
  Either.gen(function* () {
    yield* checkFields(spec)
    yield* parseBuilt(encodeTorrent(spec, new Uint8Array(v1HashCount(spec) * 20), placeholderV2(spec)))
    return spec
  })

export interface BuiltTorrent {
  /** The `.torrent` file's bytes. */
  readonly bytes: Uint8Array
  /** SHA-1 of the bencoded info dict (v2 only: its SHA-256, cut to 20 bytes). */
  readonly infoHash: Uint8Array
  /** The same torrent as `parseTorrent` reads it back. */
  readonly metainfo: Metainfo
}

/**
 * Builds the `.torrent` bytes; `pieces` is the concatenated 20-byte SHA-1 of each piece (for a
 * hybrid, of the payload padded to piece boundaries; empty for v2 only), `v2` the merkle hashes
 * of each content file (undefined for an empty one), for v2 and hybrid torrents.
 */
export const buildTorrent = (spec: TorrentSpec, pieces: Uint8Array, v2: ReadonlyArray<FileHashes | undefined> = []): Built<BuiltTorrent> =>
  Either.gen(function* () {
    yield* checkFields(spec)
    const expected = v1HashCount(spec) * 20
    if (pieces.length !== expected) {
      return yield* fail("PieceHashes", `${pieces.length} bytes of piece hashes given, ${expected} expected (${pieceCount(spec)} pieces)`)
    }
    const files = contentFiles(spec.content)
    if ((spec.version ?? "v1") !== "v1" && (v2.length !== files.length || files.some((f, i) => (f.length > 0) !== (v2[i] !== undefined)))) {
      return yield* fail("PieceHashes", `v2 hashes given for ${v2.length} files, the torrent has ${files.length}`)
    }
    const bytes = encodeTorrent(spec, pieces, v2)
    const metainfo = yield* parseBuilt(bytes)
    return { bytes, infoHash: metainfo.info.infoHash, metainfo }
  })
