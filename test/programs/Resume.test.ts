import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import * as ResumeData from "../../src/domain/ResumeData.js"
import { keepResumeData, loadResume, resumeFileName, scanResumed } from "../../src/programs/torrent/Resume.js"
import { Hasher } from "../../src/services/Hasher.js"
import { StateStore } from "../../src/services/StateStore.js"
import { Storage, type TorrentStorage } from "../../src/services/Storage.js"
import { handInfo } from "../support/handInfo.js"
import { payloadBytes } from "../support/torrent.js"

// Pieces of 16 KiB over three files: piece 1 spans a.bin and b.bin, piece 3 lies in c.bin alone.
const { info, payload } = handInfo(16384, [
  { path: ["a.bin"], data: payloadBytes(20000, 1) },
  { path: ["b.bin"], data: payloadBytes(20000, 2) },
  { path: ["c.bin"], data: payloadBytes(30000, 3) }
])

const layers = Layer.mergeAll(Storage.Memory.pipe(Layer.provide(Hasher.Sync)), StateStore.Memory)

const piece = (index: number) => payload.slice(index * info.pieceLength, Math.min(info.totalLength, (index + 1) * info.pieceLength))
const members = (bits: Bitfield) => Array.from({ length: info.pieceCount }, (_, i) => i).filter((i) => bits.has(i))
const openStorage = (target: string) => Effect.flatMap(Storage, (s) => s.open(info, target))

/** One run of a torrent: opens, resumes, writes `pieces` (noting them to the keeper when `keep`), lets the clock run. */
const session = (pieces: ReadonlyArray<number>, keep: boolean) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* StateStore
      const storage: TorrentStorage = yield* openStorage("t")
      const resumed = yield* scanResumed(storage, info, yield* loadResume(store, info))
      const keeper = keep ? yield* keepResumeData(store, info, storage, resumed.have) : undefined
      for (const index of pieces) {
        yield* storage.writePiece(index, piece(index))
        keeper?.verified(index)
        yield* TestClock.adjust("300 millis")
      }
      yield* TestClock.adjust("5 seconds")
      return resumed
    })
  )

describe("fast resume", () => {
  it.effect("a first run reads everything; a second run reads nothing of unchanged files", () =>
    Effect.gen(function* () {
      const first = yield* session([0, 3], true)
      expect(first.settled).toBe(0)
      expect(first.rechecked).toEqual([0, 1, 2])
      const second = yield* session([], true)
      expect(members(second.have)).toEqual([0, 3])
      expect(second.settled).toBe(info.pieceCount)
      expect(second.rechecked).toEqual([])
    }).pipe(Effect.provide(layers)))

  it.effect("pieces written after the last save are found again by reading only the files they changed", () =>
    Effect.gen(function* () {
      yield* session([0, 3], true)
      // A run killed before it could save: piece 1 (a.bin and b.bin) is on disk, the record does not know it.
      yield* session([1], false)
      const third = yield* session([], true)
      expect(members(third.have)).toEqual([0, 1, 3])
      expect(third.rechecked).toEqual([0, 1])
    }).pipe(Effect.provide(layers)))

  it.effect("the keeper saves on close, so a record exists even within the first second", () =>
    Effect.gen(function* () {
      const store = yield* StateStore
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* openStorage("t")
          const keeper = yield* keepResumeData(store, info, storage, Bitfield.empty(info.pieceCount))
          yield* storage.writePiece(2, piece(2))
          keeper.verified(2)
        })
      )
      const saved = Option.getOrThrow(yield* loadResume(store, info))
      expect(members(saved.have)).toEqual([2])
      expect(ResumeData.hasRacyFiles(saved)).toBe(true)
    }).pipe(Effect.provide(layers)))

  it.effect.each([
    { name: "damaged", bytes: (good: Uint8Array) => good.subarray(0, good.length - 3), detail: /invalid resume data/ },
    { name: "another torrent's", bytes: (good: Uint8Array) => withOtherHash(good), detail: /another torrent/ }
  ])("a $name record is a typed error naming the file", ({ bytes, detail }) =>
    Effect.gen(function* () {
      const store = yield* StateStore
      yield* session([0], true)
      const good = Option.getOrThrow(yield* store.read(resumeFileName(info)))
      yield* store.write(resumeFileName(info), bytes(good))
      const error = yield* Effect.flip(loadResume(store, info))
      expect(error._tag).toBe("ResumeDataUnusable")
      expect(error.message).toContain(store.pathOf(resumeFileName(info)))
      expect(error.message).toMatch(detail)
    }).pipe(Effect.provide(layers)))
})

const withOtherHash = (good: Uint8Array): Uint8Array => {
  const record = ResumeData.decode(good)
  if (record._tag === "Left") throw record.left
  return ResumeData.encode({ ...record.right, infoHash: new Uint8Array(20).fill(7) })
}
