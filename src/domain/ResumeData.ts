/**
 * Resume data: what a torrent knew when it was last saved (its verified pieces, and each file's
 * size and modification time then), so a restart can take those pieces without reading the files
 * again. Bencoded, as libtorrent's and Transmission's resume files are.
 *
 * A file's stamp is trusted only when it is unchanged *and* older than the save by more than
 * `racyWindowNs`: a write in the same clock tick as the save leaves the modification time as it
 * was, so a file modified that close to the save may hold data the record does not know of (git
 * calls such index entries "racily clean"). Those files are checked again; saving once more after
 * the window (`hasRacyFiles`) makes them trusted.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { Bitfield } from "./Bitfield.js"
import type { Info } from "./Metainfo.js"
import { fileSpans } from "./PieceGeometry.js"

/** A file's size and modification time (nanoseconds since the epoch), as `stat` gives them. */
export interface FileStamp {
  readonly length: number
  readonly mtimeNs: bigint
}

export interface ResumeData {
  readonly infoHash: Uint8Array
  /** Pieces verified and written when the record was saved. */
  readonly have: Bitfield
  /** Each file's stamp when the record was saved, in torrent order; undefined where no file was. */
  readonly files: ReadonlyArray<FileStamp | undefined>
  /** When the record was saved, in nanoseconds since the epoch. */
  readonly savedAtNs: bigint
}

/** Modification times this close to a save (or after it) are not trusted: coarse file-system clocks tick in milliseconds. */
export const racyWindowNs = 1_000_000_000n

const formatVersion = 1n

export class ResumeDataError extends Data.TaggedError("ResumeDataError")<{
  /** Which field is wrong, e.g. `files[3]`. */
  readonly field: string
  readonly detail: string
}> {
  override get message() {
    return `invalid resume data: ${this.field}: ${this.detail}`
  }
}

export const encode = (resume: ResumeData): Uint8Array =>
  Bencode.encode(
    Bencode.dict({
      version: formatVersion,
      "info hash": resume.infoHash,
      pieces: resume.have.bytes,
      "piece count": Bencode.int(resume.have.size),
      files: resume.files.map((stamp) => (stamp === undefined ? [] : [Bencode.int(stamp.length), stamp.mtimeNs])),
      "saved at": resume.savedAtNs
    })
  )

type Decoded<A> = Either.Either<A, ResumeDataError>

const wrong = (field: string, detail: string): Decoded<never> => Either.left(new ResumeDataError({ field, detail }))

const field = (d: Bencode.BencodeDict, key: string): Decoded<Bencode.Bencode> => {
  const value = Bencode.get(d, key)
  return value === undefined ? wrong(key, "is missing") : Either.right(value)
}

const nonNegativeInt = (value: Bencode.Bencode, name: string): Decoded<bigint> =>
  Bencode.isInt(value) && value >= 0n ? Either.right(value) : wrong(name, "is not a non-negative integer")

const stampOf = (value: Bencode.Bencode, name: string): Decoded<FileStamp | undefined> => {
  if (!Bencode.isList(value)) return wrong(name, "is not a list")
  if (value.length === 0) return Either.right(undefined)
  if (value.length !== 2) return wrong(name, "is not [length, mtime]")
  return Either.gen(function* () {
    const length = yield* nonNegativeInt(value[0]!, `${name}.length`)
    const mtimeNs = yield* nonNegativeInt(value[1]!, `${name}.mtime`)
    if (length > BigInt(Number.MAX_SAFE_INTEGER)) return yield* wrong(`${name}.length`, "is too large")
    return { length: Number(length), mtimeNs }
  })
}

const stampsOf = (value: Bencode.Bencode): Decoded<ReadonlyArray<FileStamp | undefined>> =>
  Bencode.isList(value) ? Either.all(value.map((v, i) => stampOf(v, `files[${i}]`))) : wrong("files", "is not a list")

/** Reads a record; any damage (truncation, a wrong type, a bitfield of the wrong size) is a typed error. */
export const decode = (bytes: Uint8Array): Decoded<ResumeData> =>
  Either.gen(function* () {
    const root = yield* Either.mapLeft(Bencode.decode(bytes), (e) => new ResumeDataError({ field: "(file)", detail: e.message }))
    if (!Bencode.isDict(root)) return yield* wrong("(file)", "is not a dictionary")
    const version = yield* field(root, "version")
    if (version !== formatVersion) return yield* wrong("version", `is not ${formatVersion}`)
    const infoHash = yield* field(root, "info hash")
    if (!Bencode.isBytes(infoHash) || infoHash.length !== 20) return yield* wrong("info hash", "is not 20 bytes")
    const count = yield* nonNegativeInt(yield* field(root, "piece count"), "piece count")
    const pieces = yield* field(root, "pieces")
    const have = Bencode.isBytes(pieces) && count <= 1n << 31n ? Bitfield.fromWire(pieces, Number(count)) : undefined
    if (have === undefined) return yield* wrong("pieces", "does not match the piece count")
    const files = yield* stampsOf(yield* field(root, "files"))
    const savedAtNs = yield* nonNegativeInt(yield* field(root, "saved at"), "saved at")
    return { infoHash, have, files, savedAtNs }
  })

/** Whether a record fits the torrent it is read for. */
export const matches = (resume: ResumeData, info: Info): boolean =>
  resume.have.size === info.pieceCount &&
  resume.files.length === info.files.length &&
  resume.infoHash.every((b, i) => b === info.infoHash[i])

const trusted = (saved: FileStamp | undefined, now: FileStamp | undefined, savedAtNs: bigint): boolean =>
  saved !== undefined &&
  now !== undefined &&
  saved.length === now.length &&
  saved.mtimeNs === now.mtimeNs &&
  saved.mtimeNs + racyWindowNs < savedAtNs

/** Which files are unchanged since the save (by `current`, their stamps now), and old enough to trust. */
export const unchangedFiles = (resume: ResumeData, current: ReadonlyArray<FileStamp | undefined>): ReadonlyArray<boolean> =>
  resume.files.map((saved, i) => trusted(saved, current[i], resume.savedAtNs))

/** Whether some file of the record is too close to its save to be trusted (save again after the window). */
export const hasRacyFiles = (resume: ResumeData): boolean =>
  resume.files.some((stamp) => stamp !== undefined && stamp.mtimeNs + racyWindowNs >= resume.savedAtNs)

/**
 * The pieces the record settles without reading: those whose every byte lies in unchanged files
 * (zero-length files have no bytes). Each is verified exactly when `resume.have` says so; every
 * other piece must be read and checked.
 */
export const settledPieces = (info: Info, unchanged: ReadonlyArray<boolean>): Bitfield => {
  const pieces = Bitfield.empty(info.pieceCount)
  for (let index = 0; index < info.pieceCount; index++) {
    if (fileSpans(info, index).every((span) => unchanged[span.fileIndex] === true)) pieces.add(index)
  }
  return pieces
}
