/**
 * Streaming a file of a session's torrent while it downloads: the bytes of a range, piece by
 * piece, as the reader takes them. Each read registers the stream's window (the piece under the
 * head and about 32 MiB ahead) with the running torrent, which fetches those pieces first; the
 * window moves on as bytes are consumed, and closes when the stream ends.
 *
 * What a stream does when its torrent is not fetching: verified pieces are read from the storage
 * whatever the torrent's state (a paused, queued or finished torrent streams what it has); a
 * missing piece of a paused, finished or failed torrent fails the stream with `NotRunning` (a
 * player retries; nothing waits forever on a torrent nobody will resume); a torrent still starting
 * (queued, fetching its metadata, checking) is waited for, bounded. A removed torrent ends the
 * stream with `UnknownTorrent`. A skipped file cannot be streamed (`FileSkipped`, also when it is
 * skipped mid-stream): its pieces are not fetched and it may have no file on disk to read back,
 * and a stream does not change the file selection (the user selects the file, then plays it).
 */
import { Data, Duration, Effect, ExecutionStrategy, Exit, Option, Scope, Stream } from "effect"
import { pieceSize } from "../../domain/Metainfo.js"
import type { Info } from "../../domain/Metainfo.js"
import { isPadding } from "../../domain/Padding.js"
import { type PieceWindow, readAheadWindow } from "../../domain/StreamWindows.js"
import type { PriorityWindow } from "../torrent/Streaming.js"
import type { TorrentHandle } from "../torrent/Torrent.js"
import type { UnknownTorrent } from "./SessionEvent.js"
import { prioritiesOf, type SessionEntry } from "./SessionTorrent.js"

export class FileStreamError extends Data.TaggedError("FileStreamError")<{
  readonly id: number
  readonly reason: "NoMetadata" | "NoSuchFile" | "FileSkipped" | "BadRange" | "NotRunning" | "Storage"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    return `torrent ${this.id}: ${this.detail}`
  }
}

/** A file that can be streamed. */
export interface StreamableFile {
  readonly index: number
  /** "/"-joined, under the torrent's name for a multi-file torrent. */
  readonly path: string
  readonly length: number
}

/** Bytes `start..end` of a file, both included. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

export interface FileStreamOptions {
  /** Read-ahead: the window of pieces fetched first, from the read head on (default 32 MiB). */
  readonly aheadBytes?: number
  /** How long to wait for a magnet link's metadata, or for a queued torrent to start (default 60 s). */
  readonly startTimeout?: Duration.DurationInput
}

const defaultAheadBytes = 32 * 1024 * 1024
const defaultStartTimeout = Duration.seconds(60)
const pollEvery = Duration.millis(200)

type Find = (id: number) => Effect.Effect<SessionEntry, UnknownTorrent>

/** Repeats `check` until it gives a value, at most `timeout`; `late` is the error after that. */
const poll = <A, E>(check: Effect.Effect<Option.Option<A>, E>, timeout: Duration.DurationInput, late: () => FileStreamError) => {
  const loop: Effect.Effect<A, E> = Effect.flatMap(check, (found) =>
    Option.isSome(found) ? Effect.succeed(found.value) : Effect.zipRight(Effect.sleep(pollEvery), Effect.suspend(() => loop)))
  return Effect.timeoutFail(loop, { duration: timeout, onTimeout: late })
}

/** The torrent's info dict, waiting for a magnet link's metadata (bounded). */
const awaitInfo = (find: Find, id: number, timeout: Duration.DurationInput) =>
  poll(
    Effect.map(find(id), (entry) => Option.fromNullable(entry.source?.info)),
    timeout,
    () => new FileStreamError({ id, reason: "NoMetadata", detail: `no metadata within ${Duration.format(Duration.decode(timeout))}` })
  )

const describeFile = (info: Info, id: number, fileIndex: number): Effect.Effect<StreamableFile, FileStreamError> => {
  const file = Number.isInteger(fileIndex) ? info.files[fileIndex] : undefined
  if (file === undefined || isPadding(file)) {
    return Effect.fail(new FileStreamError({ id, reason: "NoSuchFile", detail: `no file ${fileIndex} (the torrent has ${info.files.length})` }))
  }
  const path = (info.isMultiFile ? [info.name, ...file.path] : file.path).join("/")
  return Effect.succeed({ index: fileIndex, path, length: file.length })
}

const skipped = (id: number, fileIndex: number) =>
  new FileStreamError({ id, reason: "FileSkipped", detail: `file ${fileIndex} is skipped: select it to stream it` })

