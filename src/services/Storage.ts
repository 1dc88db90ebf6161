/**
 * A torrent's payload on disk: pieces mapped to file ranges (PieceGeometry), positional writes and
 * reads on file descriptors kept open for the storage's scope, and a scan of existing data for resume.
 *
 * `target` is the output file of a single-file torrent and the output folder of a multi-file one
 * (files at `target/<path components>`, without the torrent's name).
 *
 * Incomplete data never looks complete: a file that is not fully verified lives at `<path>.part`
 * and is renamed to `<path>` once every piece covering it is written (Storage is only given
 * verified pieces). A file found at `<path>` when opening is used in place (a finished earlier
 * run, or the user's own data); the scan keeps it only if it is this torrent's data.
 *
 * Not every file of the torrent is a file on disk. Padding (BEP 47) is never stored: it reads as
 * zeros and writes to it are dropped. A skipped file (`wanted`) is not created, but the pieces a
 * wanted neighbour shares with it are fetched whole: its bytes of those pieces go to the torrent's
 * side file (`sidePath`), so the pieces still verify and serve. A symlink (BEP 47 `l`) is created
 * as one, only when its target stays inside the output folder.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { getSystemErrorMap } from "node:util"
import { Clock, Context, Data, Effect, Layer, Scope } from "effect"
import { Bitfield } from "../domain/Bitfield.js"
import { toHex } from "../domain/Bytes.js"
import { type Info, pieceSize } from "../domain/Metainfo.js"
import { isPadding } from "../domain/Padding.js"
import { type FileSpan, fileSpans } from "../domain/PieceGeometry.js"
import type { FileStamp } from "../domain/ResumeData.js"
import { Hasher } from "./Hasher.js"

export type StorageOperation = "open" | "write" | "read" | "mkdir" | "truncate" | "sync" | "rename" | "chmod" | "symlink"
/** `NotOurs`: a non-empty file at the path is not this torrent's data (see `TorrentStorage.scan`). */
export type StorageFailure = "DiskFull" | "PermissionDenied" | "NotFound" | "UnsafePath" | "NotOurs" | "Io"

/** Where unverified data of the file at `path` lives. */
export const partPath = (path: string): string => `${path}.part`

const failureText: Record<Exclude<StorageFailure, "Io" | "NotOurs">, string> = {
  DiskFull: "disk full",
  PermissionDenied: "permission denied",
  NotFound: "no such file or folder",
  UnsafePath: "the torrent's file path leaves the target folder"
}

/** "not a directory (ENOTDIR)" for a Node system error, its message for another error. */
const describeCause = (cause: unknown): string => {
  if (typeof cause === "object" && cause !== null && "errno" in cause && typeof cause.errno === "number") {
    const known = getSystemErrorMap().get(cause.errno)
    if (known !== undefined) return `${known[1]} (${known[0]})`
  }
  return cause instanceof Error ? cause.message : "input/output error"
}

export class StorageError extends Data.TaggedError("StorageError")<{
  readonly path: string
  readonly operation: StorageOperation
  readonly reason: StorageFailure
  readonly cause?: unknown
}> {
  override get message() {
    if (this.reason === "NotOurs") return `${this.path} exists and is not this torrent's data`
    const text = this.reason === "Io"
      ? describeCause(this.cause)
      : this.reason === "UnsafePath" && this.operation === "symlink"
        ? "the symlink's target leaves the target folder"
        : failureText[this.reason]
    return `cannot ${this.operation} ${this.path}: ${text}`
  }
}

/** One file of the torrent as stored. */
export interface StoredFile {
  /** Where the file belongs once complete. */
  readonly path: string
  readonly length: number
  /**
   * `partial`: at `<path>.part`, some piece covering it not verified yet; `complete`: at `<path>`;
   * `skipped`: not wanted, not on disk; `padding`: never on disk.
   */
  readonly state: "partial" | "complete" | "skipped" | "padding"
}

