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
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { getSystemErrorMap } from "node:util"
import { Context, Data, Effect, Layer, type Scope } from "effect"
import { Bitfield } from "../domain/Bitfield.js"
import { type Info, pieceSize } from "../domain/Metainfo.js"
import { fileSpans } from "../domain/PieceGeometry.js"
import { Hasher } from "./Hasher.js"

export type StorageOperation = "open" | "write" | "read" | "mkdir" | "truncate" | "sync" | "rename"
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
    const text = this.reason === "Io" ? describeCause(this.cause) : failureText[this.reason]
    return `cannot ${this.operation} ${this.path}: ${text}`
  }
}

/** One file of the torrent as stored. */
export interface StoredFile {
  /** Where the file belongs once complete. */
  readonly path: string
  readonly length: number
  /** `partial`: at `<path>.part`, some piece covering it not verified yet; `complete`: at `<path>`. */
  readonly state: "partial" | "complete"
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
  /** The torrent's files and whether each is complete yet. */
  readonly files: Effect.Effect<ReadonlyArray<StoredFile>>
  /**
   * Makes written data durable (fdatasync of the files written since the last flush). Files stay open.
   * Not needed for our own reads to see our writes; call it when a download completes.
   */
  readonly flush: Effect.Effect<void, StorageError>
}

export interface OpenOptions {
  /**
   * Create missing folders and files (as `.part`), and extend short files to their length (default).
   * False for seeding: read `<path>`, or `<path>.part` when that is all there is; nothing is renamed.
   */
  readonly create?: boolean
  /** Replace non-empty files at the final paths that are not this torrent's data (see `scan`). */
  readonly overwrite?: boolean
}

/** Where one file of the torrent is, as the storage tracks it. */
interface FileSlot {
  readonly path: string
  readonly length: number
  /** At `<path>.part`. */
  partial: boolean
  /** Found non-empty at `<path>` when opened: kept only if it proves to be ours. */
  readonly foundAtPath: boolean
}

/** How a storage moves bytes; `TorrentStorage` adds argument checks, the scan and file completion on top. */
interface PieceIo {
  readonly write: (index: number, data: Uint8Array) => Effect.Effect<void, StorageError>
  readonly read: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /** False when the piece cannot be there: part of it lies beyond what its file held at open and it was not written since. */
  readonly mayHave: (index: number) => boolean
  readonly flush: Effect.Effect<void, StorageError>
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
  return (index: number): ReadonlyArray<number> => {
    if (done.has(index)) return []
    done.add(index)
    const completed: Array<number> = []
    for (const span of fileSpans(info, index)) if (--missing[span.fileIndex]! === 0) completed.push(span.fileIndex)
    return completed
  }
}

const fromPieceIo = (info: Info, hasher: Hasher["Type"], io: PieceIo, overwrite: boolean): TorrentStorage => {
  const badArguments = (what: string) => Effect.die(new RangeError(`${what} is outside the torrent (${info.pieceCount} pieces)`))
  const readPiece = (index: number) => {
    const size = pieceSize(info, index)
    return size > 0 ? io.read(index, 0, size) : badArguments(`piece ${index}`)
  }
  const indexes = Array.from({ length: info.pieceCount }, (_, i) => i)
  const completion = makeCompletion(info)
  /** Records a verified piece on disk and moves the files it completes into place. */
  const verified = (index: number) =>
    io.writable
      ? Effect.forEach(completion(index), (f) => (io.slots[f]!.partial ? io.finish(f) : Effect.void), { discard: true })
      : Effect.void
  const readVerified = Effect.suspend(() => {
    const have = Bitfield.empty(info.pieceCount)
    return Effect.forEach(
      indexes,
      (index) =>
        io.mayHave(index)
          ? readPiece(index).pipe(
              Effect.flatMap((data) => hasher.verifyPiece(info, index, data)),
              Effect.map((ok) => ok && have.add(index))
            )
          : Effect.void,
      { concurrency: SCAN_CONCURRENCY, discard: true }
    ).pipe(Effect.as(have))
  })
  const coveredBy = (have: Bitfield, fileIndex: number) => {
    const [first, last] = pieceRange(info, fileIndex)
    for (let p = first; p <= last; p++) if (!have.has(p)) return false
    return true
  }
  /**
   * Data found at the files' paths is ours when any piece of the torrent verifies (a folder where
   * one file was damaged stays ours); when none does, a non-empty file there is someone else's.
   */
  const checkOwnership = (have: Bitfield) =>
    Effect.forEach(
      io.slots,
      (slot, i) => {
        if (!io.writable || !slot.foundAtPath) return Effect.void
        if (!have.isEmpty) return io.claim(i, coveredBy(have, i))
        return overwrite ? io.replace(i) : Effect.fail(new StorageError({ path: slot.path, operation: "open", reason: "NotOurs" }))
      },
      { discard: true }
    )
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
    scan: Effect.gen(function* () {
      const have = yield* readVerified
      yield* checkOwnership(have)
      yield* Effect.forEach(indexes.filter((i) => have.has(i)), verified, { discard: true })
      return have
    }),
    files: Effect.sync(() =>
      io.slots.map((slot): StoredFile => ({ path: slot.path, length: slot.length, state: slot.partial ? "partial" : "complete" }))
    ),
    flush: io.flush
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
    const stats = yield* nodeCall<fs.Stats>(at, "open", (done) => fs.fstat(fd, done))
    // A device or pipe chosen as the target has no meaningful size: treat it as holding anything.
    const opened: OpenFile = { path: at, fd, writable, sizeAtOpen: stats.isFile() ? stats.size : length, dirty: false }
    // A file found at its path is extended only once the scan found it ours (`claim`).
    if (create && at !== file) yield* extend(opened, length)
    return opened
  })

