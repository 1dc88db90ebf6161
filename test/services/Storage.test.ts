import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import type { Info } from "../../src/domain/Metainfo.js"
import { Hasher } from "../../src/services/Hasher.js"
import { type OpenOptions, Storage, StorageError, type TorrentStorage } from "../../src/services/Storage.js"
import { handInfo } from "../support/handInfo.js"
import { payloadBytes } from "../support/torrent.js"

const LiveStorage = Storage.Live.pipe(Layer.provide(Hasher.Sync))

/** A temporary folder removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "bt-storage-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const open = (info: Info, target: string, options?: OpenOptions) =>
  Effect.flatMap(Storage, (s) => s.open(info, target, options))

const piece = (info: Info, payload: Uint8Array, index: number) =>
  payload.slice(index * info.pieceLength, Math.min(info.totalLength, (index + 1) * info.pieceLength))

const writeAll = (storage: TorrentStorage, info: Info, payload: Uint8Array, indexes: ReadonlyArray<number>) =>
  Effect.forEach(indexes, (i) => storage.writePiece(i, piece(info, payload, i)), { concurrency: "unbounded", discard: true })

const indexesOf = (info: Info) => Array.from({ length: info.pieceCount }, (_, i) => i)
const members = (bits: { has: (i: number) => boolean }, info: Info) => indexesOf(info).filter((i) => bits.has(i))

// 80 KiB in 32 KiB pieces: the last piece is 16 KiB.
const single = handInfo(32768, [{ path: ["single.bin"], data: payloadBytes(81920, 3) }])

// Pieces of 16 KiB over files of awkward sizes: pieces span up to four files, two files are empty.
const multi = handInfo(16384, [
  { path: ["a.txt"], data: payloadBytes(10000, 1) },
  { path: ["empty"], data: new Uint8Array(0) },
  { path: ["sub", "dir", "b.bin"], data: payloadBytes(50000, 2) },
  { path: ["sub", "c"], data: payloadBytes(3, 3) },
  { path: ["sub", "nothing"], data: new Uint8Array(0) },
  { path: ["d.dat"], data: payloadBytes(30001, 4) }
])

const expectStorageError = (exit: Exit.Exit<unknown, unknown>) => {
  expect(Exit.isFailure(exit)).toBe(true)
  const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
  expect(error).toBeInstanceOf(StorageError)
  return error as StorageError
}

const openFds = () => readdirSync("/proc/self/fd").length

describe("Storage.Live", () => {
  it.scoped("single-file: writes pieces in any order, reads them back, the last piece short", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "out", "file.bin") // the parent folder does not exist yet
      const { info, payload } = single
      const storage = yield* open(info, target)
      expect(statSync(`${target}.part`).size).toBe(info.totalLength) // pre-sized, under its .part name
      yield* writeAll(storage, info, payload, [2, 0, 1])
      expect(existsSync(`${target}.part`)).toBe(false) // complete: renamed
      for (const i of indexesOf(info)) expect(yield* storage.readPiece(i)).toEqual(piece(info, payload, i))
      expect((yield* storage.readPiece(2)).length).toBe(16384)
      expect(yield* storage.readBlock(1, 100, 20000)).toEqual(payload.slice(32768 + 100, 32768 + 20100))
      yield* storage.flush
      expect(new Uint8Array(readFileSync(target))).toEqual(payload)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("multi-file: files at target/<path>, pieces spanning files, zero-length files created", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = multi
      const storage = yield* open(info, dir)
      yield* writeAll(storage, info, payload, indexesOf(info).reverse())
      yield* storage.flush
      let offset = 0
      for (const f of info.files) {
        const onDisk = new Uint8Array(readFileSync(join(dir, ...f.path)))
        expect(onDisk).toEqual(payload.slice(offset, offset + f.length))
        offset += f.length
      }
      expect(existsSync(join(dir, "hand"))).toBe(false) // not target/<name>/...
      // Piece 0 spans a.txt, sub/dir/b.bin; piece 3 spans b.bin, sub/c and d.dat.
      for (const i of indexesOf(info)) expect(yield* storage.readPiece(i)).toEqual(piece(info, payload, i))
      expect(yield* storage.readBlock(3, 60000 - 3 * 16384 - 10, 20)).toEqual(payload.slice(60000 - 10, 60000 + 10))
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("scan finds exactly the verified pieces: in the same session, after reopening, not a corrupted one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = multi
      const written = [0, 2, 4]
      const first = yield* open(info, dir)
      expect(members(yield* first.scan, info)).toEqual([])
      yield* writeAll(first, info, payload, written)
      expect(members(yield* first.scan, info)).toEqual(written)
      // A new session over the same folder (resume); flip one byte of piece 2 (inside sub/dir/b.bin.part).
      const bPath = join(dir, "sub", "dir", "b.bin.part")
      const b = readFileSync(bPath)
      b[2 * 16384 - 10000 + 5]! ^= 0xff
      writeFileSync(bPath, b)
      const again = yield* Effect.scoped(Effect.flatMap(open(info, dir), (s) => s.scan))
      expect(members(again, info)).toEqual([0, 4])
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a truncated file: its pieces are absent; create: false leaves it short, create: true extends it as a .part", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = multi
      yield* Effect.scoped(Effect.flatMap(open(info, dir), (s) => writeAll(s, info, payload, indexesOf(info))))
      const bPath = join(dir, "sub", "dir", "b.bin")
      truncateSync(bPath, 20000) // b.bin covers payload 10000..60000: now data ends at 30000, inside piece 1
      const seeding = yield* Effect.scoped(Effect.flatMap(open(info, dir, { create: false }), (s) => s.scan))
      expect(members(seeding, info)).toEqual([0, 4, 5])
      expect(statSync(bPath).size).toBe(20000)
      // Reading a piece beyond the end of a short file is an error when seeding.
      const short = yield* Effect.scoped(Effect.flatMap(open(info, dir, { create: false }), (s) => s.readPiece(2))).pipe(Effect.exit)
      const error = expectStorageError(short)
      expect(error.reason).toBe("Io")
      expect(error.message).toMatch(/^cannot read .*b\.bin: the file ends before byte/)
      // Resuming: the damaged file is ours (other pieces verify), extended, and back to .part until repaired.
      const resuming = yield* Effect.scoped(Effect.flatMap(open(info, dir), (s) => s.scan))
      expect(members(resuming, info)).toEqual([0, 4, 5])
      expect(existsSync(bPath)).toBe(false)
      expect(statSync(`${bPath}.part`).size).toBe(50000)
      expect(new Uint8Array(readFileSync(`${bPath}.part`)).subarray(0, 20000)).toEqual(payload.slice(10000, 30000))
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("never shrinks a file longer than the torrent says", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "single.bin")
      writeFileSync(target, new Uint8Array(100000).fill(1))
      yield* Effect.scoped(open(single.info, target))
      expect(statSync(target).size).toBe(100000)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("create: false needs every file: a missing one is NotFound", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const error = expectStorageError(yield* Effect.exit(open(multi.info, dir, { create: false })))
      expect(error.reason).toBe("NotFound")
      expect(error.operation).toBe("open")
      // Files are opened concurrently: any of them may be the first reported, under its own name (not .part).
      const nonEmpty = multi.info.files.filter((f) => f.length > 0).map((f) => `cannot open ${join(dir, ...f.path)}: no such file or folder`)
      expect(nonEmpty).toContain(error.message)
      expect(readdirSync(dir)).toEqual([]) // nothing created
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("closes its files when the scope closes", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const before = openFds()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* open(multi.info, dir)
          expect(openFds()).toBe(before + 4) // one per non-empty file
          yield* writeAll(storage, multi.info, multi.payload, [1])
        })
      )
      expect(openFds()).toBe(before)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("UnsafePath for a crafted Info whose path leaves the target folder; nothing is created", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "inner")
      const evil = handInfo(16384, [
        { path: ["ok.txt"], data: payloadBytes(10, 1) },
        { path: ["..", "escaped.txt"], data: payloadBytes(10, 2) }
      ])
      const error = expectStorageError(yield* Effect.exit(open(evil.info, target)))
      expect(error.reason).toBe("UnsafePath")
      expect(error.path).toBe(join(dir, "escaped.txt"))
      expect(error.message).toBe(`cannot open ${join(dir, "escaped.txt")}: the torrent's file path leaves the target folder`)
      expect(readdirSync(dir)).toEqual([])
      const absolute = handInfo(16384, [
        { path: ["a"], data: payloadBytes(10, 1) },
        { path: ["/etc/passwd"], data: payloadBytes(10, 1) }
      ])
      // path.resolve would jump to /etc/passwd: still refused.
      expect(expectStorageError(yield* Effect.exit(open(absolute.info, target))).reason).toBe("UnsafePath")
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a file in place of a folder is a typed mkdir error", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      mkdirSync(join(dir, "sub"))
      writeFileSync(join(dir, "sub", "dir"), "not a folder")
      const error = expectStorageError(yield* Effect.exit(open(multi.info, dir)))
      expect(error.operation).toBe("mkdir")
      expect(error.reason).toBe("Io")
      expect(error.message).toBe(`cannot mkdir ${join(dir, "sub", "dir")}: file already exists (EEXIST)`)
    }).pipe(Effect.provide(LiveStorage))
  )

  // sysfs refuses new files even to root, which chmod-based tests cannot do (and tests run as root here).
  it.scoped.runIf(existsSync("/sys/kernel"))("a target where files cannot be created is PermissionDenied", () =>
    Effect.gen(function* () {
      const error = expectStorageError(yield* Effect.exit(open(single.info, "/sys/kernel/bt-storage-test.bin")))
      expect(error.reason).toBe("PermissionDenied")
      expect(error.message).toBe("cannot open /sys/kernel/bt-storage-test.bin.part: permission denied")
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped.runIf(existsSync("/dev/full"))("a full disk is DiskFull (the single-file target is /dev/full)", () =>
    Effect.gen(function* () {
      const storage = yield* open(single.info, "/dev/full")
      const error = expectStorageError(yield* Effect.exit(storage.writePiece(0, piece(single.info, single.payload, 0))))
      expect(error.reason).toBe("DiskFull")
      expect(error.operation).toBe("write")
      expect(error.message).toBe("cannot write /dev/full: disk full")
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("wrong piece sizes and ranges outside a piece are defects", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const storage = yield* open(single.info, join(dir, "f"))
      const defect = (exit: Exit.Exit<unknown, unknown>) => Exit.isFailure(exit) && exit.cause._tag === "Die"
      expect(defect(yield* Effect.exit(storage.writePiece(2, new Uint8Array(32768))))).toBe(true)
      expect(defect(yield* Effect.exit(storage.writePiece(3, new Uint8Array(16384))))).toBe(true)
      expect(defect(yield* Effect.exit(storage.readBlock(2, 16000, 1000)))).toBe(true)
      expect(defect(yield* Effect.exit(storage.readBlock(0, 0, 0)))).toBe(true)
      expect(defect(yield* Effect.exit(storage.readPiece(-1)))).toBe(true)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("scan verifies through Hasher.Live", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const big = handInfo(262144, [{ path: ["big"], data: payloadBytes(262144 * 5 + 1000, 7) }])
      const storage = yield* open(big.info, join(dir, "big"))
      yield* writeAll(storage, big.info, big.payload, [1, 3, 5])
      expect(members(yield* storage.scan, big.info)).toEqual([1, 3, 5])
    }).pipe(Effect.provide(Storage.Live.pipe(Layer.provide(Hasher.Live))))
  )
})

describe("Storage.Memory", () => {
  it.scoped("writes, reads, scans; a target opened again sees the same bytes", () =>
    Effect.gen(function* () {
      const { info, payload } = multi
      const missing = expectStorageError(yield* Effect.exit(open(info, "mem", { create: false })))
      expect(missing.reason).toBe("NotFound")
      const first = yield* open(info, "mem")
      yield* writeAll(first, info, payload, [0, 3])
      expect(yield* first.readBlock(3, 10, 100)).toEqual(payload.slice(3 * 16384 + 10, 3 * 16384 + 110))
      expect(members(yield* first.scan, info)).toEqual([0, 3])
      const seeding = yield* open(info, "mem", { create: false })
      expect(yield* seeding.readPiece(3)).toEqual(piece(info, payload, 3))
      expect(members(yield* seeding.scan, info)).toEqual([0, 3])
    }).pipe(Effect.provide(Storage.Memory.pipe(Layer.provide(Hasher.Sync))))
  )
})

describe("Storage.Live: .part files", () => {
  /** Whether every piece covering file `f` is among `written` (zero-length files are always complete). */
  const completeFile = (info: Info, f: number, written: ReadonlySet<number>) => {
    const file = info.files[f]!
    if (file.length === 0) return true
    for (let p = Math.floor(file.offset / info.pieceLength); p <= Math.floor((file.offset + file.length - 1) / info.pieceLength); p++) {
      if (!written.has(p)) return false
    }
    return true
  }

  it.scoped("a partial download leaves only <path>.part, full-size; a reopen resumes from it and completion renames", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "file.bin")
      const { info, payload } = single
      yield* Effect.scoped(Effect.flatMap(open(info, target), (s) => writeAll(s, info, payload, [0, 2])))
      expect(readdirSync(dir)).toEqual(["file.bin.part"])
      expect(statSync(`${target}.part`).size).toBe(info.totalLength)
      const resumed = yield* open(info, target)
      expect(members(yield* resumed.scan, info)).toEqual([0, 2])
      expect(yield* resumed.files).toEqual([{ path: target, length: info.totalLength, state: "partial" }])
      yield* resumed.writePiece(1, piece(info, payload, 1))
      expect(readdirSync(dir)).toEqual(["file.bin"])
      expect(yield* resumed.files).toEqual([{ path: target, length: info.totalLength, state: "complete" }])
      // The descriptor survived the rename: reads and writes still reach the file.
      expect(yield* resumed.readPiece(1)).toEqual(piece(info, payload, 1))
      expect(new Uint8Array(readFileSync(target))).toEqual(payload)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("multi-file: each file is renamed when the pieces covering it are written; empty files are complete at once", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = multi
      const storage = yield* open(info, dir)
      const written = new Set<number>()
      const check = Effect.gen(function* () {
        const states = yield* storage.files
        info.files.forEach((file, f) => {
          const path = join(dir, ...file.path)
          const complete = completeFile(info, f, written)
          expect([f, existsSync(path), existsSync(`${path}.part`), states[f]!.state]).toEqual([f, complete, !complete, complete ? "complete" : "partial"])
        })
      })
      yield* check
      for (const i of [3, 0, 5, 4, 1, 2]) {
        yield* storage.writePiece(i, piece(info, payload, i))
        written.add(i)
        yield* check
      }
      let offset = 0
      for (const f of info.files) {
        expect(new Uint8Array(readFileSync(join(dir, ...f.path)))).toEqual(payload.slice(offset, offset + f.length))
        offset += f.length
      }
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a complete <path> from an earlier run is used in place: all verified, no .part created", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "file.bin")
      writeFileSync(target, single.payload)
      const storage = yield* open(single.info, target)
      expect(members(yield* storage.scan, single.info)).toEqual(indexesOf(single.info))
      expect(readdirSync(dir)).toEqual(["file.bin"])
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a .part longer than its file (another torrent's, same name) is cut to the length: the complete file is exact", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "file.bin")
      const { info, payload } = single
      const longer = new Uint8Array(info.totalLength * 3).fill(9)
      longer.set(piece(info, payload, 0), 0) // one piece of ours survives the cut (resume)
      writeFileSync(`${target}.part`, longer)
      const storage = yield* open(info, target)
      expect(statSync(`${target}.part`).size).toBe(info.totalLength)
      expect(members(yield* storage.scan, info)).toEqual([0])
      yield* writeAll(storage, info, payload, indexesOf(info).filter((i) => i !== 0))
      expect(readdirSync(dir)).toEqual(["file.bin"])
      expect(new Uint8Array(readFileSync(target))).toEqual(payload)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("a complete <path> with bytes past its length is ours and cut to the length", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "file.bin")
      const { info, payload } = single
      writeFileSync(target, Buffer.concat([payload, new Uint8Array(5000).fill(1)]))
      const storage = yield* open(info, target)
      expect(members(yield* storage.scan, info)).toEqual(indexesOf(info))
      expect(readdirSync(dir)).toEqual(["file.bin"])
      expect(new Uint8Array(readFileSync(target))).toEqual(payload)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("data at <path> with no verifying piece is not ours: NotOurs, left untouched; overwrite makes it a .part", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "notes.txt")
      const foreign = new Uint8Array(1000).fill(7)
      writeFileSync(target, foreign)
      const error = expectStorageError(yield* Effect.exit(Effect.scoped(Effect.flatMap(open(single.info, target), (s) => s.scan))))
      expect(error.reason).toBe("NotOurs")
      expect(error.message).toBe(`${target} exists and is not this torrent's data`)
      expect(new Uint8Array(readFileSync(target))).toEqual(foreign)
      expect(readdirSync(dir)).toEqual(["notes.txt"])
      const storage = yield* open(single.info, target, { overwrite: true })
      expect(members(yield* storage.scan, single.info)).toEqual([])
      expect(readdirSync(dir)).toEqual(["notes.txt.part"])
      expect(new Uint8Array(readFileSync(`${target}.part`))).toEqual(new Uint8Array(single.info.totalLength))
      yield* writeAll(storage, single.info, single.payload, indexesOf(single.info))
      expect(new Uint8Array(readFileSync(target))).toEqual(single.payload)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("seeding (create: false) reads a .part when that is all there is, and renames nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "file.bin")
      const { info, payload } = single
      yield* Effect.scoped(Effect.flatMap(open(info, target), (s) => writeAll(s, info, payload, [1])))
      const seeding = yield* open(info, target, { create: false })
      expect(members(yield* seeding.scan, info)).toEqual([1])
      expect(yield* seeding.readPiece(1)).toEqual(piece(info, payload, 1))
      expect(readdirSync(dir)).toEqual(["file.bin.part"])
    }).pipe(Effect.provide(LiveStorage))
  )
})