export interface TorrentStorage {
  /**
   * Writes a whole, verified piece (`data` must be exactly the piece's size). Different pieces may be
   * written concurrently. A file whose pieces are now all written is renamed into place.
   */
  readonly writePiece: (index: number, data: Uint8Array) => Effect.Effect<void, StorageError>
  readonly readPiece: (index: number) => Effect.Effect<Uint8Array, StorageError>
  /** A range inside a piece; an index or range outside the piece is a defect, so validate peers' requests first. */
  readonly readBlock: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /**
   * Pieces already on disk whose SHA-1 matches (resume); absent or short files give absent pieces.
   * Files whose pieces all verify are renamed into place. When writable (`create`), data found at
   * the files' final paths must be ours: some piece of the torrent verifies. Otherwise the scan
   * fails with `NotOurs` naming the first non-empty such file, or with `overwrite` those files are
   * emptied and become `.part` files. A `.part` file is always ours. A file of ours found at its
   * path but not complete moves to `.part` (so only complete files ever sit at their paths).
   */
  readonly scan: Effect.Effect<Bitfield, StorageError>
  /**
   * The scan, reading none of the `settled` pieces (resume data vouches for them): of those, the
   * ones in `verified` count as verified and the others as missing.
   */
  readonly resume: (settled: Bitfield, verified: Bitfield) => Effect.Effect<Bitfield, StorageError>
  /** Each file's size and modification time as the open found it, before anything was written; undefined for a zero-length file. */
  readonly stampsAtOpen: ReadonlyArray<FileStamp | undefined>
  /** Each file's size and modification time now (for resume data). */
  readonly stamps: Effect.Effect<ReadonlyArray<FileStamp | undefined>, StorageError>
  /** The torrent's files and whether each is complete yet. */
  readonly files: Effect.Effect<ReadonlyArray<StoredFile>>
  /**
   * Makes written data durable (fdatasync of the files written since the last flush). Files stay open.
   * Not needed for our own reads to see our writes; call it when a download completes.
   */
  readonly flush: Effect.Effect<void, StorageError>
  /**
   * Which files to have on disk, one flag per file (file selection changed). A newly wanted file
   * is created with what the side file holds of it; a file no longer wanted stays where it is.
   */
  readonly setWanted: (wanted: ReadonlyArray<boolean>) => Effect.Effect<void, StorageError>
}

export interface OpenOptions {
  /**
   * Create missing folders and files (as `.part`), and size them to exactly their length (default).
   * False for seeding: read `<path>`, or `<path>.part` when that is all there is; nothing is renamed.
   */
  readonly create?: boolean
  /** Replace non-empty files at the final paths that are not this torrent's data (see `scan`). */
  readonly overwrite?: boolean
  /**
   * Which files to create, one flag per file (default: all). A skipped file found on disk is still
   * used; a missing one is not created and its share of pieces goes to the side file.
   */
  readonly wanted?: ReadonlyArray<boolean>
}

/**
 * The torrent's side file: `.<info hash in hex>.parts` in the output folder (beside the file of a
 * single-file torrent). It has one slot of `pieceLength` bytes per piece that a file boundary
 * falls inside, in piece order (`sideSlots`); a slot holds, at their offsets in the piece, the
 * bytes of that piece that belong to files not on disk. Unwritten slots are holes.
 */
export const sidePath = (info: Info, target: string): string => {
  const root = path.resolve(target)
  return path.join(info.isMultiFile ? root : path.dirname(root), `.${toHex(info.infoHash)}.parts`)
}

/** Piece index -> its slot in the side file: the pieces inside which some non-empty file starts. */
export const sideSlots = (info: Info): ReadonlyMap<number, number> => {
  const slots = new Map<number, number>()
  let seenData = false
  for (const file of info.files) {
    if (file.length === 0) continue
    const piece = Math.floor(file.offset / info.pieceLength)
    if (seenData && file.offset % info.pieceLength !== 0 && !slots.has(piece)) slots.set(piece, slots.size)
    seenData = true
  }
  return slots
}

/** Where one file of the torrent is, as the storage tracks it. */
interface FileSlot {
  readonly path: string
  readonly length: number
  /** At `<path>.part`. */
  partial: boolean
  /** Found non-empty at `<path>` when opened: kept only if it proves to be ours. */
  readonly foundAtPath: boolean
  /** On disk (not skipped, not padding). */
  present: boolean
  readonly padding: boolean
}

/** How a storage moves bytes; `TorrentStorage` adds argument checks, the scan and file completion on top. */
interface PieceIo {
  readonly write: (index: number, data: Uint8Array) => Effect.Effect<void, StorageError>
  readonly read: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /** False when the piece cannot be there: part of it lies beyond what its file held at open and it was not written since. */
  readonly mayHave: (index: number) => boolean
  readonly flush: Effect.Effect<void, StorageError>
  readonly stampsAtOpen: ReadonlyArray<FileStamp | undefined>
  readonly stamps: Effect.Effect<ReadonlyArray<FileStamp | undefined>, StorageError>
  /** One per file of the torrent, in order. */
  readonly slots: ReadonlyArray<FileSlot>
  /** False when seeding: no file is created, replaced or renamed. */
  readonly writable: boolean
  /** Renames a complete `.part` file to its path. */
  readonly finish: (fileIndex: number) => Effect.Effect<void, StorageError>
  /** Empties a file found at its path and moves it to `.part` (overwrite). */
  readonly replace: (fileIndex: number) => Effect.Effect<void, StorageError>
  /** Extends a file found at its path, now known to be ours, to its length; moves it to `.part` unless `complete`. */
  readonly claim: (fileIndex: number, complete: boolean) => Effect.Effect<void, StorageError>
  /** Creates a skipped file now wanted (as `.part`), with what the side file holds of it. */
  readonly create: (fileIndex: number) => Effect.Effect<void, StorageError>
}

const SCAN_CONCURRENCY = 4

