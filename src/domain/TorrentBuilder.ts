/**
 * Building `.torrent` files (BEP 3 metainfo, BEP 12 announce-list, BEP 27 private flag), pure: the
 * caller lists the content and supplies the piece hashes; src/programs/CreateTorrent.ts reads and
 * hashes the data. Output is canonical bencode with no creation date unless one is asked for, so
 * the same input always gives the same bytes and the same info hash.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
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
}

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

/** How many 20-byte hashes `buildTorrent` expects. */
export const pieceCount = (spec: TorrentSpec): number => Math.ceil(totalLength(spec.content) / spec.pieceLength)

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

const encodeTorrent = (spec: TorrentSpec, pieces: Uint8Array): Uint8Array => {
  const { content } = spec
  const info = Bencode.dict({
    name: Bencode.text(spec.name),
    "piece length": Bencode.int(spec.pieceLength),
    pieces,
    private: spec.private === true ? Bencode.int(1) : undefined,
    length: content._tag === "SingleFile" ? Bencode.int(content.length) : undefined,
    files: content._tag === "MultiFile"
      ? content.files.map((f) => Bencode.dict({ length: Bencode.int(f.length), path: f.path.map(Bencode.text) }))
      : undefined
  })
  const announce = spec.announce ?? []
  return Bencode.encode(
    Bencode.dict({
      announce: announce.length > 0 ? Bencode.text(announce[0]!) : undefined,
      "announce-list": announce.length > 1 ? announce.map((url) => [Bencode.text(url)]) : undefined,
      comment: spec.comment !== undefined ? Bencode.text(spec.comment) : undefined,
      "created by": Bencode.text(spec.createdBy ?? createdBy),
      "creation date": spec.creationDate !== undefined ? Bencode.int(spec.creationDate) : undefined,
      info
    })
  )
}

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
    yield* parseBuilt(encodeTorrent(spec, new Uint8Array(pieceCount(spec) * 20)))
    return spec
  })

export interface BuiltTorrent {
  /** The `.torrent` file's bytes. */
  readonly bytes: Uint8Array
  /** SHA-1 of the bencoded info dict. */
  readonly infoHash: Uint8Array
  /** The same torrent as `parseTorrent` reads it back. */
  readonly metainfo: Metainfo
}

/** Builds the `.torrent` bytes; `pieces` is the concatenated 20-byte SHA-1 of each piece. */
export const buildTorrent = (spec: TorrentSpec, pieces: Uint8Array): Built<BuiltTorrent> =>
  Either.gen(function* () {
    yield* checkFields(spec)
    const expected = pieceCount(spec) * 20
    if (pieces.length !== expected) {
      return yield* fail("PieceHashes", `${pieces.length} bytes of piece hashes given, ${expected} expected (${pieceCount(spec)} pieces)`)
    }
    const bytes = encodeTorrent(spec, pieces)
    const metainfo = yield* parseBuilt(bytes)
    return { bytes, infoHash: metainfo.info.infoHash, metainfo }
  })
