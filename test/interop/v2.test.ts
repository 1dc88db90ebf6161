/**
 * BEP 52 (v2 and hybrid torrents) against libtorrent (python3-libtorrent):
 * - libtorrent's create_torrent makes a v2-only single-file, a v2-only multi-file and a hybrid
 *   multi-file torrent (scripts/reference-clients/lt-create.py), libtorrent seeds each, and our
 *   `download` gets every file exactly (v2 pieces checked by merkle root, hybrid ones by both hashes);
 * - our `create --v2` gives the same info hashes as libtorrent's create_torrent for the same folder,
 *   and a libtorrent leecher dialling only our `seed` downloads it exactly.
 *
 * Ports: 29200 (our tracker), libtorrent seeding on 29201, leeching on 29202, our seed on 29260.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { payloadBytes } from "../support/torrent.js"
import { repoRoot } from "../support/cli.js"
import * as Reference from "../support/ReferenceClients.js"
import { runCli, runProcess, startCli, startProcess } from "../support/Swarm.js"

const loopback = "127.0.0.1"
const trackerPort = 29200
const announce = `http://${loopback}:${trackerPort}/announce`
const ltCreate = path.join(repoRoot, "scripts/reference-clients/lt-create.py")

/** A folder of files whose sizes end off piece boundaries (so v2 needs padding), plus an empty one. */
const multiFiles: ReadonlyArray<readonly [string, number]> = [["a.bin", 1_500_000], ["c.txt", 777], ["empty", 0], ["sub/b.bin", 700_001]]

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const writePayload = (root: string) =>
  Effect.promise(async () => {
    await fs.mkdir(path.join(root, "multi/sub"), { recursive: true })
    for (const [i, [name, size]] of multiFiles.entries()) await fs.writeFile(path.join(root, "multi", name), payloadBytes(size, i + 1))
    await fs.writeFile(path.join(root, "single.bin"), payloadBytes(1_234_567, 9))
  })

/** Every file of the payload at `source` is byte for byte at `copy`. */
const assertSameFiles = (source: string, copy: string, names: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    for (const name of names) {
      const [want, got] = await Promise.all([fs.readFile(path.join(source, name)), fs.readFile(path.join(copy, name))])
      assert.strictEqual(sha256(got), sha256(want), name)
    }
  })

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(tmpdir(), "bt-v2-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

const ltMake = (kind: "v2" | "hybrid", source: string, out: string) =>
  runProcess(Reference.debianPython, [ltCreate, kind, source, out, "--announce", announce, "--piece-length", "65536"], { timeoutMs: 60_000 }).pipe(
    Effect.tap((r) => assert.strictEqual(r.code, 0, r.stderr)),
    Effect.map((r) => r.stdout)
  )

/** A libtorrent seeder of `torrent` from `dataDir`, announced to our tracker. */
const ltSeeder = (torrent: string, dataDir: string) => {
  const command = Reference.libtorrent("seed", torrent, dataDir, loopback, trackerPort + 1)
  return startProcess(command.file, command.args, { ready: /^lt: seeding /m, readyTimeoutMs: 60_000 })
}

const download = (torrent: string, out: string) =>
  runCli(["download", "--quiet", "--no-dht", "--host", loopback, "--port", String(trackerPort + 60), "-o", out, torrent], { timeoutMs: 120_000 })

const cases = [
  { label: "a v2-only single-file torrent", kind: "v2", source: "single.bin", names: [""] },
  { label: "a v2-only multi-file torrent", kind: "v2", source: "multi", names: multiFiles.map(([n]) => n) },
  { label: "a hybrid multi-file torrent", kind: "hybrid", source: "multi", names: multiFiles.map(([n]) => n) }
] as const

describe("BEP 52 with libtorrent", () => {
  for (const c of cases) {
    it.live(`download gets ${c.label} made and seeded by libtorrent exactly`, () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        yield* writePayload(path.join(dir, "data"))
        yield* startCli(["tracker", "--port", String(trackerPort)], { ready: /^Tracker URL: /m })
        const torrent = path.join(dir, "t.torrent")
        yield* ltMake(c.kind, path.join(dir, "data", c.source), torrent)
        const info = yield* runCli(["info", "--json", torrent])
        const doc = JSON.parse(info.stdout)
        assert.strictEqual(doc.metaVersion, 2, info.stderr)
        assert.strictEqual(doc.hybrid, c.kind === "hybrid")
        const seeder = yield* ltSeeder(torrent, path.join(dir, "data"))
        const out = path.join(dir, "out", c.source)
        const result = yield* download(torrent, out)
        const lt = yield* seeder.output
        assert.strictEqual(result.code, 0, `${result.stderr}\nlibtorrent:\n${lt.stdout}${lt.stderr}`)
        yield* assertSameFiles(path.join(dir, "data", c.source), out, c.names)
      }).pipe(Effect.scoped))
  }

  it.live("create --v2 matches libtorrent's info hash, and libtorrent downloads it from our seed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const data = path.join(dir, "data")
      yield* writePayload(data)
      yield* startCli(["tracker", "--port", String(trackerPort)], { ready: /^Tracker URL: /m })
      const ours = path.join(dir, "ours.torrent")
      const created = yield* runCli(["create", "--v2", "--piece-length", "65536", "-a", announce, "-o", ours, path.join(data, "multi")])
      assert.strictEqual(created.code, 0, created.stderr)
      const lt = yield* ltMake("v2", path.join(data, "multi"), path.join(dir, "lt.torrent"))
      const v2 = /Info Hash v2: ([0-9a-f]{64})/.exec(created.stdout)?.[1]
      assert.include(lt, `v2=${v2}`)
      // Our seed serves a copy that our client downloaded (from libtorrent, seeding our torrent).
      yield* ltSeeder(ours, data)
      const copy = path.join(dir, "copy", "multi")
      const fetched = yield* download(ours, copy)
      assert.strictEqual(fetched.code, 0, fetched.stderr)
      const trackerless = path.join(dir, "trackerless.torrent")
      assert.strictEqual((yield* runCli(["create", "--v2", "--piece-length", "65536", "-o", trackerless, path.join(data, "multi")])).code, 0)
      yield* startCli(["seed", "--no-dht", "--host", loopback, "--port", String(trackerPort + 60), trackerless, copy], {
        ready: /listening on /
      })
      const leechDir = path.join(dir, "lt-leech")
      yield* Effect.promise(() => fs.mkdir(leechDir, { recursive: true }))
      const command = Reference.libtorrent("leech", trackerless, leechDir, loopback, trackerPort + 2, {
        peers: [`${loopback}:${trackerPort + 60}`],
        timeoutS: 60
      })
      const leech = yield* runProcess(command.file, command.args, { timeoutMs: 90_000 })
      assert.strictEqual(leech.code, 0, `${leech.stdout}${leech.stderr}`)
      assert.match(leech.stdout, /^lt: done in /m)
      yield* assertSameFiles(path.join(data, "multi"), path.join(leechDir, "multi"), multiFiles.map(([n]) => n))
    }).pipe(Effect.scoped))
})