/** The pieces covering a non-empty file, as [first, last]. */
const pieceRange = (info: Info, fileIndex: number): readonly [number, number] => {
  const file = info.files[fileIndex]!
  return [Math.floor(file.offset / info.pieceLength), Math.floor((file.offset + file.length - 1) / info.pieceLength)]
}

/**
 * Counts, per file, the covering pieces not verified yet; `verified(index)` gives the files that
 * this piece completes (each exactly once).
 */
const makeCompletion = (info: Info) => {
  const done = Bitfield.empty(info.pieceCount)
  const missing = info.files.map((file, i) => {
    if (file.length === 0) return 0
    const [first, last] = pieceRange(info, i)
    return last - first + 1
  })
  const verified = (index: number): ReadonlyArray<number> => {
    if (done.has(index)) return []
    done.add(index)
    const completed: Array<number> = []
    for (const span of fileSpans(info, index)) if (--missing[span.fileIndex]! === 0) completed.push(span.fileIndex)
    return completed
  }
  return { verified, isComplete: (fileIndex: number) => missing[fileIndex] === 0 }
}

/** What the scan of one storage works with. */
interface ScanParts {
  readonly info: Info
  readonly hasher: Hasher["Type"]
  readonly io: PieceIo
  readonly overwrite: boolean
  /** Every piece index, in order. */
  readonly indexes: ReadonlyArray<number>
  readonly readPiece: (index: number) => Effect.Effect<Uint8Array, StorageError>
  /** Records a verified piece on disk and moves the files it completes into place. */
  readonly verified: (index: number) => Effect.Effect<void, StorageError>
}

/** The pieces on disk: the `settled` ones as `settledHave` says, every other one that may be there read and hashed. */
const readVerified = ({ info, hasher, io, indexes, readPiece }: ScanParts, settled: Bitfield, settledHave: Bitfield) =>
  Effect.suspend(() => {
    const have = Bitfield.empty(info.pieceCount)
    return Effect.forEach(
      indexes,
      (index) =>
        settled.has(index)
          ? Effect.sync(() => settledHave.has(index) && have.add(index))
          : io.mayHave(index)
          ? readPiece(index).pipe(
              Effect.flatMap((data) => hasher.verifyPiece(info, index, data)),
              Effect.map((ok) => ok && have.add(index))
            )
          : Effect.void,
      { concurrency: SCAN_CONCURRENCY, discard: true }
    ).pipe(Effect.as(have))
  })

const coveredBy = (info: Info, have: Bitfield, fileIndex: number) => {
  const [first, last] = pieceRange(info, fileIndex)
  for (let p = first; p <= last; p++) if (!have.has(p)) return false
  return true
}

/**
 * Data found at the files' paths is ours when any piece of the torrent verifies (a folder where
 * one file was damaged stays ours); when none does, a non-empty file there is someone else's.
 */
const checkOwnership = ({ info, io, overwrite }: ScanParts, have: Bitfield) =>
  Effect.forEach(
    io.slots,
    (slot, i) => {
      if (!io.writable || !slot.foundAtPath) return Effect.void
      if (!have.isEmpty) return io.claim(i, coveredBy(info, have, i))
      return overwrite ? io.replace(i) : Effect.fail(new StorageError({ path: slot.path, operation: "open", reason: "NotOurs" }))
    },
    { discard: true }
  )

const scanUnsettled = (parts: ScanParts, settled: Bitfield, settledHave: Bitfield) =>
  Effect.gen(function* () {
    const have = yield* readVerified(parts, settled, settledHave)
    yield* checkOwnership(parts, have)
    yield* Effect.forEach(parts.indexes.filter((i) => have.has(i)), parts.verified, { discard: true })
    return have
  })

const fromPieceIo = (info: Info, hasher: Hasher["Type"], io: PieceIo, overwrite: boolean): TorrentStorage => {
  const badArguments = (what: string) => Effect.die(new RangeError(`${what} is outside the torrent (${info.pieceCount} pieces)`))
  const readPiece = (index: number) => {
    const size = pieceSize(info, index)
    return size > 0 ? io.read(index, 0, size) : badArguments(`piece ${index}`)
  }
  const indexes = Array.from({ length: info.pieceCount }, (_, i) => i)
  const completion = makeCompletion(info)
  const finish = (f: number) => (io.slots[f]!.partial ? io.finish(f) : Effect.void)
  const verified = (index: number) => {
    if (!io.writable) return Effect.void
    const completed = completion.verified(index)
    // Most pieces complete no file: no forEach (a dozen Effect steps) for them.
    return completed.length === 0 ? Effect.void : Effect.forEach(completed, finish, { discard: true })
  }
  const parts: ScanParts = { info, hasher, io, overwrite, indexes, readPiece, verified }
  return {
    writePiece: (index, data) => {
      const size = pieceSize(info, index)
      return size > 0 && data.length === size
        ? Effect.zipRight(io.write(index, data), verified(index))
        : badArguments(`piece ${index} of ${data.length} bytes (expected ${size})`)
    },
    readPiece,
    readBlock: (index, begin, length) =>
      Number.isInteger(begin) && Number.isInteger(length) && begin >= 0 && length > 0 && begin + length <= pieceSize(info, index)
        ? io.read(index, begin, length)
        : badArguments(`block ${begin}+${length} of piece ${index}`),
    scan: Effect.suspend(() => scanUnsettled(parts, Bitfield.empty(info.pieceCount), Bitfield.empty(info.pieceCount))),
    resume: (settled, settledHave) => scanUnsettled(parts, settled, settledHave),
    stampsAtOpen: io.stampsAtOpen,
    stamps: io.stamps,
    files: Effect.sync(() =>
      io.slots.map((slot): StoredFile => ({
        path: slot.path,
        length: slot.length,
        state: slot.padding ? "padding" : !slot.present ? "skipped" : slot.partial ? "partial" : "complete"
      }))
    ),
    flush: io.flush,
    setWanted: (wanted) =>
      Effect.forEach(
        io.slots,
        (slot, f) =>
          io.writable && wanted[f] === true && !slot.present && !slot.padding
            ? Effect.zipRight(io.create(f), completion.isComplete(f) ? finish(f) : Effect.void)
            : Effect.void,
        { discard: true }
      )
  }
}

