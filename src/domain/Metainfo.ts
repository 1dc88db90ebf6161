/**
 * The torrent model (BEP 3 metainfo, BEP 12 announce-list, BEP 27 private flag).
 * Types first; the parser and validation follow below.
 */
import { createHash } from "node:crypto"
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { toHex } from "./Bytes.js"
import { renameDuplicates } from "./DuplicatePaths.js"
import { resolveSymlinkTargets } from "./SymlinkTargets.js"
import { sanitizeComponent, sanitizeLinkTarget, sanitizePath } from "./TorrentPath.js"
import { parseInfoV2 } from "./MetainfoV2.js"

/**
 * One file of the torrent, in torrent order; `offset` is where it starts in the concatenated payload.
 * `path` is relative to the torrent's folder (`name`) for a multi-file torrent; every component has
 * been sanitised safe to join under an output folder (no `.`, `..`, separator, NUL or drive letter),
 * and no two files share a path.
 */
export interface TorrentFile {
  readonly path: ReadonlyArray<string>
  readonly length: number
  readonly offset: number
  /** BEP 47 `attr` "p": padding, never written to disk (its bytes are zeros). Also a file under `.pad/`. */
  readonly padding?: boolean
  /** BEP 47 `attr` "x". */
  readonly executable?: boolean
  /** BEP 47 `attr` "h". */
  readonly hidden?: boolean
  /** BEP 47 `attr` "l": the `symlink path` components, relative to the torrent's folder. */
  readonly symlink?: ReadonlyArray<string>
  /** The path as the torrent wrote it, when sanitising changed it (shown by `info`). */
  readonly originalPath?: ReadonlyArray<string>
}

/** One piece of a v2 or hybrid torrent under its BEP 52 merkle tree. */
export interface PieceV2 {
  /** The merkle root of the piece's blocks (SHA-256); undefined while its file's piece layer is unknown. */
  readonly hash: Uint8Array | undefined
  /** How many bytes of the piece belong to its file; the rest is padding (zeros). */
  readonly dataLength: number
  /** How many 16 KiB leaves `hash` covers (zero leaves beyond the file's end). */
  readonly leafCount: number
}

/** What a v2 (BEP 52) info dict adds: the torrent is v2-only, or hybrid when it is also a v1 torrent. */
export interface InfoV2 {
  /** SHA-256 of the info dict's exact bytes (a v2-only torrent's `infoHash` is its first 20 bytes). */
  readonly infoHash: Uint8Array
  readonly hybrid: boolean
  /** Each entry of `files`' `pieces root`; undefined for padding and empty files. */
  readonly piecesRoots: ReadonlyArray<Uint8Array | undefined>
  readonly pieces: ReadonlyArray<PieceV2>
}

export interface Info {
  readonly name: string
  /** The name as the torrent wrote it, when sanitising changed it (shown by `info`). */
  readonly originalName?: string
  readonly pieceLength: number
  /** 20-byte SHA-1 of each piece; empty for a v2-only torrent. */
  readonly pieceHashes: ReadonlyArray<Uint8Array>
  readonly pieceCount: number
  /** A single-file torrent has one entry whose path is `[name]`. */
  readonly files: ReadonlyArray<TorrentFile>
  readonly isMultiFile: boolean
  readonly totalLength: number
  readonly private: boolean
  /** SHA-1 of the info dict's exact bytes; for a v2-only torrent, its truncated v2 info hash (what handshakes carry). */
  readonly infoHash: Uint8Array
  /** The info dict's exact bytes (served to peers over ut_metadata). */
  readonly raw: Uint8Array
  /** Present for a v2 or hybrid torrent (BEP 52 `meta version` 2). */
  readonly v2?: InfoV2
}

