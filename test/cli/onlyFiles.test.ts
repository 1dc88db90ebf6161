/**
 * `download --only-files` and BEP 47 padding through the bundled CLI: our `seed` serves a
 * multi-file torrent on 127.0.0.1 (found through a fake tracker), and the download writes exactly
 * the selected files; no skipped file and no padding appears on disk.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { concatBytes } from "../../src/domain/Bytes.js"
import { fakeHttpTracker } from "../support/FakeTracker.js"
import { cliPath, ensureBuilt } from "../support/cli.js"
import { runProcess, startProcess } from "../support/Process.js"
import { payloadBytes, pieceHashes, torrentBytes } from "../support/torrent.js"

interface Entry {
  readonly path: ReadonlyArray<string>
  readonly data: Uint8Array
  readonly attr?: string
}

const pieceLength = 16384

/** A multi-file info dict; `attr` entries (BEP 47) as given. */
const infoOf = (name: string, entries: ReadonlyArray<Entry>) =>
  Bencode.dict({
    files: entries.map((e) =>
      Bencode.dict({
        length: Bencode.int(e.data.length),
        path: e.path.map(Bencode.text),
        ...(e.attr === undefined ? {} : { attr: Bencode.text(e.attr) })
      })
    ),
    name: Bencode.text(name),
    "piece length": Bencode.int(pieceLength),
    pieces: pieceHashes(concatBytes(entries.map((e) => e.data)), pieceLength)
  })

const scratch = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "bt-only-files-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Everything under `dir`, as relative paths, sorted. */
const listTree = (dir: string, prefix = ""): Array<string> =>
  readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? listTree(join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`]))
    .sort()

/**
 * Our seeder of `entries` (padding not on disk) and a torrent file announcing to a tracker that
 * hands out the seeder's address; gives the torrent's path.
 */
const seeded = (dir: string, entries: ReadonlyArray<Entry>) =>
  Effect.gen(function* () {
    let seederPort = 0
    const tracker = yield* fakeHttpTracker(() => ({
      body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: new Uint8Array([127, 0, 0, 1, seederPort >> 8, seederPort & 255]) }))
    }))
    const folder = join(dir, "seed", "multi")
    for (const e of entries) {
      if (e.attr?.includes("p") === true) continue
      mkdirSync(dirname(join(folder, ...e.path)), { recursive: true })
      writeFileSync(join(folder, ...e.path), e.data)
    }
    const torrent = join(dir, "multi.torrent")
    writeFileSync(torrent, torrentBytes(infoOf("multi", entries), { announce: Bencode.text(tracker.url) }))
    yield* Effect.promise(ensureBuilt)
    const seeder = yield* startProcess(process.execPath, [cliPath, "seed", torrent, folder, "--port", "0", "--host", "127.0.0.1", "--no-dht"], {
      ready: /listening on 127\.0\.0\.1:\d+/
    })
    const { stderr } = yield* seeder.output
    seederPort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(stderr)![1])
    return torrent
  })

const download = (torrent: string, out: string, ...flags: ReadonlyArray<string>) =>
  runProcess(process.execPath, [cliPath, "download", "-o", out, torrent, "--port", "0", "--host", "127.0.0.1", "--no-dht", "--quiet", ...flags], {
    timeoutMs: 60_000
  })

// Files 0-3; piece 1 is shared by a.txt and sub/b.bin, piece 6 by c.dat and d.dat.
const files: ReadonlyArray<Entry> = [
  { path: ["a.txt"], data: payloadBytes(20000, 1) },
  { path: ["sub", "b.bin"], data: payloadBytes(50000, 2) },
  { path: ["c.dat"], data: payloadBytes(30001, 3) },
  { path: ["d.dat"], data: payloadBytes(5000, 4) }
]

describe("download --only-files (CLI)", () => {
  it.scoped("writes exactly the selected files; skipped ones do not appear, their shared bytes go to the hidden side file", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const torrent = yield* seeded(dir, files)
      const out = join(dir, "out")
      const result = yield* download(torrent, out, "--only-files", "0,2")
      expect(result.code, result.stdout + result.stderr).toBe(0)
      const tree = listTree(out)
      expect(tree.filter((p) => !p.startsWith("."))).toEqual(["a.txt", "c.dat"])
      expect(tree.filter((p) => p.startsWith(".")).map((p) => /^\.[0-9a-f]{40}\.parts$/.test(p))).toEqual([true])
      expect(readFileSync(join(out, "a.txt")).equals(files[0]!.data)).toBe(true)
      expect(readFileSync(join(out, "c.dat")).equals(files[2]!.data)).toBe(true)
    }))

  it.scoped("a bad --only-files is a usage error (exit 2) naming the problem", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const torrent = join(dir, "multi.torrent")
      writeFileSync(torrent, torrentBytes(infoOf("multi", files)))
      yield* Effect.promise(ensureBuilt)
      const out = join(dir, "out")
      const outOfRange = yield* download(torrent, out, "--only-files", "1,4")
      expect(outOfRange.code).toBe(2)
      expect(outOfRange.stderr.split("\n")[0]).toBe("error: --only-files: file 4 does not exist: the torrent has 4 files (0-3)")
      const malformed = yield* download(torrent, out, "--only-files", "3-1")
      expect(malformed.code).toBe(2)
      expect(malformed.stderr.split("\n")[0]).toBe("error: --only-files: the range 3-1 runs backwards")
      expect(readdirSync(dir)).toEqual(["multi.torrent"])
    }))
})

describe("download of a torrent with BEP 47 pad files (CLI)", () => {
  it.scoped("completes with the data files exact and no .pad folder or padding file on disk", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const padded: ReadonlyArray<Entry> = [
        { path: ["a.txt"], data: payloadBytes(20000, 1) },
        { path: [".pad", "12768"], data: new Uint8Array(12768), attr: "p" },
        { path: ["b.bin"], data: payloadBytes(40000, 2) },
        { path: [".pad", "9152"], data: new Uint8Array(9152), attr: "p" },
        { path: ["c.dat"], data: payloadBytes(5000, 3), attr: "x" }
      ]
      const torrent = yield* seeded(dir, padded)
      const out = join(dir, "out")
      const result = yield* download(torrent, out)
      expect(result.code, result.stdout + result.stderr).toBe(0)
      expect(listTree(out)).toEqual(["a.txt", "b.bin", "c.dat"])
      for (const e of padded.filter((e) => e.attr !== "p")) expect(readFileSync(join(out, ...e.path)).equals(e.data)).toBe(true)
      expect(statSync(join(out, "c.dat")).mode & 0o777).toBe(0o755) // attr "x"
    }))
})