// ---------------------------------------------------------------------------------------------
// node:fs

const reasonOf = (code: string | undefined): StorageFailure => {
  switch (code) {
    case "ENOSPC":
    case "EDQUOT":
      return "DiskFull"
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return "PermissionDenied"
    case "ENOENT":
      return "NotFound"
    default:
      return "Io"
  }
}

type Callback<A> = (err: NodeJS.ErrnoException | null, value: A) => void

/** One node:fs call; its error becomes a StorageError naming the file and operation. */
const nodeCall = <A>(file: string, operation: StorageOperation, run: (done: Callback<A>) => void) =>
  Effect.async<A, StorageError>((resume) =>
    run((err, value) =>
      resume(
        err === null ? Effect.succeed(value) : Effect.fail(new StorageError({ path: file, operation, reason: reasonOf(err.code), cause: err }))
      )
    )
  )

interface OpenFile {
  /** Where it is now: `<path>.part` until complete. */
  path: string
  readonly fd: number
  readonly writable: boolean
  /** Bytes the file held before we extended it: data beyond can only be ours. */
  sizeAtOpen: number
  /** Written since the last flush. */
  dirty: boolean
  /** Its size and modification time when opened (a torrent file's; the side file has none). */
  readonly stampAtOpen?: FileStamp
}

/**
 * Reads or writes all of `buf` at `position`, resuming after partial transfers. Uninterruptible, so
 * the descriptor is never closed (and its number reused) while the kernel still works on it.
 */
const transfer = (file: OpenFile, operation: "read" | "write", buf: Uint8Array, position: number) =>
  Effect.uninterruptible(
    Effect.async<void, StorageError>((resume) => {
      let done = 0
      const step: Callback<number> = (err, n) => {
        if (err !== null) return resume(Effect.fail(new StorageError({ path: file.path, operation, reason: reasonOf(err.code), cause: err })))
        done += n
        if (done === buf.length) return resume(Effect.void)
        if (n === 0) {
          const cause = new Error(operation === "read" ? `the file ends before byte ${position + buf.length}` : "the write made no progress")
          return resume(Effect.fail(new StorageError({ path: file.path, operation, reason: "Io", cause })))
        }
        next()
      }
      const next = () =>
        operation === "write"
          ? fs.write(file.fd, buf, done, buf.length - done, position + done, step)
          : fs.read(file.fd, buf, done, buf.length - done, position + done, step)
      next()
    })
  )

const { O_RDWR, O_RDONLY, O_CREAT } = fs.constants
const OPEN_CONCURRENCY = 8

/** `create`: read-write, created if missing; `existing`: read-write; `readable`: read-write, else read-only. */
const openFd = (file: string, mode: "create" | "existing" | "readable") => {
  const open = (flags: number) => nodeCall<number>(file, "open", (done) => fs.open(file, flags, 0o666, done))
  if (mode !== "readable") return Effect.map(open(mode === "create" ? O_RDWR | O_CREAT : O_RDWR), (fd) => ({ fd, writable: true }))
  // Seeding may read from files we cannot write (a read-only share): open those read-only.
  return open(O_RDWR).pipe(
    Effect.map((fd) => ({ fd, writable: true })),
    Effect.catchIf(
      (e) => e.reason === "PermissionDenied",
      () => Effect.map(open(O_RDONLY), (fd) => ({ fd, writable: false }))
    )
  )
}

const closeFd = ({ fd }: { readonly fd: number }) => Effect.async<void>((resume) => fs.close(fd, () => resume(Effect.void)))

/**
 * Opens the data of the file at `file`: `file` itself when it exists, else `file.part` (created
 * when `create`). A missing file is reported under its own name.
 */