/** Pre-sizes so that later writes never extend the file; never shrinks what is there (resume). */
const extend = (file: OpenFile, length: number) =>
  file.sizeAtOpen < length
    ? nodeCall<void>(file.path, "truncate", (done) => fs.ftruncate(file.fd, length, (err) => done(err, undefined)))
    : Effect.void

const renameFile = (from: string, to: string) => nodeCall<void>(from, "rename", (done) => fs.rename(from, to, (err) => done(err, undefined)))

const syncFile = (file: OpenFile) => {
  file.dirty = false // writes that land during the sync mark it again
  return nodeCall<void>(file.path, "sync", (done) => fs.fdatasync(file.fd, (err) => done(err, undefined)))
}

/** Creates an empty file if missing (zero-length files hold no piece data but belong to the output). */
const touch = (file: string) =>
  nodeCall<number>(file, "open", (done) => fs.open(file, O_RDWR | O_CREAT, 0o666, done)).pipe(
    Effect.flatMap((fd) => Effect.async<void>((resume) => fs.close(fd, () => resume(Effect.void))))
  )

/** Where each file goes; every path of a multi-file torrent must stay strictly inside the target folder. */
const resolvePaths = (info: Info, target: string): Effect.Effect<ReadonlyArray<string>, StorageError> => {
  const root = path.resolve(target)
  // The user chose this file; a v2 single-file torrent's padding entry lands beside it.
  if (!info.isMultiFile) return Effect.succeed(info.files.map((file, i) => (i === 0 ? root : path.join(path.dirname(root), ...file.path))))
  const paths: Array<string> = []
  for (const file of info.files) {
    const resolved = path.resolve(root, ...file.path)
    const relative = path.relative(root, resolved)
    if (relative === "" || relative === ".." || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
      return Effect.fail(new StorageError({ path: resolved, operation: "open", reason: "UnsafePath" }))
    }
    paths.push(resolved)
  }
  return Effect.succeed(paths)
}

/** Each file's slot, from where `openFile` found or created it (a `.part` unless it was at its path). */
const slotsOf = (info: Info, paths: ReadonlyArray<string>, files: ReadonlyArray<OpenFile | undefined>): ReadonlyArray<FileSlot> =>
  info.files.map((file, i) => {
    const open = files[i]
    const partial = open !== undefined && open.path !== paths[i]
    return { path: paths[i]!, length: file.length, partial, foundAtPath: open !== undefined && !partial && open.sizeAtOpen > 0 }
  })