export interface Metainfo {
  readonly announce: string | undefined
  /** BEP 12 tiers; empty when the torrent has no announce-list. */
  readonly announceList: ReadonlyArray<ReadonlyArray<string>>
  /** Web seeds (BEP 19 `url-list`): HTTP URLs that serve the payload. */
  readonly webSeeds: ReadonlyArray<string>
  readonly comment: string | undefined
  readonly createdBy: string | undefined
  /** `creation date`, in seconds since the Unix epoch. */
  readonly creationDate: number | undefined
  readonly info: Info
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation

/** Which rule a torrent broke. */
export type MetainfoRule =
  | "NotADictionary"
  | "MissingField"
  | "WrongType"
  | "OutOfRange"
  | "PieceHashes"
  | "PieceCount"
  | "Conflict"
  | "UnsafePath"
  | "PieceLayer"

/** A torrent that decodes as bencode but is not valid metainfo, or that would be unsafe to download. */
export class MetainfoError extends Data.TaggedError("MetainfoError")<{
  readonly reason: MetainfoRule
  /** Where in the torrent, e.g. `info.files[2].path[0]`. */
  readonly field: string
  readonly detail: string
}> {
  override get message() {
    return `invalid torrent: ${this.field}: ${this.detail}`
  }
}

type Parsed<A> = Either.Either<A, MetainfoError>

const fail = (reason: MetainfoRule, field: string, detail: string): Parsed<never> =>
  Either.left(new MetainfoError({ reason, field, detail }))

const typeName = (v: Bencode.Bencode): string =>
  Bencode.isBytes(v) ? "a byte string" : Bencode.isInt(v) ? "an integer" : Bencode.isList(v) ? "a list" : "a dictionary"

const required = (d: Bencode.BencodeDict, key: string, field: string): Parsed<Bencode.Bencode> => {
  const v = Bencode.get(d, key)
  return v === undefined ? fail("MissingField", field, "is missing") : Either.right(v)
}

const wrongType = (v: Bencode.Bencode, field: string, expected: string): Parsed<never> =>
  fail("WrongType", field, `must be ${expected}, not ${typeName(v)}`)

const asDict = (v: Bencode.Bencode, field: string): Parsed<Bencode.BencodeDict> =>
  Bencode.isDict(v) ? Either.right(v) : fail("WrongType", field, `must be a dictionary, not ${typeName(v)}`)

const asBytes = (v: Bencode.Bencode, field: string): Parsed<Uint8Array> =>
  Bencode.isBytes(v) ? Either.right(v) : fail("WrongType", field, `must be a byte string, not ${typeName(v)}`)

/** A byte count: an integer in `[min, MAX_SAFE_INTEGER]`, so that arithmetic on it stays exact. */
const asLength = (v: Bencode.Bencode, field: string, min: number): Parsed<number> => {
  if (!Bencode.isInt(v)) return fail("WrongType", field, `must be an integer, not ${typeName(v)}`)
  if (v < BigInt(min) || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    return fail("OutOfRange", field, `${v} is not between ${min} and ${Number.MAX_SAFE_INTEGER}`)
  }
  return Either.right(Number(v))
}

/** The `key.utf-8` variant when it is well typed (some clients write it beside a legacy-encoded `key`). */
const preferUtf8 = (d: Bencode.BencodeDict, key: string, isWellTyped: (v: Bencode.Bencode | undefined) => boolean) => {
  const utf8Key = `${key}.utf-8`
  return isWellTyped(Bencode.get(d, utf8Key)) ? utf8Key : key
}

/**
 * Why a path component is unsafe to join under the output folder, or undefined when it is safe.
 * Rejected: empty, `.` and `..`, separators and NUL inside, and Windows drive letters (`C:`).
 * Together with the per-component rule this rules out absolute paths and any escape.
 */
export const pathComponentProblem = (component: string): string | undefined => {
  if (component.length === 0) return "is empty"
  if (component === "." || component === "..") return `is '${component}'`
  if (/[/\\\0]/.test(component)) return `${JSON.stringify(component)} contains '/', '\\' or NUL`
  if (/^[A-Za-z]:/.test(component)) return `${JSON.stringify(component)} starts with a drive letter`
  return undefined
}

/** BEP 47 `attr` letters: p padding, x executable, h hidden, l symlink (unknown letters are ignored). */
interface Attributes {
  readonly padding: boolean
  readonly executable: boolean
  readonly hidden: boolean
  readonly symlink: boolean
}

const parseAttributes = (d: Bencode.BencodeDict): Attributes => {
  const attr = Bencode.get(d, "attr")
  const letters = Bencode.isBytes(attr) ? Bencode.toText(attr) : ""
  return { padding: letters.includes("p"), executable: letters.includes("x"), hidden: letters.includes("h"), symlink: letters.includes("l") }
}

/** Below libtorrent's bound (2^31 - 1 blocks of 16 KiB, short of a v2 merkle tree's int indices). */
export const maxFileLength = 16384 * (2 ** 30 - 1) - 1

/** A file's length; a symlink takes no payload bytes whatever its `length` says. */
const fileLength = (d: Bencode.BencodeDict, field: string, attributes: Attributes): Parsed<number> =>
  Either.gen(function* () {
    if (attributes.symlink) return 0
    const length = yield* asLength(yield* required(d, "length", `${field}.length`), `${field}.length`, 0)
    if (length > maxFileLength) return yield* fail("OutOfRange", `${field}.length`, `${length} is larger than the ${maxFileLength} bytes a file may hold`)
    return length
  })

const byteStrings = (list: Bencode.BencodeList, field: string): Parsed<ReadonlyArray<Uint8Array>> =>
  Either.all(list.map((v, j) => asBytes(v, `${field}[${j}]`)))

/** A file entry before the rules that look at the whole list (duplicates, symlink targets). */
interface Entry {
  readonly path: ReadonlyArray<string>
  readonly original: ReadonlyArray<string>
  readonly length: number
  readonly attributes: Attributes
  readonly linkTarget: ReadonlyArray<string> | undefined
}

/** The entry's sanitised path; a padding entry without one is placed at `.pad/<length>`, as libtorrent does. */
const entryPath = (entry: Bencode.BencodeDict, field: string, padding: boolean, length: number) =>
  Either.gen(function* () {
    const pathKey = preferUtf8(entry, "path", Bencode.isList)
    const raw = Bencode.get(entry, pathKey)
    if (Bencode.isList(raw) && raw.length > 0) {
      const components = yield* byteStrings(raw, `${field}.${pathKey}`)
      return { path: sanitizePath(components), original: components.map(Bencode.toText) }
    }
    if (padding) return { path: [".pad", String(length)], original: [] }
    if (raw === undefined) return yield* fail("MissingField", `${field}.${pathKey}`, "is missing")
    return yield* Bencode.isList(raw)
      ? fail("MissingField", `${field}.${pathKey}`, "names no file (an empty list)")
      : wrongType(raw, `${field}.${pathKey}`, "a list")
  })

/**
 * The sanitised `symlink path` of a symlink entry. An `l` entry without one, or with one of which
 * nothing remains, is a plain (empty) file, as libtorrent reads it.
 */
const linkTarget = (entry: Bencode.BencodeDict, field: string): Parsed<ReadonlyArray<string> | undefined> => {
  const raw = Bencode.get(entry, "symlink path")
  if (!Bencode.isList(raw)) return Either.right(undefined)
  return Either.map(byteStrings(raw, `${field}.symlink path`), (components) => {
    const target = sanitizeLinkTarget(components)
    return target.length > 0 ? target : undefined
  })
}

/** BitComet names its padding files `_____padding_file_<n>...`; libtorrent matches the text anywhere in the path. */
const isBitCometPadding = (fullPath: string): boolean => fullPath.includes("_____padding_file_")

const parseEntry = (value: Bencode.Bencode, field: string, name: string): Parsed<Entry> =>
  Either.gen(function* () {
    const entry = yield* asDict(value, field)
    const declared = parseAttributes(entry)
    const length = yield* fileLength(entry, field, declared)
    const { original, path } = yield* entryPath(entry, field, declared.padding, length)
    const target = declared.symlink ? yield* linkTarget(entry, field) : undefined
    const padding = declared.padding || path[0] === ".pad" || isBitCometPadding([name, ...path].join("/"))
    return { path, original, length, attributes: { ...declared, padding, symlink: target !== undefined }, linkTarget: target }
  })

const samePath = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => a.length === b.length && a.every((c, i) => c === b[i])

/** The model's file: attributes set only when true, the original path only when it differs. */
const torrentFile = (
  entry: Entry,
  path: ReadonlyArray<string>,
  symlink: ReadonlyArray<string> | undefined,
  offset: number
): TorrentFile => ({
  path,
  length: entry.length,
  offset,
  ...(entry.attributes.padding ? { padding: true } : {}),
  ...(entry.attributes.executable ? { executable: true } : {}),
  ...(entry.attributes.hidden ? { hidden: true } : {}),
  ...(symlink !== undefined ? { symlink } : {}),
  ...(samePath(path, entry.original) ? {} : { originalPath: entry.original })
})

/** Lays entries end to end; symlink targets are checked on the paths as sanitised, before duplicates are renamed (libtorrent's order). */
const layOut = (entries: ReadonlyArray<Entry>): Parsed<ReadonlyArray<TorrentFile>> => {
  const targets = resolveSymlinkTargets(entries.map((e) => ({ path: e.path, symlink: e.linkTarget })))
  const paths = renameDuplicates(entries.map((e) => ({ path: e.path, length: e.length, padding: e.attributes.padding })))
  const files: Array<TorrentFile> = []
  let offset = 0
  for (let i = 0; i < entries.length; i++) {
    files.push(torrentFile(entries[i]!, paths[i]!, targets[i], offset))
    offset += entries[i]!.length
    if (!Number.isSafeInteger(offset)) return fail("OutOfRange", "info.files", "total length exceeds 2^53 - 1 bytes")
  }
  return Either.right(files)
}

const parseFiles = (list: Bencode.BencodeList, name: string): Parsed<ReadonlyArray<TorrentFile>> =>
  Either.gen(function* () {
    if (list.length === 0) return yield* fail("MissingField", "info.files", "lists no file")
    const entries: Array<Entry> = []
    for (let i = 0; i < list.length; i++) entries.push(yield* parseEntry(list[i]!, `info.files[${i}]`, name))
    return yield* layOut(entries)
  })

/** A single-file torrent's one file, named by the sanitised `name`. */
const parseSingleFile = (d: Bencode.BencodeDict, name: string, rawName: string): Parsed<TorrentFile> =>
  Either.gen(function* () {
    const declared = parseAttributes(d)
    const length = yield* fileLength(d, "info", declared)
    const attributes = { ...declared, padding: declared.padding || isBitCometPadding(name), symlink: false }
    return torrentFile({ path: [name], original: [rawName], length, attributes, linkTarget: undefined }, [name], undefined, 0)
  })

const hashLength = 20

/** The largest piece length accepted (64 MiB; real torrents stay at or below 16 MiB). */
export const maxPieceLength = 64 * 1024 * 1024

/**
 * The sanitised `name`. A folder name of which nothing remains becomes the info hash in hex (as in
 * libtorrent); a single file must keep a name.
 */
const parseName = (d: Bencode.BencodeDict, isMultiFile: boolean, infoHash: Uint8Array) =>
  Either.gen(function* () {
    const nameKey = preferUtf8(d, "name", Bencode.isBytes)
    const raw = yield* asBytes(yield* required(d, nameKey, `info.${nameKey}`), `info.${nameKey}`)
    const original = Bencode.toText(raw)
    if (!isMultiFile && raw.length === 0) return yield* fail("MissingField", `info.${nameKey}`, "is empty: the file has no name")
    const name = sanitizeComponent(raw) ?? (isMultiFile ? toHex(infoHash) : undefined)
    if (name === undefined) return yield* fail("UnsafePath", `info.${nameKey}`, `${JSON.stringify(original)} leaves no file name once sanitised`)
    return { name, original }
  })

/** A `files` list makes a multi-file torrent (a `length` beside it is ignored, as libtorrent does); else `length` a single file. */
const parseLayout = (d: Bencode.BencodeDict, infoHash: Uint8Array) =>
  Either.gen(function* () {
    const fileList = Bencode.get(d, "files")
    const isMultiFile = Bencode.isList(fileList)
    if (!isMultiFile && Bencode.get(d, "length") === undefined) {
      return yield* fileList === undefined
        ? fail("MissingField", "info", "has neither 'length' (single file) nor 'files' (multi-file)")
        : wrongType(fileList, "info.files", "a list")
    }
    const { name, original } = yield* parseName(d, isMultiFile, infoHash)
    const files = isMultiFile ? yield* parseFiles(fileList, name) : [yield* parseSingleFile(d, name, original)]
    const last = files[files.length - 1]!
    const totalLength = last.offset + last.length
    if (totalLength === 0) return yield* fail("OutOfRange", "info", "holds no data (its total length is 0)")
    return { name, ...(name === original ? {} : { originalName: original }), files, isMultiFile, totalLength }
  })

const parseInfoDict = (d: Bencode.BencodeDict, raw: Uint8Array): Parsed<Info> =>
  Either.gen(function* () {
    const infoHash = new Uint8Array(createHash("sha1").update(raw).digest())
    const pieceLength = yield* asLength(yield* required(d, "piece length", "info.piece length"), "info.piece length", 1)
    // A piece is held in memory while it downloads: a torrent must not make us allocate gigabytes.
    if (pieceLength > maxPieceLength) {
      return yield* fail("OutOfRange", "info.piece length", `${pieceLength} is larger than the ${maxPieceLength / 1048576} MiB we accept`)
    }
    const pieces = yield* asBytes(yield* required(d, "pieces", "info.pieces"), "info.pieces")
    if (pieces.length % hashLength !== 0) {
      return yield* fail("PieceHashes", "info.pieces", `${pieces.length} bytes is not a multiple of ${hashLength}`)
    }
    const { totalLength, ...layout } = yield* parseLayout(d, infoHash)
    const pieceCount = pieces.length / hashLength
    const expectedCount = Math.ceil(totalLength / pieceLength)
    if (pieceCount !== expectedCount) {
      return yield* fail(
        "PieceCount",
        "info.pieces",
        `has ${pieceCount} hashes but ${totalLength} bytes in pieces of ${pieceLength} make ${expectedCount}`
      )
    }
    // Copies (here and for `raw`), so that an Info neither pins nor shares the caller's buffer;
    // `new Uint8Array(view)` copies even a Node Buffer, whose `slice` would share memory.
    const hashes = new Uint8Array(pieces)
    const pieceHashes: Array<Uint8Array> = []
    for (let i = 0; i < pieceCount; i++) pieceHashes.push(hashes.subarray(i * hashLength, (i + 1) * hashLength))

    const priv = Bencode.get(d, "private")
    return {
      ...layout,
      pieceLength,
      pieceHashes,
      pieceCount,
      totalLength,
      // Any non-zero integer, as libtorrent reads it.
      private: Bencode.isInt(priv) && priv !== 0n,
      infoHash,
      raw
    }
  })

/** A v1 info dict, or a BEP 52 one (`meta version`): v2-only without `pieces`, hybrid with them. */
const parseAnyInfo = (d: Bencode.BencodeDict, raw: Uint8Array, pieceLayers: Bencode.Bencode | undefined, layersLater = false): Parsed<Info> => {
  if (Bencode.get(d, "meta version") === undefined) return parseInfoDict(d, raw)
  const v1: Parsed<Info | undefined> = Bencode.get(d, "pieces") === undefined ? Either.right(undefined) : parseInfoDict(d, raw)
  return Either.flatMap(v1, (v1Info) => Either.mapLeft(parseInfoV2(d, raw, v1Info, pieceLayers, layersLater), (p) => new MetainfoError(p)))
}

/** Tracker fields (and the descriptive fields below) are hints: malformed entries are skipped rather than failing the torrent. */
const parseAnnounceList = (v: Bencode.Bencode | undefined): ReadonlyArray<ReadonlyArray<string>> =>
  Bencode.isList(v)
    ? v.flatMap((tier) => {
        const urls = Bencode.isList(tier) ? tier.filter(Bencode.isBytes).map(Bencode.toText) : []
        return urls.length > 0 ? [urls] : []
      })
    : []

/** An optional text field (its `.utf-8` variant preferred); absent or mistyped reads as undefined. */
const optionalText = (d: Bencode.BencodeDict, key: string): string | undefined => {
  const v = Bencode.get(d, preferUtf8(d, key, Bencode.isBytes))
  return Bencode.isBytes(v) ? Bencode.toText(v) : undefined
}

/** `url-list` is one URL or a list of them (BEP 19). */
const parseUrlList = (v: Bencode.Bencode | undefined): ReadonlyArray<string> =>
  Bencode.isBytes(v) ? [Bencode.toText(v)] : Bencode.isList(v) ? v.filter(Bencode.isBytes).map(Bencode.toText) : []

const parseCreationDate = (v: Bencode.Bencode | undefined): number | undefined =>
  Bencode.isInt(v) && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined

/** Parses and validates a `.torrent` file. The info hash is the SHA-1 of the info dict's bytes as they stand in the file. */
export const parseTorrent = (bytes: Uint8Array): Either.Either<Metainfo, MetainfoError | Bencode.BencodeError> =>
  Either.flatMap(Bencode.decodeDictWithSpans(bytes), ({ dict, spans }) =>
    Either.gen(function* () {
      const infoDict = yield* asDict(yield* required(dict, "info", "info"), "info")
      const span = spans.get(Bencode.bytesToKey(Bencode.text("info")))!
      const info = yield* parseAnyInfo(infoDict, new Uint8Array(bytes.subarray(span.start, span.end)), Bencode.get(dict, "piece layers"))
      const announce = Bencode.get(dict, "announce")
      return {
        announce: Bencode.isBytes(announce) ? Bencode.toText(announce) : undefined,
        announceList: parseAnnounceList(Bencode.get(dict, "announce-list")),
        webSeeds: parseUrlList(Bencode.get(dict, "url-list")).filter((url) => url.length > 0),
        comment: optionalText(dict, "comment"),
        createdBy: optionalText(dict, "created by"),
        creationDate: parseCreationDate(Bencode.get(dict, "creation date")),
        info
      }
    })
  )

const parseBareInfo = (infoBytes: Uint8Array, pieceLayers: Bencode.Bencode | undefined, layersLater: boolean): Either.Either<Info, MetainfoError | Bencode.BencodeError> =>
  Either.flatMap(Bencode.decode(infoBytes), (value) =>
    Bencode.isDict(value)
      ? parseAnyInfo(value, new Uint8Array(infoBytes), pieceLayers, layersLater)
      : fail("NotADictionary", "info", `must be a dictionary, not ${typeName(value)}`)
  )

/**
 * Parses and validates a bare info dict, as fetched from peers for a magnet link (BEP 9), with
 * the `piece layers` fetched for it (BEP 52), if any.
 */
export const parseInfo = (infoBytes: Uint8Array, pieceLayers?: Bencode.BencodeDict): Either.Either<Info, MetainfoError | Bencode.BencodeError> =>
  parseBareInfo(infoBytes, pieceLayers, false)

/**
 * A bare info dict parsed before its piece layers are known: its v2 pieces may lack their hashes,
 * so it is only good for telling which layers to fetch (`missingLayers`), never for a download.
 */
export const parseInfoAwaitingLayers = (infoBytes: Uint8Array): Either.Either<Info, MetainfoError | Bencode.BencodeError> =>
  parseBareInfo(infoBytes, undefined, true)

/** Size of piece `index` (the last one is usually short); 0 for an index outside the torrent. */
export const pieceSize = (info: Info, index: number): number => {
  if (!Number.isInteger(index) || index < 0 || index >= info.pieceCount) return 0
  return index === info.pieceCount - 1 ? info.totalLength - index * info.pieceLength : info.pieceLength
}

const isTrackerUrl = (url: string): boolean => /^(https?|udp):\/\/./i.test(url)

/**
 * Tracker tiers to announce to (BEP 12): the announce-list when it names any usable tracker, else
 * `[[announce]]`, else none. Only HTTP(S) and UDP trackers are kept.
 */
export const trackerTiers = (meta: Metainfo): ReadonlyArray<ReadonlyArray<string>> => {
  const tiers = meta.announceList.map((tier) => tier.filter(isTrackerUrl)).filter((tier) => tier.length > 0)
  if (tiers.length > 0) return tiers
  return meta.announce !== undefined && isTrackerUrl(meta.announce) ? [[meta.announce]] : []
}