const locate = (file: string, create: boolean) => {
  const acquire = (at: string, mode: "create" | "existing" | "readable") =>
    Effect.acquireRelease(Effect.map(openFd(at, mode), (opened) => ({ ...opened, at })), closeFd)
  return acquire(file, create ? "existing" : "readable").pipe(
    Effect.catchIf(
      (e) => e.reason === "NotFound",
      (notFound) =>
        acquire(partPath(file), create ? "create" : "readable").pipe(
          Effect.catchIf((e) => e.reason === "NotFound", () => Effect.fail(notFound))
        )
    )
  )
}

const openFile = (file: string, length: number, create: boolean): Effect.Effect<OpenFile, StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const { at, fd, writable } = yield* locate(file, create)
    const stats = yield* fstatExact(fd, at)
    // A device or pipe chosen as the target has no meaningful size: treat it as holding anything.
    const sizeAtOpen = stats.isFile() ? Number(stats.size) : length
    const opened: OpenFile = { path: at, fd, writable, sizeAtOpen, dirty: false, stampAtOpen: { length: sizeAtOpen, mtimeNs: stats.mtimeNs } }
    // A file found at its path is sized only once the scan found it ours (`claim`).
    if (create && at !== file) yield* fitLength(opened, length)
    return opened
  })

const fstatExact = (fd: number, at: string) =>
  nodeCall<fs.BigIntStats>(at, "open", (done) => fs.fstat(fd, { bigint: true }, done))

/**
 * Sizes a file of ours to exactly its length: pre-sized, so later writes never extend it, and cut
 * where it was longer (a `.part` left by another torrent of the same name), so that the complete
 * file holds nothing but the torrent's bytes. Bytes within the length stay (resume).
 */
const fitLength = (file: OpenFile, length: number) =>
  file.sizeAtOpen === length
    ? Effect.void
    : nodeCall<void>(file.path, "truncate", (done) => fs.ftruncate(file.fd, length, (err) => done(err, undefined)))

const renameFile = (from: string, to: string) => nodeCall<void>(from, "rename", (done) => fs.rename(from, to, (err) => done(err, undefined)))

const syncFile = (file: OpenFile) => {
  file.dirty = false // writes that land during the sync mark it again
  return nodeCall<void>(file.path, "sync", (done) => fs.fdatasync(file.fd, (err) => done(err, undefined)))
}

const codeOf = (e: StorageError): string | undefined =>
  typeof e.cause === "object" && e.cause !== null && "code" in e.cause && typeof e.cause.code === "string" ? e.cause.code : undefined

/** BEP 47 `x`: rwxr-xr-x once the file is complete. */
const makeExecutable = (file: string, fd: number) => nodeCall<void>(file, "chmod", (done) => fs.fchmod(fd, 0o755, (err) => done(err, undefined)))

/** Creates an empty file if missing (zero-length files hold no piece data but belong to the output). */
const touch = (file: string, executable: boolean) =>
  nodeCall<number>(file, "open", (done) => fs.open(file, O_RDWR | O_CREAT, 0o666, done)).pipe(
    Effect.flatMap((fd) => Effect.ensuring(executable ? makeExecutable(file, fd) : Effect.void, closeFd({ fd })))
  )

/** Makes `link` a symlink to `target` (stored relative to the link's folder); an older symlink there is replaced. */
const createSymlink = (link: string, target: string) => {
  const make = nodeCall<void>(link, "symlink", (done) => fs.symlink(path.relative(path.dirname(link), target), link, (err) => done(err, undefined)))
  const replace = nodeCall<fs.Stats>(link, "symlink", (done) => fs.lstat(link, done)).pipe(
    Effect.flatMap((stats) =>
      stats.isSymbolicLink()
        ? Effect.zipRight(nodeCall<void>(link, "symlink", (done) => fs.unlink(link, (err) => done(err, undefined))), make)
        : Effect.fail(new StorageError({ path: link, operation: "symlink", reason: "NotOurs" }))
    )
  )
  return Effect.catchIf(make, (e) => codeOf(e) === "EEXIST", () => replace)
}

/** Whether `resolved` lies strictly inside `root`. */
const isInside = (root: string, resolved: string): boolean => {
  const relative = path.relative(root, resolved)
  return !(relative === "" || relative === ".." || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative))
}

/**
 * Where each file goes, and where each symlink points; every path and symlink target of a
 * multi-file torrent must stay strictly inside the target folder.
 */
const resolvePaths = (info: Info, target: string) => {
  const root = path.resolve(target)
  const paths: Array<string> = []
  const links: Array<string | undefined> = []
  // The user chose this file; a v2 single-file torrent's padding entry (never created) lands beside it.
  if (!info.isMultiFile) {
    return Effect.succeed({ paths: info.files.map((file, i) => (i === 0 ? root : path.join(path.dirname(root), ...file.path))), links: info.files.map(() => undefined) })
  }
  for (const file of info.files) {
    const resolved = path.resolve(root, ...file.path)
    if (!isInside(root, resolved)) return Effect.fail(new StorageError({ path: resolved, operation: "open", reason: "UnsafePath" }))
    const link = file.symlink === undefined ? undefined : path.resolve(root, ...file.symlink)
    if (link !== undefined && !isInside(root, link)) return Effect.fail(new StorageError({ path: resolved, operation: "symlink", reason: "UnsafePath" }))
    paths.push(resolved)
    links.push(link)
  }
  return Effect.succeed({ paths, links })
}

