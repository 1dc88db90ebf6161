/** Storage for files that are not plain data files: padding, executables, symlinks, and skipped files. */
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { onlyFiles, piecePlan } from "../../src/domain/FileSelection.js"
import type { Info } from "../../src/domain/Metainfo.js"
import { Hasher } from "../../src/services/Hasher.js"
import { type OpenOptions, sidePath, sideSlots, Storage, StorageError, type TorrentStorage } from "../../src/services/Storage.js"
import { handInfo } from "../support/handInfo.js"
import { payloadBytes } from "../support/torrent.js"

const LiveStorage = Storage.Live.pipe(Layer.provide(Hasher.Sync))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "bt-storage-files-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const open = (info: Info, target: string, options?: OpenOptions) => Effect.flatMap(Storage, (s) => s.open(info, target, options))

const piece = (info: Info, payload: Uint8Array, index: number) =>
  payload.slice(index * info.pieceLength, Math.min(info.totalLength, (index + 1) * info.pieceLength))

const writeAll = (storage: TorrentStorage, info: Info, payload: Uint8Array, indexes: Iterable<number>) =>
  Effect.forEach(indexes, (i) => storage.writePiece(i, piece(info, payload, i)), { concurrency: "unbounded", discard: true })

const indexes = (count: number, keep: (i: number) => boolean = () => true) => Array.from({ length: count }, (_, i) => i).filter(keep)

const bytesAt = (file: string) => new Uint8Array(readFileSync(file))

// Pieces of 16 KiB; libtorrent-style padding aligns b.bin to piece 1.
const padded = handInfo(16384, [
  { path: ["a.txt"], data: payloadBytes(10000, 1) },
  { path: [".pad", "6384"], data: new Uint8Array(6384), attributes: { padding: true } },
  { path: ["b.bin"], data: payloadBytes(40000, 2) },
  { path: ["pad2"], data: new Uint8Array(9152), attributes: { padding: true } }, // a pad outside `.pad/`, by attribute
  { path: ["c.bin"], data: payloadBytes(5000, 3) }
])

// Pieces of 16 KiB over three files: piece 0 is shared by a and b, piece 3 by b and c.
const three = handInfo(16384, [
  { path: ["a.txt"], data: payloadBytes(10000, 1) },
  { path: ["sub", "b.bin"], data: payloadBytes(50000, 2) },
  { path: ["c.dat"], data: payloadBytes(30001, 3) }
])

describe("Storage.Live: BEP 47 padding, executables, symlinks", () => {
  it.scoped("padding is never on disk, reads back as zeros, and pieces over it verify after reopening", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = padded
      const storage = yield* open(info, dir)
      yield* writeAll(storage, info, payload, indexes(info.pieceCount))
      yield* storage.flush
      expect(readdirSync(dir).sort()).toEqual(["a.txt", "b.bin", "c.bin"])
      expect(bytesAt(join(dir, "b.bin"))).toEqual(payload.slice(16384, 56384))
      for (const i of indexes(info.pieceCount)) expect(yield* storage.readPiece(i)).toEqual(piece(info, payload, i))
      expect((yield* storage.files).map((f) => f.state)).toEqual(["complete", "padding", "complete", "padding", "complete"])
      const again = yield* Effect.scoped(Effect.flatMap(open(info, dir), (s) => s.scan))
      expect(again.isComplete).toBe(true)
      expect(readdirSync(dir).sort()).toEqual(["a.txt", "b.bin", "c.bin"])
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("an executable file becomes rwxr-xr-x when it completes, not before", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = handInfo(16384, [
        { path: ["run.sh"], data: payloadBytes(20000, 1), attributes: { executable: true } },
        { path: ["data"], data: payloadBytes(20000, 2) },
        { path: ["empty.sh"], data: new Uint8Array(0), attributes: { executable: true } }
      ])
      const storage = yield* open(info, dir)
      expect(statSync(join(dir, "empty.sh")).mode & 0o777).toBe(0o755)
      yield* writeAll(storage, info, payload, [0])
      expect(statSync(join(dir, "run.sh.part")).mode & 0o111).toBe(0)
      yield* writeAll(storage, info, payload, [1, 2])
      expect(statSync(join(dir, "run.sh")).mode & 0o777).toBe(0o755)
      expect(statSync(join(dir, "data")).mode & 0o111).toBe(0)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a symlink inside the folder is created as one (relative), and replaces an older symlink", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = handInfo(16384, [
        { path: ["sub", "real.bin"], data: payloadBytes(20000, 1) },
        { path: ["sub", "deeper", "link"], data: new Uint8Array(0), attributes: { symlink: ["sub", "real.bin"] } }
      ])
      const storage = yield* open(info, dir)
      yield* writeAll(storage, info, payload, indexes(info.pieceCount))
      const link = join(dir, "sub", "deeper", "link")
      expect(lstatSync(link).isSymbolicLink()).toBe(true)
      expect(readlinkSync(link)).toBe(join("..", "real.bin"))
      expect(bytesAt(link)).toEqual(payload)
      yield* Effect.scoped(open(info, dir)) // opened again: the link is there already
      expect(readlinkSync(link)).toBe(join("..", "real.bin"))
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a symlink whose target leaves the folder is refused (UnsafePath), and nothing is created", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "inner")
      for (const symlink of [["..", "..", "etc", "passwd"], ["sub", "..", ".."], ["/etc/passwd"]]) {
        const { info } = handInfo(16384, [
          { path: ["file"], data: payloadBytes(100, 1) },
          { path: ["link"], data: new Uint8Array(0), attributes: { symlink } }
        ])
        const exit = yield* Effect.exit(open(info, target))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(error).toBeInstanceOf(StorageError)
        expect(error).toMatchObject({ reason: "UnsafePath", operation: "symlink", path: join(target, "link") })
        expect(error?.message).toBe(`cannot symlink ${join(target, "link")}: the symlink's target leaves the target folder`)
      }
      expect(readdirSync(dir)).toEqual([])
    }).pipe(Effect.provide(LiveStorage))
  )
})

