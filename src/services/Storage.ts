/**
 * A torrent's payload on disk: pieces mapped to file ranges (PieceGeometry), positional writes and
 * reads on file descriptors kept open for the storage's scope, and a scan of existing data for resume.
 *
 * `target` is the output file of a single-file torrent and the output folder of a multi-file one
 * (files at `target/<path components>`, without the torrent's name).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { getSystemErrorMap } from "node:util"
import { Context, Data, Effect, Layer, type Scope } from "effect"
import { Bitfield } from "../domain/Bitfield.js"
import { type Info, pieceSize } from "../domain/Metainfo.js"
import { fileSpans } from "../domain/PieceGeometry.js"
import { Hasher } from "./Hasher.js"

export type StorageOperation = "open" | "write" | "read" | "mkdir" | "truncate" | "sync"
export type StorageFailure = "DiskFull" | "PermissionDenied" | "NotFound" | "UnsafePath" | "Io"

const failureText: Record<Exclude<StorageFailure, "Io">, string> = {
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
    const text = this.reason === "Io" ? describeCause(this.cause) : failureText[this.reason]
    return `cannot ${this.operation} ${this.path}: ${text}`
  }
}

export interface TorrentStorage {
  /** Writes a whole piece (`data` must be exactly the piece's size). Different pieces may be written concurrently. */
  readonly writePiece: (index: number, data: Uint8Array) => Effect.Effect<void, StorageError>
  readonly readPiece: (index: number) => Effect.Effect<Uint8Array, StorageError>
  /** A range inside a piece; an index or range outside the piece is a defect, so validate peers' requests first. */
  readonly readBlock: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /** Pieces already on disk whose SHA-1 matches (resume); absent or short files give absent pieces. */
  readonly scan: Effect.Effect<Bitfield, StorageError>
  /**
   * Makes written data durable (fdatasync of the files written since the last flush). Files stay open.
   * Not needed for our own reads to see our writes; call it when a download completes.
   */
  readonly flush: Effect.Effect<void, StorageError>
}

export interface OpenOptions {
  /** Create missing folders and files, and extend short files to their length (default). False for seeding. */
  readonly create?: boolean
}

/** How a storage moves bytes; `TorrentStorage` adds argument checks and the scan on top. */
interface PieceIo {
  readonly write: (index: number, data: Uint8Array) => Effect.Effect<void, StorageError>
  readonly read: (index: number, begin: number, length: number) => Effect.Effect<Uint8Array, StorageError>
  /** False when the piece cannot be there: part of it lies beyond what its file held at open and it was not written since. */
  readonly mayHave: (index: number) => boolean
  readonly flush: Effect.Effect<void, StorageError>
}

const SCAN_CONCURRENCY = 4