/**
 * The side file (`sidePath`): opened at open when it exists, created on the first write to it,
 * closed with the storage's scope.
 */
const openSideFile = (file: string, writable: boolean) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const lock = yield* Effect.makeSemaphore(1)
    const acquire = (mode: "create" | "existing" | "readable") =>
      Effect.acquireRelease(openFd(file, mode), closeFd).pipe(Scope.extend(scope))
    let current: OpenFile | undefined = yield* acquire(writable ? "existing" : "readable").pipe(
      Effect.flatMap((opened) =>
        Effect.map(nodeCall<fs.Stats>(file, "open", (done) => fs.fstat(opened.fd, done)), (stats): OpenFile => ({
          path: file, ...opened, sizeAtOpen: stats.size, dirty: false
        }))
      ),
      Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed(undefined))
    )
    const sizeAtOpen = current?.sizeAtOpen ?? 0
    /** Bytes the file holds (grows with writes): reads stay below it. */
    let size = sizeAtOpen
    const opened = lock.withPermits(1)(Effect.suspend(() =>
      current !== undefined
        ? Effect.succeed(current)
        : Effect.map(acquire("create"), ({ fd }) => (current = { path: file, fd, writable: true, sizeAtOpen: 0, dirty: false }))
    ))
    return {
      sizeAtOpen,
      holds: (at: number, length: number) => at + length <= size,
      write: (at: number, bytes: Uint8Array) =>
        Effect.flatMap(opened, (f) => Effect.map(transfer(f, "write", bytes, at), () => {
          f.dirty = true
          size = Math.max(size, at + bytes.length)
        })),
      read: (at: number, out: Uint8Array) => (current === undefined ? Effect.void : transfer(current, "read", out, at)),
      flush: Effect.suspend(() => (current?.dirty === true ? syncFile(current) : Effect.void))
    }
  })

type SideFile = Effect.Effect.Success<ReturnType<typeof openSideFile>>

/**
 * Opens (or creates) what one file of the torrent has on disk: nothing for padding; a wanted file
 * as `openFile` does (a zero-length one or a symlink made at once, never opened); a skipped file
 * only if it is already there.
 */
const openEntry = (info: Info, i: number, paths: ResolvedPaths, wanted: boolean, create: boolean) => {
  const file = info.files[i]!
  const at = paths.paths[i]!
  const link = paths.links[i]
  if (isPadding(file)) return Effect.succeed({ opened: undefined, present: false })
  if (link !== undefined || file.length === 0) {
    const make = link !== undefined ? createSymlink(at, link) : touch(at, file.executable === true)
    return wanted && create ? Effect.as(make, { opened: undefined, present: true }) : Effect.succeed({ opened: undefined, present: wanted })
  }
  const opened = wanted
    ? openFile(at, file.length, create)
    : openFile(at, file.length, false).pipe(Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed(undefined)))
  return Effect.map(opened, (o) => ({ opened: o, present: o !== undefined }))
}

type ResolvedPaths = Effect.Effect.Success<ReturnType<typeof resolvePaths>>

const makeDirectories = (dirs: Iterable<string>) =>
  Effect.forEach(new Set(dirs), (dir) => nodeCall(dir, "mkdir", (done) => fs.mkdir(dir, { recursive: true }, done)), { discard: true })

