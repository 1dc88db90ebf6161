/**
 * BEP 52 magnet links against libtorrent (python3-libtorrent), on loopback only (no tracker, no
 * DHT: the link's `x.pe` names the one peer):
 * - libtorrent seeds a v2-only torrent of multi-piece files (one of more than 512 pieces, so its
 *   layer comes in two requests) and a hybrid one; our `download` of the magnet link fetches the
 *   info dict and then the piece layers by hash request, and gets every file exactly;
 * - our `seed` of a v2-only torrent answers the hash requests of a libtorrent leecher started from
 *   the magnet link alone, which completes.
 *
 * Ports: libtorrent seeding on 29301, leeching on 29302; our download on 29360, our seed on 29361.
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
const ltSeedPort = 29301
const ltLeechPort = 29302
const ourPort = 29360
const ltCreate = path.join(repoRoot, "scripts/reference-clients/lt-create.py")
/** 16 KiB pieces: big.bin is 550 of them. */
const pieceLength = 16384

const files: ReadonlyArray<readonly [string, number]> = [["big.bin", 9_000_000], ["small.txt", 777], ["sub/b.bin", 300_001]]
const names = files.map(([n]) => n)

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(tmpdir(), "bt-v2magnet-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

/** The payload under `<dir>/data/multi`, and a torrent of it made by libtorrent; gives the torrent's `info --json`. */
const prepare = (dir: string, kind: "v2" | "hybrid") =>
  Effect.gen(function* () {
    const source = path.join(dir, "data", "multi")
    yield* Effect.promise(async () => {
      await fs.mkdir(path.join(source, "sub"), { recursive: true })
      for (const [i, [name, size]] of files.entries()) await fs.writeFile(path.join(source, name), payloadBytes(size, i + 11))
    })
    const torrent = path.join(dir, "t.torrent")
    const made = yield* runProcess(Reference.debianPython, [ltCreate, kind, source, torrent, "--piece-length", String(pieceLength)], { timeoutMs: 60_000 })
    assert.strictEqual(made.code, 0, made.stderr)
    const info = yield* runCli(["info", "--json", torrent])
    assert.strictEqual(info.code, 0, info.stderr)
    const doc = JSON.parse(info.stdout) as { infoHash: string; infoHashV2: string; hybrid: boolean }
    assert.strictEqual(doc.hybrid, kind === "hybrid")
    return { torrent, source, doc }
  })

const assertSameFiles = (source: string, copy: string) =>
  Effect.promise(async () => {
    for (const name of names) {
      const [want, got] = await Promise.all([fs.readFile(path.join(source, name)), fs.readFile(path.join(copy, name))])
      assert.strictEqual(sha256(got), sha256(want), name)
    }
  })

const magnet = (doc: { infoHash: string; infoHashV2: string }, kind: "v2" | "hybrid", peer: string) =>
  `magnet:?${kind === "hybrid" ? `xt=urn:btih:${doc.infoHash}&` : ""}xt=urn:btmh:1220${doc.infoHashV2}&dn=multi&x.pe=${peer}`

describe("BEP 52 magnet links with libtorrent", () => {
  for (const kind of ["v2", "hybrid"] as const) {
    it.live(`download of a ${kind === "v2" ? "v2-only" : "hybrid"} magnet link fetches the piece layers from libtorrent and gets every file exactly`, () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const { doc, source, torrent } = yield* prepare(dir, kind)
        const command = Reference.libtorrent("seed", torrent, path.join(dir, "data"), loopback, ltSeedPort)
        const seeder = yield* startProcess(command.file, command.args, { ready: /^lt: seeding /m, readyTimeoutMs: 60_000 })
        const out = path.join(dir, "out")
        const result = yield* runCli(
          ["--log-level", "debug", "download", "--quiet", "--no-dht", "--host", loopback, "--port", String(ourPort), "-o", out, magnet(doc, kind, `${loopback}:${ltSeedPort}`)],
          { timeoutMs: 120_000 }
        )
        const lt = yield* seeder.output
        assert.strictEqual(result.code, 0, `${result.stderr}\nlibtorrent:\n${lt.stdout}${lt.stderr}`)
        // The layers came from the peer: without them a v2-only download could not have started.
        if (kind === "hybrid") assert.notMatch(result.stderr, /goes on with its SHA-1 hashes only/)
        yield* assertSameFiles(source, out)
      }).pipe(Effect.scoped))
  }

  it.live("our seed answers the hash requests of a libtorrent leecher started from a v2-only magnet link", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { doc, source, torrent } = yield* prepare(dir, "v2")
      yield* startCli(["seed", "--no-dht", "--host", loopback, "--port", String(ourPort + 1), torrent, source], { ready: /listening on / })
      const leechDir = path.join(dir, "lt-leech")
      yield* Effect.promise(() => fs.mkdir(leechDir, { recursive: true }))
      const command = Reference.libtorrent("leech", magnet(doc, "v2", `${loopback}:${ourPort + 1}`), leechDir, loopback, ltLeechPort, {
        peers: [`${loopback}:${ourPort + 1}`],
        timeoutS: 60
      })
      const leech = yield* runProcess(command.file, command.args, { timeoutMs: 90_000 })
      assert.strictEqual(leech.code, 0, `${leech.stdout}${leech.stderr}`)
      assert.match(leech.stdout, /^lt: done in /m)
      yield* assertSameFiles(source, path.join(leechDir, "multi"))
    }).pipe(Effect.scoped))
})