const fromPieceIo = (info: Info, hasher: Hasher["Type"], io: PieceIo): TorrentStorage => {
  const badArguments = (what: string) => Effect.die(new RangeError(`${what} is outside the torrent (${info.pieceCount} pieces)`))
  const readPiece = (index: number) => {
    const size = pieceSize(info, index)
    return size > 0 ? io.read(index, 0, size) : badArguments(`piece ${index}`)
  }
  const indexes = Array.from({ length: info.pieceCount }, (_, i) => i)
  return {
    writePiece: (index, data) => {
      const size = pieceSize(info, index)
      return size > 0 && data.length === size
        ? io.write(index, data)
        : badArguments(`piece ${index} of ${data.length} bytes (expected ${size})`)
    },
    readPiece,
    readBlock: (index, begin, length) =>
      Number.isInteger(begin) && Number.isInteger(length) && begin >= 0 && length > 0 && begin + length <= pieceSize(info, index)
        ? io.read(index, begin, length)
        : badArguments(`block ${begin}+${length} of piece ${index}`),
    scan: Effect.suspend(() => {
      const have = Bitfield.empty(info.pieceCount)
      return Effect.forEach(
        indexes,
        (index) =>
          io.mayHave(index)
            ? readPiece(index).pipe(
                Effect.flatMap((data) => hasher.verify(data, info.pieceHashes[index]!)),
                Effect.map((ok) => ok && have.add(index))
              )
            : Effect.void,
        { concurrency: SCAN_CONCURRENCY, discard: true }
      ).pipe(Effect.as(have))
    }),
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
  readonly path: string
  readonly fd: number
  readonly writable: boolean
  /** Bytes the file held before we extended it: data beyond can only be ours. */
  readonly sizeAtOpen: number
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

const openFd = (file: string, create: boolean) => {
  const open = (flags: number) => nodeCall<number>(file, "open", (done) => fs.open(file, flags, 0o666, done))
  if (create) return Effect.map(open(O_RDWR | O_CREAT), (fd) => ({ fd, writable: true }))
  // Seeding may read from files we cannot write (a read-only share): open those read-only.
  return open(O_RDWR).pipe(
    Effect.map((fd) => ({ fd, writable: true })),
    Effect.catchIf(
      (e) => e.reason === "PermissionDenied",
      () => Effect.map(open(O_RDONLY), (fd) => ({ fd, writable: false }))
    )
  )
}

const openFile = (file: string, length: number, create: boolean): Effect.Effect<OpenFile, StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const { fd, writable } = yield* Effect.acquireRelease(openFd(file, create), ({ fd }) =>
      Effect.async<void>((resume) => fs.close(fd, () => resume(Effect.void)))
    )
    const stats = yield* nodeCall<fs.Stats>(file, "open", (done) => fs.fstat(fd, done))
    // Pre-size so that later writes never extend the file; never shrink what is there (resume).
    if (create && stats.isFile() && stats.size < length) {
      yield* nodeCall<void>(file, "truncate", (done) => fs.ftruncate(fd, length, (err) => done(err, undefined)))
    }
    // A device or pipe chosen as the target has no meaningful size: treat it as holding anything.
    return { path: file, fd, writable, sizeAtOpen: stats.isFile() ? stats.size : length, dirty: false }
  })

/** Creates an empty file if missing (zero-length files hold no piece data but belong to the output). */
const touch = (file: string) =>
  nodeCall<number>(file, "open", (done) => fs.open(file, O_RDWR | O_CREAT, 0o666, done)).pipe(
    Effect.flatMap((fd) => Effect.async<void>((resume) => fs.close(fd, () => resume(Effect.void))))
  )

/** Where each file goes; every path of a multi-file torrent must stay strictly inside the target folder. */
const resolvePaths = (info: Info, target: string): Effect.Effect<ReadonlyArray<string>, StorageError> => {
  const root = path.resolve(target)
  if (!info.isMultiFile) return Effect.succeed([root]) // the user chose this file
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

const openLive = (info: Info, target: string, create: boolean, hasher: Hasher["Type"]) =>
  Effect.gen(function* () {
    const paths = yield* resolvePaths(info, target)
    if (create) {
      for (const dir of new Set(paths.map((p) => path.dirname(p)))) {
        yield* nodeCall(dir, "mkdir", (done) => fs.mkdir(dir, { recursive: true }, done))
      }
    }
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
    const written = Bitfield.empty(info.pieceCount)

    const eachSpan = (index: number, begin: number, length: number, f: (file: OpenFile, at: number, pieceOffset: number, length: number) => Effect.Effect<void, StorageError>) => {
      const spans = fileSpans(info, index, begin, length)
      const run = (s: (typeof spans)[number]) => f(files[s.fileIndex]!, s.fileOffset, s.pieceOffset, s.length)
      // Nearly every block and piece lies in one file: no fibers for a single span.
      return spans.length === 1 ? run(spans[0]!) : Effect.forEach(spans, run, { concurrency: "unbounded", discard: true })
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
      flush: Effect.forEach(
        files,
        (file) => {
          if (file === undefined || !file.dirty) return Effect.void
          file.dirty = false // writes that land during the sync mark it again
          return nodeCall<void>(file.path, "sync", (done) => fs.fdatasync(file.fd, (err) => done(err, undefined)))
        },
        { concurrency: OPEN_CONCURRENCY, discard: true }
      )
    })
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
      open: (info, target, options) => openLive(info, target, options?.create ?? true, hasher)
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
            return Effect.succeed(
              fromPieceIo(info, hasher, {
                write: (index, data) => Effect.sync(() => bytes.set(data, start(index))),
                read: (index, begin, length) => Effect.sync(() => bytes.slice(start(index) + begin, start(index) + begin + length)),
                mayHave: () => true,
                flush: Effect.void
              })
            )
          })
      }
    })
  )
}