const openLive = (info: Info, target: string, options: OpenOptions, hasher: Hasher["Type"]) =>
  Effect.gen(function* () {
    const create = options.create ?? true
    const resolved = yield* resolvePaths(info, target)
    const { paths } = resolved
    const wanted = info.files.map((file, i) => options.wanted?.[i] !== false && !isPadding(file))
    if (create) yield* makeDirectories(paths.filter((_, i) => wanted[i]).map((p) => path.dirname(p)))
    const entries = yield* Effect.forEach(info.files, (_, i) => openEntry(info, i, resolved, wanted[i]!, create), { concurrency: OPEN_CONCURRENCY })
    const files: Array<OpenFile | undefined> = entries.map((e) => e.opened)
    const slots: ReadonlyArray<FileSlot> = info.files.map((file, i) => {
      const open = files[i]
      const partial = open !== undefined && open.path !== paths[i]
      const foundAtPath = open !== undefined && !partial && open.sizeAtOpen > 0
      return { path: paths[i]!, length: file.length, partial, foundAtPath, present: entries[i]!.present, padding: isPadding(file) }
    })
    const side = yield* openSideFile(sidePath(info, target), create)
    const sideSlot = sideSlots(info)
    const scope = yield* Effect.scope
    const written = Bitfield.empty(info.pieceCount)
    const io = makeFileIo(info, files, side, sideSlot, written)

    /** Renames the open file of slot `i` (the descriptor stays valid) and records where it is now. */
    const move = (i: number, to: string, partial: boolean) => {
      const file = files[i]!
      return Effect.map(renameFile(file.path, to), () => {
        file.path = to
        slots[i]!.partial = partial
      })
    }
    const executable = (i: number) => (info.files[i]!.executable === true ? makeExecutable(files[i]!.path, files[i]!.fd) : Effect.void)

    return fromPieceIo(info, hasher, {
      ...io,
      stampsAtOpen: files.map((file) => file?.stampAtOpen),
      stamps: Effect.forEach(files, (file) =>
        file === undefined
          ? Effect.succeed(undefined)
          : Effect.map(fstatExact(file.fd, file.path), (stats): FileStamp => ({ length: Number(stats.size), mtimeNs: stats.mtimeNs }))
      ),
      slots,
      writable: create,
      // Durable before its name says it is complete.
      // No fdatasync first: it costs seconds per GiB on a machine with little page cache, and a
      // crash before writeback only leaves pieces that the next run's scan finds missing.
      finish: (i) => Effect.zipRight(move(i, paths[i]!, false), executable(i)),
      replace: (i) => {
        const file = files[i]!
        const truncate = (size: number) => nodeCall<void>(file.path, "truncate", (done) => fs.ftruncate(file.fd, size, (err) => done(err, undefined)))
        return Effect.all([truncate(0), truncate(info.files[i]!.length), move(i, partPath(paths[i]!), true)], { discard: true }).pipe(
          Effect.map(() => {
            file.sizeAtOpen = 0
          })
        )
      },
      claim: (i, complete) =>
        Effect.zipRight(fitLength(files[i]!, info.files[i]!.length), complete ? executable(i) : move(i, partPath(paths[i]!), true)),
      create: (i) =>
        Effect.gen(function* () {
          yield* makeDirectories([path.dirname(paths[i]!)])
          const entry = yield* openEntry(info, i, resolved, true, true).pipe(Scope.extend(scope))
          files[i] = entry.opened
          slots[i]!.present = entry.present
          slots[i]!.partial = entry.opened !== undefined
          if (entry.opened !== undefined) yield* copyFromSide(info, i, entry.opened, side, sideSlot)
        })
    }, options.overwrite ?? false)
  })

/** A buffer of its own (never a view of node's shared pool), not zero-filled: for bytes about to be read into all of it. */
const unzeroed = (length: number): Uint8Array => {
  const buffer = Buffer.allocUnsafeSlow(length)
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length)
}

/** Reads, writes and the resume check of the files on disk, padding and the side file. */
const makeFileIo = (
  info: Info,
  files: ReadonlyArray<OpenFile | undefined>,
  side: SideFile,
  sideSlot: ReadonlyMap<number, number>,
  written: Bitfield
): Pick<PieceIo, "write" | "read" | "mayHave" | "flush"> => {
  const forSpans = (spans: ReadonlyArray<FileSpan>, f: (span: FileSpan) => Effect.Effect<void, StorageError>) =>
    // Nearly every block and piece lies in one file: no fibers for a single span.
    spans.length === 1 ? f(spans[0]!) : Effect.forEach(spans, f, { concurrency: "unbounded", discard: true })
  const eachSpan = (index: number, begin: number, length: number, f: (span: FileSpan) => Effect.Effect<void, StorageError>) =>
    forSpans(fileSpans(info, index, begin, length), f)
  /** Where a span of a file not on disk lives in the side file; undefined for padding, or a piece without a slot. */
  const sideAt = (index: number, span: FileSpan) => {
    const slot = sideSlot.get(index)
    return slot === undefined || isPadding(info.files[span.fileIndex]!) ? undefined : slot * info.pieceLength + span.pieceOffset
  }
  return {
    write: (index, data) =>
      eachSpan(index, 0, data.length, (span) => {
        const bytes = data.subarray(span.pieceOffset, span.pieceOffset + span.length)
        const file = files[span.fileIndex]
        if (file === undefined) {
          const at = sideAt(index, span)
          return at === undefined ? Effect.void : side.write(at, bytes) // padding: zeros, never stored
        }
        if (!file.writable) return Effect.fail(new StorageError({ path: file.path, operation: "write", reason: "PermissionDenied" }))
        return transfer(file, "write", bytes, span.fileOffset).pipe(
          Effect.map(() => {
            file.dirty = true
          })
        )
      }).pipe(
        Effect.map(() => {
          written.add(index)
        })
      ),
    read: (index, begin, length) => {
      const spans = fileSpans(info, index, begin, length)
      // Padding and data not on disk read as zeros; bytes that files fill need no zeroing first
      // (a seeder's reads are its whole upload: zeroing was ~6% of its main thread in a profile).
      const out = spans.every((span) => files[span.fileIndex] !== undefined) ? unzeroed(length) : new Uint8Array(length)
      return forSpans(spans, (span) => {
        const into = out.subarray(span.pieceOffset - begin, span.pieceOffset - begin + span.length)
        const file = files[span.fileIndex]
        if (file !== undefined) return transfer(file, "read", into, span.fileOffset)
        const at = sideAt(index, span)
        return at !== undefined && side.holds(at, span.length) ? side.read(at, into) : Effect.void
      }).pipe(Effect.as(out))
    },
    mayHave: (index) =>
      written.has(index) ||
      fileSpans(info, index).every((span) => {
        const file = files[span.fileIndex]
        if (file !== undefined) return span.fileOffset + span.length <= file.sizeAtOpen
        if (isPadding(info.files[span.fileIndex]!)) return true
        const at = sideAt(index, span)
        return at !== undefined && at + span.length <= side.sizeAtOpen
      }),
    flush: Effect.zipRight(
      Effect.forEach(files, (file) => (file === undefined || !file.dirty ? Effect.void : syncFile(file)), {
        concurrency: OPEN_CONCURRENCY,
        discard: true
      }),
      side.flush
    )
  }
}