describe("Storage.Live: skipped files", () => {
  it.scoped("a skipped file is not created; its share of pieces with wanted neighbours goes to the side file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = three
      const priorities = onlyFiles(3, [0, 2])
      const wanted = [true, false, true]
      const plan = piecePlan(info, priorities)
      const pieces = indexes(info.pieceCount, (i) => plan.wanted.has(i))
      expect(pieces).toEqual([0, 3, 4, 5])
      const storage = yield* open(info, dir, { wanted })
      yield* writeAll(storage, info, payload, pieces)
      yield* storage.flush
      // a.txt and c.dat complete; no b.bin, no b.bin.part, no sub/ folder; one hidden side file.
      const side = sidePath(info, dir)
      expect(readdirSync(dir).sort()).toEqual([".0000000000000000000000000000000000000000.parts", "a.txt", "c.dat"])
      expect(bytesAt(join(dir, "a.txt"))).toEqual(payload.slice(0, 10000))
      expect(bytesAt(join(dir, "c.dat"))).toEqual(payload.slice(60000))
      // The side file: slot 0 is piece 0, slot 1 is piece 3; each holds b's bytes of that piece at their offsets.
      expect([...sideSlots(info)]).toEqual([[0, 0], [3, 1]])
      const sideBytes = bytesAt(side)
      expect(sideBytes.subarray(10000, 16384)).toEqual(payload.slice(10000, 16384))
      expect(sideBytes.subarray(16384, 16384 + 60000 - 3 * 16384)).toEqual(payload.slice(3 * 16384, 60000))
      for (const i of pieces) expect(yield* storage.readPiece(i)).toEqual(piece(info, payload, i))
      expect((yield* storage.files).map((f) => f.state)).toEqual(["complete", "skipped", "complete"])
      // Reopened: the shared pieces verify again from the files and the side file.
      const again = yield* Effect.scoped(Effect.flatMap(open(info, dir, { wanted }), (s) => s.scan))
      expect(indexes(info.pieceCount, (i) => again.has(i))).toEqual(pieces)
      expect(existsSync(join(dir, "sub"))).toBe(false)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("setWanted creates a file as it becomes wanted, with what the side file held of it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = three
      const storage = yield* open(info, dir, { wanted: [true, false, true] })
      yield* writeAll(storage, info, payload, [0, 3, 4, 5])
      yield* storage.setWanted([true, true, true])
      const bPart = join(dir, "sub", "b.bin.part")
      expect(statSync(bPart).size).toBe(50000)
      expect(bytesAt(bPart).subarray(0, 6384)).toEqual(payload.slice(10000, 16384))
      yield* writeAll(storage, info, payload, [1, 2])
      expect(bytesAt(join(dir, "sub", "b.bin"))).toEqual(payload.slice(10000, 60000))
      expect((yield* storage.files).map((f) => f.state)).toEqual(["complete", "complete", "complete"])
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a skipped file already on disk is used, not ignored", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = three
      yield* Effect.scoped(Effect.flatMap(open(info, dir), (s) => writeAll(s, info, payload, indexes(info.pieceCount))))
      const have = yield* Effect.scoped(Effect.flatMap(open(info, dir, { wanted: [false, false, true] }), (s) => s.scan))
      expect(have.isComplete).toBe(true)
      expect(readdirSync(dir).sort()).toEqual(["a.txt", "c.dat", "sub"])
    }).pipe(Effect.provide(LiveStorage))
  )
})