const openLive = (info: Info, target: string, options: OpenOptions, hasher: Hasher["Type"]) =>
  Effect.gen(function* () {
    const create = options.create ?? true
    const paths = yield* resolvePaths(info, target)
    if (create) {
      for (const dir of new Set(paths.map((p) => path.dirname(p)))) {
        yield* nodeCall(dir, "mkdir", (done) => fs.mkdir(dir, { recursive: true }, done))
      }
    }
    // Zero-length files hold no piece data: created complete, and never opened.
    const files: ReadonlyArray<OpenFile | undefined> = yield* Effect.forEach(
      info.files,
      (file, i) =>
        file.length > 0
          ? openFile(paths[i]!, file.length, create)
          : create
            ? Effect.as(touch(paths[i]!), undefined)
            : Effect.succeed(undefined),
      { concurrency: OPEN_CONCURRENCY }
    )
    const slots = slotsOf(info, paths, files)
    const written = Bitfield.empty(info.pieceCount)

    const eachSpan = (index: number, begin: number, length: number, f: (file: OpenFile, at: number, pieceOffset: number, length: number) => Effect.Effect<void, StorageError>) => {
      const spans = fileSpans(info, index, begin, length)
      const run = (s: (typeof spans)[number]) => f(files[s.fileIndex]!, s.fileOffset, s.pieceOffset, s.length)
      // Nearly every block and piece lies in one file: no fibers for a single span.
      return spans.length === 1 ? run(spans[0]!) : Effect.forEach(spans, run, { concurrency: "unbounded", discard: true })
    }

    /** Renames the open file of slot `i` (the descriptor stays valid) and records where it is now. */
    const move = (i: number, to: string, partial: boolean) => {
      const file = files[i]!
      return Effect.map(renameFile(file.path, to), () => {
        file.path = to
        slots[i]!.partial = partial
      })
    }

    return fromPieceIo(info, hasher, {
      write: (index, data) =>
        eachSpan(index, 0, data.length, (file, at, pieceOffset, length) => {
          if (!file.writable) return Effect.fail(new StorageError({ path: file.path, operation: "write", reason: "PermissionDenied" }))
          return transfer(file, "write", data.subarray(pieceOffset, pieceOffset + length), at).pipe(
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
        const out = new Uint8Array(length)
        return eachSpan(index, begin, length, (file, at, pieceOffset, n) =>
          transfer(file, "read", out.subarray(pieceOffset - begin, pieceOffset - begin + n), at)
        ).pipe(Effect.as(out))
      },
      mayHave: (index) =>
        written.has(index) || fileSpans(info, index).every((s) => s.fileOffset + s.length <= files[s.fileIndex]!.sizeAtOpen),
      flush: Effect.forEach(files, (file) => (file === undefined || !file.dirty ? Effect.void : syncFile(file)), {
        concurrency: OPEN_CONCURRENCY,
        discard: true
      }),
      slots,
      writable: create,
      // Durable before its name says it is complete.
      // No fdatasync first: it costs seconds per GiB on a machine with little page cache, and a
      // crash before writeback only leaves pieces that the next run's scan finds missing.
      finish: (i) => move(i, paths[i]!, false),
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
        Effect.zipRight(extend(files[i]!, info.files[i]!.length), complete ? Effect.void : move(i, partPath(paths[i]!), true))
    }, options.overwrite ?? false)
  })

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
      return {
        open: (info, target, options) =>
          Effect.suspend(() => {
            let payload = payloads.get(target)
            if (payload === undefined || payload.length !== info.totalLength) {
              if (options?.create === false) return Effect.fail(new StorageError({ path: target, operation: "open", reason: "NotFound" }))
              payload = new Uint8Array(info.totalLength)
              payloads.set(target, payload)
            }
            const bytes = payload
            const start = (index: number) => index * info.pieceLength
            // Each open starts with its files partial; the scan finds the complete ones again.
            const slots: ReadonlyArray<FileSlot> = info.files.map((file) => ({
              path: info.isMultiFile ? `${target}/${file.path.join("/")}` : target,
              length: file.length,
              partial: file.length > 0,
              foundAtPath: false
            }))
            return Effect.succeed(
              fromPieceIo(info, hasher, {
                write: (index, data) => Effect.sync(() => bytes.set(data, start(index))),
                read: (index, begin, length) => Effect.sync(() => bytes.slice(start(index) + begin, start(index) + begin + length)),
                mayHave: () => true,
                flush: Effect.void,
                slots,
                writable: options?.create !== false,
                finish: (i) => Effect.sync(() => { slots[i]!.partial = false }),
                replace: () => Effect.void,
                claim: () => Effect.void
              }, options?.overwrite ?? false)
            )
          })
      }
    })
  )
}