/** A skipped file becomes wanted: what the side file holds of it moves into the file. */
const copyFromSide = (info: Info, fileIndex: number, file: OpenFile, side: SideFile, sideSlot: ReadonlyMap<number, number>) =>
  Effect.forEach(
    sideSlot,
    ([index, slot]) =>
      Effect.forEach(
        fileSpans(info, index).filter((span) => span.fileIndex === fileIndex),
        (span) => {
          const at = slot * info.pieceLength + span.pieceOffset
          if (!side.holds(at, span.length)) return Effect.void
          const bytes = new Uint8Array(span.length)
          return Effect.zipRight(side.read(at, bytes), transfer(file, "write", bytes, span.fileOffset))
        },
        { discard: true }
      ),
    { discard: true }
  )


// ---------------------------------------------------------------------------------------------
// The service

export class Storage extends Context.Tag("bt/Storage")<
  Storage,
  {
    readonly open: (info: Info, target: string, options?: OpenOptions) => Effect.Effect<TorrentStorage, StorageError, Scope.Scope>
  }
>() {
  /** Files on disk through node:fs; every file is opened at `open` and closed when its scope closes. */
  static Live: Layer.Layer<Storage, never, Hasher> = Layer.effect(
    Storage,
    Effect.map(Hasher, (hasher) => ({
      open: (info, target, options) => openLive(info, target, options ?? {}, hasher)
    }))
  )

  /**
   * Payloads in memory, keyed by `target` for the life of the layer: opening a target again (to seed
   * what was downloaded, or to resume) sees the same bytes. A fresh payload is zeros, like a pre-sized file.
   */
  static Memory: Layer.Layer<Storage, never, Hasher> = Layer.effect(
    Storage,
    Effect.map(Hasher, (hasher) => {
      const payloads = new Map<string, Uint8Array>()
      /** Per target, when each file was last written (Effect's Clock, so resume works under TestClock). */
      const writeTimes = new Map<string, Array<bigint>>()
      return {
        open: (info, target, options) =>
          Effect.suspend(() => {
            let payload = payloads.get(target)
            if (payload === undefined || payload.length !== info.totalLength) {
              if (options?.create === false) return Effect.fail(new StorageError({ path: target, operation: "open", reason: "NotFound" }))
              payload = new Uint8Array(info.totalLength)
              payloads.set(target, payload)
              writeTimes.set(target, info.files.map(() => 0n))
            }
            const bytes = payload
            const times = writeTimes.get(target)!
            const stampsNow = () =>
              info.files.map((file, i): FileStamp | undefined => (file.length === 0 ? undefined : { length: file.length, mtimeNs: times[i]! }))
            const start = (index: number) => index * info.pieceLength
            // Each open starts with its files partial; the scan finds the complete ones again.
            const slots: ReadonlyArray<FileSlot> = info.files.map((file) => ({
              path: info.isMultiFile ? `${target}/${file.path.join("/")}` : target,
              length: file.length,
              partial: file.length > 0,
              foundAtPath: false,
              present: true,
              padding: isPadding(file)
            }))
            return Effect.succeed(
              fromPieceIo(info, hasher, {
                write: (index, data) =>
                  Effect.map(Clock.currentTimeNanos, (now) => {
                    bytes.set(data, start(index))
                    for (const span of fileSpans(info, index)) times[span.fileIndex] = now
                  }),
                read: (index, begin, length) => Effect.sync(() => bytes.slice(start(index) + begin, start(index) + begin + length)),
                mayHave: () => true,
                flush: Effect.void,
                stampsAtOpen: stampsNow(),
                stamps: Effect.sync(stampsNow),
                slots,
                writable: options?.create !== false,
                finish: (i) => Effect.sync(() => { slots[i]!.partial = false }),
                replace: () => Effect.void,
                claim: () => Effect.void,
                create: () => Effect.void
              }, options?.overwrite ?? false)
            )
          })
      }
    })
  )
}