/** The info dict and the file, once the metadata is known (waiting for it, bounded); a skipped file is refused. */
const resolveFile = (find: Find, id: number, fileIndex: number, timeout: Duration.DurationInput) =>
  Effect.gen(function* () {
    const info = yield* awaitInfo(find, id, timeout)
    const file = yield* describeFile(info, id, fileIndex)
    if (prioritiesOf(yield* find(id), info)?.[fileIndex] === "skip") return yield* skipped(id, fileIndex)
    return { info, file }
  })

export const streamableFile = (find: Find, id: number, fileIndex: number, options: FileStreamOptions = {}) =>
  Effect.map(resolveFile(find, id, fileIndex, options.startTimeout ?? defaultStartTimeout), ({ file }) => file)

/** The running torrent's handle: waits while it starts (bounded), fails when it is stopped for good. */
const awaitHandle = (find: Find, id: number, timeout: Duration.DurationInput) =>
  poll(
    Effect.flatMap(find(id), (entry): Effect.Effect<Option.Option<TorrentHandle>, FileStreamError> =>
      entry.handle !== undefined
        ? Effect.succeedSome(entry.handle)
        : entry.paused || entry.finished || entry.status === "error"
        ? Effect.fail(new FileStreamError({ id, reason: "NotRunning", detail: `the torrent is ${entry.status}: the data is not there yet` }))
        : Effect.succeedNone),
    timeout,
    () => new FileStreamError({ id, reason: "NotRunning", detail: "the torrent did not start" })
  )

/**
 * The stream's one window, registered with whichever handle runs the torrent now (a new run has a
 * new handle: the window is registered again there), dropped when the stream's scope closes.
 */
const makeRegistration = (scope: Scope.Scope) => {
  let current: { readonly handle: TorrentHandle; readonly window: PriorityWindow; readonly scope: Scope.CloseableScope } | undefined
  return (handle: TorrentHandle, window: PieceWindow) =>
    Effect.gen(function* () {
      if (current?.handle === handle) return yield* current.window.move(window)
      if (current !== undefined) yield* Scope.close(current.scope, Exit.void)
      const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
      current = { handle, scope: child, window: yield* Scope.extend(handle.prioritize(window), child) }
    })
}

/** Bytes `range` of the file, piece by piece as they are pulled. */
export const fileStream = (
  find: Find,
  id: number,
  fileIndex: number,
  range: ByteRange,
  options: FileStreamOptions = {}
): Stream.Stream<Uint8Array, UnknownTorrent | FileStreamError> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const timeout = options.startTimeout ?? defaultStartTimeout
      const { info, file } = yield* resolveFile(find, id, fileIndex, timeout)
      const { start, end } = range
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= file.length) {
        return yield* new FileStreamError({ id, reason: "BadRange", detail: `bytes ${start}-${end} are not in file ${fileIndex} (${file.length} bytes)` })
      }
      const offset = info.files[fileIndex]!.offset
      const last = offset + end
      const register = makeRegistration(yield* Effect.scope)
      const aheadBytes = options.aheadBytes ?? defaultAheadBytes

      /** The bytes from payload offset `at` to the end of its piece (or of the range). */
      const readAt = (at: number): Effect.Effect<Uint8Array, UnknownTorrent | FileStreamError> =>
        Effect.gen(function* () {
          const index = Math.floor(at / info.pieceLength)
          const begin = at - index * info.pieceLength
          const length = Math.min(pieceSize(info, index) - begin, last - at + 1)
          const entry = yield* find(id)
          // Checked at every piece: the selection may change while the stream runs.
          if (prioritiesOf(entry, info)?.[fileIndex] === "skip") return yield* skipped(id, fileIndex)
          const window = readAheadWindow(info.pieceLength, at, last, aheadBytes)
          // Also through pieces already there: what lies ahead of them is fetched meanwhile.
          if (entry.handle !== undefined) yield* register(entry.handle, window)
          const stored = entry.storage?.storage
          if (stored !== undefined && entry.have?.has(index) === true) return yield* stored.readBlock(index, begin, length)
          const handle = yield* awaitHandle(find, id, timeout)
          yield* register(handle, window)
          return yield* handle.read(index, begin, length)
        }).pipe(
          // The run ended under the read (a pause, a removal, a new run): look again.
          Effect.catchTag("TorrentEnded", () => Effect.zipRight(Effect.sleep(pollEvery), readAt(at))),
          Effect.catchTag("StorageError", (cause) =>
            Effect.zipRight(find(id), Effect.fail(new FileStreamError({ id, reason: "Storage", detail: cause.message, cause }))))
        )

      return Stream.unfoldEffect(offset + start, (at) =>
        at > last ? Effect.succeedNone : Effect.map(readAt(at), (bytes) => Option.some([bytes, at + bytes.length] as const)))
    })
  )