describe("Storage.Live: resume without reading", () => {
  it.scoped("stamps: the open's are the files as found; writes change the modification time", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = multi
      const first = yield* open(info, dir)
      const opened = yield* first.stamps
      expect(opened.map((s) => s?.length)).toEqual([10000, undefined, 50000, 3, undefined, 30001])
      yield* writeAll(first, info, payload, [0])
      const after = yield* first.stamps
      expect(after[0]!.mtimeNs).toBeGreaterThanOrEqual(opened[0]!.mtimeNs)
      expect(after[5]).toEqual(opened[5])
      const again = yield* Effect.scoped(Effect.map(open(info, dir), (s) => s.stampsAtOpen))
      expect(again).toEqual(after)
    }).pipe(Effect.provide(LiveStorage))
  )

  it.scoped("resume settles pieces without reading them and reads the others", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { info, payload } = single
      const first = yield* open(info, dir + "/f")
      yield* writeAll(first, info, payload, [0, 1, 2])
      // Damage piece 1 of the completed file behind the storage's back: only a read could notice.
      const part = join(dir, "f")
      const bytes = readFileSync(part)
      bytes[32768 + 7]! ^= 0xff
      writeFileSync(part, bytes)
      const bits = (indexes: ReadonlyArray<number>) => {
        const b = Bitfield.empty(info.pieceCount)
        for (const i of indexes) b.add(i)
        return b
      }
      const reopen = (settled: ReadonlyArray<number>, verified: ReadonlyArray<number>) =>
        Effect.scoped(Effect.flatMap(open(info, dir + "/f"), (s) => s.resume(bits(settled), bits(verified))))
      expect(members(yield* reopen([0, 1], [0, 1]), info)).toEqual([0, 1, 2])
      expect(members(yield* reopen([], []), info)).toEqual([0, 2])
      // Settled as missing: not read, so piece 2's good data is not found either.
      expect(members(yield* reopen([1, 2], [1]), info)).toEqual([0, 1])
    }).pipe(Effect.provide(LiveStorage))
  )
})
