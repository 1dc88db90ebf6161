/**
 * The torrent model (BEP 3 metainfo, BEP 12 announce-list, BEP 27 private flag).
 * Types first; the parser and validation follow below.
 */
import { createHash } from "node:crypto"
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { parseInfoV2 } from "./MetainfoV2.js"

/**
 * One file of the torrent, in torrent order; `offset` is where it starts in the concatenated payload.
 * `path` is relative to the torrent's folder (`name`) for a multi-file torrent; every component has
 * been checked safe to join under an output folder.
 */
export interface TorrentFile {
  readonly path: ReadonlyArray<string>
  readonly length: number
  readonly offset: number
  readonly padding?: boolean
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

const asDict = (v: Bencode.Bencode, field: string): Parsed<Bencode.BencodeDict> =>
  Bencode.isDict(v) ? Either.right(v) : fail("WrongType", field, `must be a dictionary, not ${typeName(v)}`)

const asList = (v: Bencode.Bencode, field: string): Parsed<Bencode.BencodeList> =>
  Bencode.isList(v) ? Either.right(v) : fail("WrongType", field, `must be a list, not ${typeName(v)}`)

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

const safeComponent = (component: string, field: string): Parsed<string> => {
  const problem = pathComponentProblem(component)
  return problem === undefined ? Either.right(component) : fail("UnsafePath", field, `path component ${problem}`)
}

const parseFiles = (list: Bencode.BencodeList): Parsed<ReadonlyArray<TorrentFile>> =>
  Either.gen(function* () {
    if (list.length === 0) return yield* fail("MissingField", "info.files", "lists no file")
    const files: Array<TorrentFile> = []
    const filePaths = new Set<string>()
    const dirPaths = new Set<string>()
    let offset = 0
    for (let i = 0; i < list.length; i++) {
      const field = `info.files[${i}]`
      const entry = yield* asDict(list[i]!, field)
      const length = yield* asLength(yield* required(entry, "length", `${field}.length`), `${field}.length`, 0)
      const pathKey = preferUtf8(entry, "path", Bencode.isList)
      const rawPath = yield* asList(yield* required(entry, pathKey, `${field}.${pathKey}`), `${field}.${pathKey}`)
      if (rawPath.length === 0) return yield* fail("UnsafePath", `${field}.${pathKey}`, "is an empty path")
      const path: Array<string> = []
      for (let j = 0; j < rawPath.length; j++) {
        const componentField = `${field}.${pathKey}[${j}]`
        path.push(yield* safeComponent(Bencode.toText(yield* asBytes(rawPath[j]!, componentField)), componentField))
      }
      // Two entries on one path, or a file where another entry needs a folder, would clobber data.
      const joined = path.join("/")
      if (filePaths.has(joined) || dirPaths.has(joined)) {
        return yield* fail("Conflict", `${field}.${pathKey}`, `${JSON.stringify(joined)} is used by an earlier entry`)
      }
      for (let j = 1; j < path.length; j++) {
        const dir = path.slice(0, j).join("/")
        if (filePaths.has(dir)) return yield* fail("Conflict", `${field}.${pathKey}`, `${JSON.stringify(dir)} is a file, not a folder`)
        dirPaths.add(dir)
      }
      filePaths.add(joined)
      files.push({ path, length, offset })
      offset += length
      if (!Number.isSafeInteger(offset)) return yield* fail("OutOfRange", "info.files", "total length exceeds 2^53 - 1 bytes")
    }
    return files
  })

const hashLength = 20

/** The largest piece length accepted (64 MiB; real torrents stay at or below 16 MiB). */
export const maxPieceLength = 64 * 1024 * 1024

const parseInfoDict = (d: Bencode.BencodeDict, raw: Uint8Array): Parsed<Info> =>
  Either.gen(function* () {
    const nameKey = preferUtf8(d, "name", Bencode.isBytes)
    const name = yield* safeComponent(
      Bencode.toText(yield* asBytes(yield* required(d, nameKey, `info.${nameKey}`), `info.${nameKey}`)),
      `info.${nameKey}`
    )
    const pieceLength = yield* asLength(yield* required(d, "piece length", "info.piece length"), "info.piece length", 1)
    // A piece is held in memory while it downloads: a torrent must not make us allocate gigabytes.
    if (pieceLength > maxPieceLength) {
      return yield* fail("OutOfRange", "info.piece length", `${pieceLength} is larger than the ${maxPieceLength / 1048576} MiB we accept`)
    }
    const pieces = yield* asBytes(yield* required(d, "pieces", "info.pieces"), "info.pieces")
    if (pieces.length % hashLength !== 0) {
      return yield* fail("PieceHashes", "info.pieces", `${pieces.length} bytes is not a multiple of ${hashLength}`)
    }

    const length = Bencode.get(d, "length")
    const fileList = Bencode.get(d, "files")
    if (length !== undefined && fileList !== undefined) {
      return yield* fail("Conflict", "info", "has both 'length' (single file) and 'files' (multi-file)")
    }
    if (length === undefined && fileList === undefined) {
      return yield* fail("MissingField", "info", "has neither 'length' (single file) nor 'files' (multi-file)")
    }
    const files: ReadonlyArray<TorrentFile> = fileList !== undefined
      ? yield* parseFiles(yield* asList(fileList, "info.files"))
      : [{ path: [name], length: yield* asLength(length!, "info.length", 0), offset: 0 }]
    const last = files[files.length - 1]!
    const totalLength = last.offset + last.length

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
      name,
      pieceLength,
      pieceHashes,
      pieceCount,
      files,
      isMultiFile: fileList !== undefined,
      totalLength,
      private: Bencode.isInt(priv) && priv === 1n,
      infoHash: new Uint8Array(createHash("sha1").update(raw).digest()),
      raw
    }
  })

/** A v1 info dict, or a BEP 52 one (`meta version`): v2-only without `pieces`, hybrid with them. */
const parseAnyInfo = (d: Bencode.BencodeDict, raw: Uint8Array, pieceLayers: Bencode.Bencode | undefined): Parsed<Info> => {
  if (Bencode.get(d, "meta version") === undefined) return parseInfoDict(d, raw)
  const v1: Parsed<Info | undefined> = Bencode.get(d, "pieces") === undefined ? Either.right(undefined) : parseInfoDict(d, raw)
  return Either.flatMap(v1, (v1Info) => Either.mapLeft(parseInfoV2(d, raw, v1Info, pieceLayers), (p) => new MetainfoError(p)))
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

/** Parses and validates a bare info dict, as fetched from peers for a magnet link (BEP 9). */
export const parseInfo = (infoBytes: Uint8Array): Either.Either<Info, MetainfoError | Bencode.BencodeError> =>
  Either.flatMap(Bencode.decode(infoBytes), (value) =>
    Bencode.isDict(value)
      ? parseAnyInfo(value, new Uint8Array(infoBytes), undefined)
      : fail("NotADictionary", "info", `must be a dictionary, not ${typeName(value)}`)
  )

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
