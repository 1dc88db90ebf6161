/**
 * BEP 47 padding against libtorrent: a hybrid multi-file torrent made by libtorrent's
 * `create_torrent` (which pads every file to a piece boundary, under `.pad/`) and seeded by it
 * downloads exactly, with no `.pad` folder on disk; `--only-files` takes only the chosen file.
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { fakeHttpTracker } from "../support/FakeTracker.js"
import { ensureBuilt, runCli } from "../support/cli.js"
import { startProcess } from "../support/Process.js"
import * as Reference from "../support/ReferenceClients.js"
import { payloadBytes } from "../support/torrent.js"

const loopback = "127.0.0.1"
const ltPort = 41000 + (process.pid % 1000)

/** libtorrent makes a hybrid (v1 + v2) torrent of `folder` announcing to `tracker`; it prints the file entries. */
const makeTorrent = (folder: string, torrent: string, tracker: string) => {
  const script = [
    "import libtorrent as lt, sys",
    "fs = lt.file_storage()",
    "lt.add_files(fs, sys.argv[1])",
    "t = lt.create_torrent(fs, 16384)",
    "t.add_tracker(sys.argv[3])",
    "lt.set_piece_hashes(t, sys.argv[4])",
    "open(sys.argv[2], 'wb').write(lt.bencode(t.generate()))"
  ].join("\n")
  const made = spawnSync(Reference.debianPython, ["-c", script, folder, torrent, tracker, join(folder, "..")], { encoding: "utf8", timeout: 30_000 })
  if (made.status !== 0) throw new Error(`create_torrent failed: ${made.stderr}`)
}

const listTree = (dir: string, prefix = ""): Array<string> =>
  readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? listTree(join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`]))
    .sort()

const files = [
  { name: "a.bin", data: payloadBytes(20000, 1) },
  { name: "b.bin", data: payloadBytes(40000, 2) },
  { name: "c.bin", data: payloadBytes(5000, 3) }
]

describe("BEP 47 pad files with libtorrent", () => {
  it.scoped("a libtorrent hybrid torrent downloads exactly from libtorrent, with no padding on disk; --only-files too", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "bt-pad-lt-"))),
        (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
      )
      const tracker = yield* fakeHttpTracker(() => ({
        body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: new Uint8Array([127, 0, 0, 1, ltPort >> 8, ltPort & 255]) }))
      }))
      const seedDir = join(dir, "seed")
      mkdirSync(join(seedDir, "multi"), { recursive: true })
      for (const f of files) writeFileSync(join(seedDir, "multi", f.name), f.data)
      const torrent = join(dir, "multi.torrent")
      makeTorrent(join(seedDir, "multi"), torrent, tracker.url)
      const raw = readFileSync(torrent).toString("latin1")
      expect(raw).toContain("4:.pad") // libtorrent did pad the files

      const seed = Reference.libtorrent("seed", torrent, seedDir, loopback, ltPort)
      yield* startProcess(seed.file, seed.args, { ready: /^lt: seeding /m, readyTimeoutMs: 30_000 })

      yield* Effect.promise(ensureBuilt)
      const out = join(dir, "out")
      const whole = yield* Effect.promise(() => runCli(["download", "-o", out, torrent, "--host", loopback, "--port", "0", "--no-dht", "--quiet"], 90_000))
      expect(whole.code, whole.stderr).toBe(0)
      expect(listTree(out)).toEqual(["a.bin", "b.bin", "c.bin"])
      for (const f of files) expect(readFileSync(join(out, f.name)).equals(f.data)).toBe(true)

      // Index 2 is b.bin (index 1 is the padding after a.bin, as `info --details` lists it).
      const chosen = join(dir, "chosen")
      const only = yield* Effect.promise(() =>
        runCli(["download", "-o", chosen, torrent, "--only-files", "2", "--host", loopback, "--port", "0", "--no-dht", "--quiet"], 90_000)
      )
      expect(only.code, only.stderr).toBe(0)
      expect(listTree(chosen)).toEqual(["b.bin"]) // aligned: b shares no piece with another file, so no side file
      expect(readFileSync(join(chosen, "b.bin")).equals(files[1]!.data)).toBe(true)
    }), { timeout: 240_000 })
})
