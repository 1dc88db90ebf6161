/**
 * Fast resume: a torrent's resume data kept in a `StateStore` beside the session's other state.
 * On open, pieces recorded as verified in files that have not changed since are taken without
 * reading them (`scanResumed`); the rest is scanned as usual. While the torrent runs, a keeper
 * saves the record at most once a second when pieces were verified, again once the racy window
 * has passed, and on close, so a kill at any moment loses at most what the last second verified
 * in files whose changed modification time makes the next start check them again.
 */
import { Clock, Data, Duration, Effect, Option, Schedule, type Scope } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import { toHex } from "../../domain/Bytes.js"
import type { Info } from "../../domain/Metainfo.js"
import { isPadding } from "../../domain/Padding.js"
import * as ResumeData from "../../domain/ResumeData.js"
import type { StateStoreError, StateStoreService } from "../../services/StateStore.js"
import type { StorageError, TorrentStorage } from "../../services/Storage.js"

/** The resume file of a torrent: its info hash, so one store holds a whole session's. */
export const resumeFileName = (info: Info): string => `${toHex(info.infoHash)}.resume`

/** A resume file that is there but cannot be used: the torrent is checked in full instead. */
export class ResumeDataUnusable extends Data.TaggedError("ResumeDataUnusable")<{
  readonly path: string
  readonly detail: string
}> {
  override get message() {
    return `resume data ignored: ${this.path}: ${this.detail}`
  }
}

/** The torrent's saved record; none when there is none yet. */
export const loadResume = (
  store: StateStoreService,
  info: Info
): Effect.Effect<Option.Option<ResumeData.ResumeData>, ResumeDataUnusable | StateStoreError> => {
  const name = resumeFileName(info)
  const unusable = (detail: string) => new ResumeDataUnusable({ path: store.pathOf(name), detail })
  return Effect.flatMap(store.read(name), (bytes) => {
    if (Option.isNone(bytes)) return Effect.succeed(Option.none())
    const decoded = ResumeData.decode(bytes.value)
    if (decoded._tag === "Left") return Effect.fail(unusable(decoded.left.message))
    if (!ResumeData.matches(decoded.right, info)) return Effect.fail(unusable("it is for another torrent"))
    return Effect.succeed(Option.some(decoded.right))
  })
}

/** What a resumed open found: the verified pieces, and what it had to read. */
export interface Resumed {
  readonly have: Bitfield
  /** Pieces the record settled without reading. */
  readonly settled: number
  /** Files checked by reading, because they changed (or are new) since the record was saved. */
  readonly rechecked: ReadonlyArray<number>
}

/** The storage's verified pieces, reading only what the record cannot vouch for. */
export const scanResumed = (
  storage: TorrentStorage,
  info: Info,
  resume: Option.Option<ResumeData.ResumeData>
): Effect.Effect<Resumed, StorageError> => {
  const unchanged = Option.match(resume, {
    onNone: () => info.files.map(() => false),
    // Padding is never on disk: its zeros cannot change.
    onSome: (r) => ResumeData.unchangedFiles(r, storage.stampsAtOpen).map((same, i) => same || isPadding(info.files[i]!))
  })
  const settled = ResumeData.settledPieces(info, unchanged)
  const saved = Option.match(resume, { onNone: () => Bitfield.empty(info.pieceCount), onSome: (r) => r.have })
  const rechecked = info.files.flatMap((file, i) => (file.length > 0 && !isPadding(file) && !unchanged[i]! ? [i] : []))
  return Effect.map(storage.resume(settled, saved), (have) => ({ have, settled: settled.cardinality, rechecked }))
}

/** Saves the record of `have` now. Stamps first: a write after them shows as a changed file. */
export const saveResume = (
  store: StateStoreService,
  info: Info,
  storage: TorrentStorage,
  have: Bitfield
): Effect.Effect<ResumeData.ResumeData, StateStoreError | StorageError> =>
  Effect.gen(function* () {
    const files = yield* storage.stamps
    const savedAtNs = yield* Clock.currentTimeNanos
    const record: ResumeData.ResumeData = {
      infoHash: info.infoHash,
      have: Bitfield.fromWire(have.bytes, have.size)!,
      files,
      savedAtNs
    }
    yield* store.write(resumeFileName(info), ResumeData.encode(record))
    return record
  })

/**
 * The sink, telling `note` of each piece once it is written (the engine writes verified pieces
 * only). What must be exact when a run stops (resume data, a session's pieces) follows the writes,
 * not the `PieceVerified` events: those come in batches, and a consumer that stops misses the last.
 */
export const notingWrites = <S extends Pick<TorrentStorage, "writePiece">>(sink: S, note: (index: number) => void): S => ({
  ...sink,
  writePiece: (index: number, data: Uint8Array) => Effect.map(sink.writePiece(index, data), () => note(index))
})

export interface ResumeKeeper {
  /** Notes a piece verified and written (the next save records it). */
  readonly verified: (index: number) => void
}

const saveInterval = Duration.seconds(1)

/**
 * Keeps the torrent's record current for the scope's life: a save each second something changed
 * (or a saved file was still in its racy window), and one when the scope closes. A failed save is
 * logged and tried again at the next turn; it never stops the torrent.
 */
export const keepResumeData = (
  store: StateStoreService,
  info: Info,
  storage: TorrentStorage,
  initial: Bitfield
): Effect.Effect<ResumeKeeper, never, Scope.Scope> =>
  Effect.gen(function* () {
    const have = Bitfield.fromWire(initial.bytes, initial.size)!
    let dirty = true
    const save = Effect.suspend(() => {
      dirty = false
      return saveResume(store, info, storage, have).pipe(
        Effect.map((record) => {
          if (ResumeData.hasRacyFiles(record)) dirty = true
        }),
        Effect.catchAll((e) =>
          Effect.zipRight(
            Effect.sync(() => {
              dirty = true
            }),
            Effect.logWarning(`could not save resume data: ${e.message}`)
          )
        )
      )
    })
    yield* Effect.addFinalizer(() => save)
    yield* Effect.forkScoped(Effect.repeat(Effect.suspend(() => (dirty ? save : Effect.void)), Schedule.spaced(saveInterval)))
    return {
      verified: (index) => {
        if (have.add(index)) dirty = true
      }
    }
  })
