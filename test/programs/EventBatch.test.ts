/**
 * How a torrent's events reach its queue: PieceVerified events wait for the next other event, a
 * flush (the engine's ticker: Download.test) or a full batch; every event arrives once, in order.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Queue, Take } from "effect"
import { makeEventBatch } from "../../src/programs/torrent/EventBatch.js"
import { TorrentEvent } from "../../src/programs/torrent/TorrentEvent.js"

const verified = (index: number) => TorrentEvent.PieceVerified({ index })

/** The events in the queue now, in order (none taken twice). */
const queued = (queue: Queue.Queue<Take.Take<TorrentEvent, never>>) =>
  Effect.map(Queue.takeAll(queue), (takes) =>
    Chunk.toReadonlyArray(takes).flatMap((take) =>
      Take.match(take, { onEnd: () => [], onFailure: () => [], onSuccess: (events) => Chunk.toReadonlyArray(events) })))

/** A batch over a queue of its own. */
const fresh = Effect.map(Queue.unbounded<Take.Take<TorrentEvent, never>>(), (queue) => ({ queue, batch: makeEventBatch(queue) }))

describe("EventBatch", () => {
  it.effect("holds PieceVerified events until another event, which goes in after them", () =>
    Effect.gen(function* () {
      const { batch, queue } = yield* fresh
      yield* batch.emit(verified(0))
      yield* batch.emit(verified(1))
      expect(yield* queued(queue)).toEqual([])
      const completed = TorrentEvent.Completed({ bytes: 10, seconds: 1 })
      yield* batch.emit(completed)
      expect(yield* queued(queue)).toEqual([verified(0), verified(1), completed])
    }))

  it.effect("a flush puts the waiting events in, once", () =>
    Effect.gen(function* () {
      const { batch, queue } = yield* fresh
      yield* batch.emit(verified(3))
      yield* batch.emit(verified(4))
      expect(yield* queued(queue)).toEqual([])
      yield* batch.flush
      expect(yield* queued(queue)).toEqual([verified(3), verified(4)])
      yield* batch.flush
      expect(yield* queued(queue)).toEqual([])
    }))

  it.effect("a full batch of 256 goes in at once, without waiting for the clock", () =>
    Effect.gen(function* () {
      const { batch, queue } = yield* fresh
      for (let i = 0; i < 255; i++) yield* batch.emit(verified(i))
      expect(yield* queued(queue)).toEqual([])
      yield* batch.emit(verified(255))
      expect((yield* queued(queue)).map((e) => (e._tag === "PieceVerified" ? e.index : -1))).toEqual(Array.from({ length: 256 }, (_, i) => i))
    }))
})
