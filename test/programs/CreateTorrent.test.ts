import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { expect, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as path from "node:path"
import { concatBytes, equalBytes, toHex } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { createTorrent } from "../../src/programs/CreateTorrent.js"
import { payloadBytes, pieceHashes } from "../support/torrent.js"

const writeAll = (root: string, files: ReadonlyArray<readonly [string, Uint8Array]>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    for (const [rel, data] of files) {
      yield* fs.makeDirectory(path.dirname(path.join(root, rel)), { recursive: true })
      yield* fs.writeFile(path.join(root, rel), data)
    }
  })

/** A temp dir holding `folder/` (the content) and `outside.bin` (a symlink target outside it). */
const fixture = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const tmp = yield* fs.makeTempDirectoryScoped({ prefix: "bt-create-" })
  const root = path.join(tmp, "folder")
  // Unaligned sizes around 16 KiB pieces: pieces 1 and 2 both span file boundaries.
  const files = {
    "B.bin": payloadBytes(16_385, 1),
    "a.bin": payloadBytes(0, 2),
    ".hidden": payloadBytes(5_000, 3),
    "sub/deep/z.bin": payloadBytes(30_001, 4),
    "sub/c.bin": payloadBytes(1, 5),
    "é.txt": payloadBytes(777, 6)
  }
  yield* writeAll(root, Object.entries(files))
  yield* fs.makeDirectory(path.join(root, "empty/nested"), { recursive: true })
  yield* fs.writeFile(path.join(tmp, "outside.bin"), payloadBytes(100, 7))
  yield* fs.symlink(path.join(tmp, "outside.bin"), path.join(root, "link-out"))
  yield* fs.symlink("B.bin", path.join(root, "link-in"))
  yield* fs.symlink("missing", path.join(root, "link-dangling"))
  yield* fs.symlink("sub", path.join(root, "link-dir"))
  return { tmp, root, files }
})

layer(NodeContext.layer)("createTorrent", (it) => {
  it.scoped("a folder: files in byte order of their paths, hidden included, links and empty folders handled, hashes across files", () =>
    Effect.gen(function* () {
      const { files, root } = yield* fixture
      const created = yield* createTorrent(root, { pieceLength: 16384, announce: ["http://127.0.0.1:1/announce"] })
      const meta = Either.getOrThrow(parseTorrent(created.bytes))
      const order = [".hidden", "B.bin", "a.bin", "link-in", "sub/c.bin", "sub/deep/z.bin", "é.txt"]
      expect(meta.info.files.map((f) => f.path.join("/"))).toEqual(order)
      expect(meta.info.name).toBe("folder")
      expect(meta.info.isMultiFile).toBe(true)
      const data = (p: string) => (p === "link-in" ? files["B.bin"] : files[p as keyof typeof files])
      expect(meta.info.files.map((f) => f.length)).toEqual(order.map((p) => data(p).length))
      // Independent check: hash the concatenation in that order.
      const payload = concatBytes(order.map(data))
      expect(meta.info.totalLength).toBe(payload.length)
      expect(toHex(concatBytes(meta.info.pieceHashes))).toBe(toHex(pieceHashes(payload, 16384)))
      expect(meta.info.files[1]!.offset % 16384).not.toBe(0)
      expect(equalBytes(created.infoHash, meta.info.infoHash)).toBe(true)
      expect(created.skipped.map((s) => [path.basename(s.path), s.why]).sort()).toEqual([
        ["link-dangling", "dangling symlink"],
        ["link-dir", "symlink to a folder"],
        ["link-out", "symlink outside the folder"]
      ])
      expect(created.sources.map((s) => path.relative(root, s))).toEqual(order)
    }))

  it.scoped("is reproducible, and a torrent saved inside the folder is left out when excluded", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const { root } = yield* fixture
      const first = yield* createTorrent(root, { announce: ["http://127.0.0.1:1/announce"] })
      const output = path.join(root, "folder.torrent")
      yield* fs.writeFile(output, first.bytes)
      const second = yield* createTorrent(root, { announce: ["http://127.0.0.1:1/announce"], exclude: [output] })
      expect(equalBytes(first.bytes, second.bytes)).toBe(true)
      const third = yield* createTorrent(root, { announce: ["http://127.0.0.1:1/announce"] })
      expect(equalBytes(first.infoHash, third.infoHash)).toBe(false)
    }))

  it.scoped("a single file, default piece length and name, pieces longer than one read chunk", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const tmp = yield* fs.makeTempDirectoryScoped({ prefix: "bt-create-" })
      const file = path.join(tmp, "movie.mkv")
      const data = payloadBytes(5 * 1024 * 1024 + 123, 9)
      yield* fs.writeFile(file, data)
      const small = Either.getOrThrow(parseTorrent((yield* createTorrent(file)).bytes))
      expect(small.info).toMatchObject({ name: "movie.mkv", isMultiFile: false, pieceLength: 16384, totalLength: data.length })
      expect(small.info.files).toEqual([{ path: ["movie.mkv"], length: data.length, offset: 0 }])
      expect(toHex(concatBytes(small.info.pieceHashes))).toBe(toHex(pieceHashes(data, 16384)))
      // 2 MiB pieces are read in 1 MiB chunks: the hash must run on across them.
      const big = yield* createTorrent(file, { pieceLength: 2 * 1024 * 1024, name: "renamed.mkv", private: true })
      expect(big.metainfo.info).toMatchObject({ name: "renamed.mkv", pieceCount: 3, private: true })
      expect(toHex(concatBytes(big.metainfo.info.pieceHashes))).toBe(toHex(pieceHashes(data, 2 * 1024 * 1024)))
    }))

  it.scoped("typed errors: missing path, bad piece length before any reading, unsafe file names, empty folder", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const tmp = yield* fs.makeTempDirectoryScoped({ prefix: "bt-create-" })
      const missing = yield* Effect.flip(createTorrent(path.join(tmp, "nope")))
      expect(missing).toMatchObject({ _tag: "CreateTorrentError", reason: "NotFound" })
      expect(missing.message).toContain("no such file or folder")

      const badLength = yield* Effect.flip(createTorrent(path.join(tmp, "nope"), { pieceLength: 10_000 }))
      expect(badLength).toMatchObject({ _tag: "TorrentBuildError", reason: "PieceLength" })

      yield* writeAll(path.join(tmp, "weird"), [["ok.txt", payloadBytes(10)], ["c:drive.txt", payloadBytes(10)]])
      const unsafe = yield* Effect.flip(createTorrent(path.join(tmp, "weird")))
      expect(unsafe).toMatchObject({ _tag: "TorrentBuildError", reason: "UnsafeName" })
      expect(unsafe.message).toContain("c:drive.txt")

      yield* writeAll(path.join(tmp, "back"), [["a\\b", payloadBytes(10)]])
      expect(yield* Effect.flip(createTorrent(path.join(tmp, "back")))).toMatchObject({ reason: "UnsafeName" })

      yield* fs.makeDirectory(path.join(tmp, "hollow/inner"), { recursive: true })
      yield* fs.writeFile(path.join(tmp, "hollow/inner/zero"), new Uint8Array(0))
      expect(yield* Effect.flip(createTorrent(path.join(tmp, "hollow")))).toMatchObject({ reason: "Empty" })
    }))
})
