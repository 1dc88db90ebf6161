/** A session's removal of a torrent's files on disk: only its own files go, then the folders they leave empty. */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { removeData } from "../../src/programs/session/DataFiles.js"
import { multiFileInfo, payloadBytes, torrentBytes } from "../support/torrent.js"

describe("DataFiles.removeData", () => {
  it.scoped("removes a multi-file torrent's files, finished and not, and its emptied folders, but nothing else", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "bt-datafiles-" })
      const files = [{ path: ["a.bin"], data: payloadBytes(100, 1) }, { path: ["sub", "deep", "b.bin"], data: payloadBytes(200, 2) }]
      const info = Either.getOrThrow(parseTorrent(torrentBytes(multiFileInfo("album", files, 16384), {}))).info
      yield* fs.makeDirectory(`${dir}/album/sub/deep`, { recursive: true })
      yield* fs.makeDirectory(`${dir}/album/keep`, { recursive: true })
      yield* fs.writeFile(`${dir}/album/a.bin`, files[0]!.data)
      yield* fs.writeFile(`${dir}/album/sub/deep/b.bin.part`, files[1]!.data)
      yield* fs.writeFile(`${dir}/album/keep/mine.txt`, new Uint8Array([1]))
      yield* removeData(info, dir)
      expect(yield* fs.exists(`${dir}/album/a.bin`)).toBe(false)
      expect(yield* fs.exists(`${dir}/album/sub`)).toBe(false)
      // A file that is not the torrent's keeps its folder, and the torrent's folder with it.
      expect(yield* fs.readDirectory(`${dir}/album`)).toEqual(["keep"])
      yield* fs.remove(`${dir}/album/keep`, { recursive: true })
      yield* removeData(info, dir)
      expect(yield* fs.exists(`${dir}/album`)).toBe(false)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
