/**
 * A torrent's streams: the read-ahead windows its open streams hold (`StreamWindows`, fed to the
 * picker as deadlines) and the readers waiting for a piece to be verified. Made before the engine
 * starts, so a stream can register and wait while the torrent is still starting up.
 */
import { Data, Deferred, Effect, Exit, FiberId, type Scope } from "effect"
import type { PiecePicker } from "../../domain/PiecePicker.js"
import { type PieceWindow, StreamWindows } from "../../domain/StreamWindows.js"

export type { PieceWindow }

/** The torrent stopped (paused, removed, failed) before the piece a reader waited for was verified. */
export class TorrentEnded extends Data.TaggedError("TorrentEnded")<{ readonly index: number }> {
  override get message() {
    return `the torrent stopped before piece ${this.index} was verified`
  }
}

/** A stream's registered window; closing the scope it was registered in drops it. */
export interface PriorityWindow {
  /** The stream read on or seeked: its window moves. */
  readonly move: (window: PieceWindow) => Effect.Effect<void>
}

export interface Streaming {
  readonly windows: StreamWindows
  /** One latch per awaited piece, shared by its readers. */
  readonly waiters: Map<number, Deferred.Deferred<void>>
  /** The running engine's picker, once there is one (it takes the deadlines from then on). */
  picker: PiecePicker | undefined
  /** Asks the peers for the due pieces at once, ahead of what they have queued (a stream opened). */
  rush: (due: ReadonlySet<number>) => void
}

export const makeStreaming = (): Streaming => ({ windows: new StreamWindows(), waiters: new Map(), picker: undefined, rush: () => {} })

/** The engine's picker starts with the deadlines of the streams already open; `rush` reaches its peers. */
export const attachEngine = (streaming: Streaming, picker: PiecePicker, rush: Streaming["rush"]): void => {
  streaming.picker = picker
  streaming.rush = rush
  picker.setDeadlines(streaming.windows.order)
}

const changed = (streaming: Streaming) => streaming.picker?.setDeadlines(streaming.windows.order)

export const prioritize = (streaming: Streaming, window: PieceWindow): Effect.Effect<PriorityWindow, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const id = streaming.windows.open(window)
        changed(streaming)
        streaming.rush(new Set(streaming.windows.order))
        return id
      }),
      (id) => Effect.sync(() => {
        streaming.windows.close(id)
        changed(streaming)
      })
    ),
    (id) => ({
      move: (next) => Effect.sync(() => {
        streaming.windows.move(id, next)
        changed(streaming)
      })
    })
  )

/** Wakes the readers of a piece just verified (called by the verify stage). */
export const pieceVerified = (streaming: Streaming, index: number): void => {
  const waiter = streaming.waiters.get(index)
  if (waiter === undefined) return
  streaming.waiters.delete(index)
  Deferred.unsafeDone(waiter, Exit.void)
}

/**
 * Waits until the piece is verified (`verified` says whether it is now); fails with `TorrentEnded`
 * once `ended` completes first.
 */
export const waitPiece = (
  streaming: Streaming,
  index: number,
  verified: (index: number) => boolean,
  ended: Effect.Effect<unknown>
): Effect.Effect<void, TorrentEnded> =>
  Effect.suspend(() => {
    if (verified(index)) return Effect.void
    let waiter = streaming.waiters.get(index)
    if (waiter === undefined) {
      waiter = Deferred.unsafeMake<void>(FiberId.none)
      streaming.waiters.set(index, waiter)
    }
    return Effect.raceFirst(Deferred.await(waiter), Effect.zipRight(ended, Effect.fail(new TorrentEnded({ index }))))
  })
