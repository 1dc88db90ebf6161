/**
 * The DHT from the bundled CLI, on loopback only: `dht_peers` against in-process DHT nodes, and a
 * trackerless magnet download from our own `seed`, found through the DHT.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { spawn } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { Dht, type DhtNode } from "../../src/services/Dht.js"
import { Udp } from "../../src/services/Udp.js"
import { cliPath, ensureBuilt, repoRoot, runCli } from "../support/cli.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const DhtLoopback = Dht.layer.pipe(Layer.provide(Layer.merge(Udp.Live, NodeFileSystem.layer)))

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-dht-cli-"))),
  (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
)

/** Three DHT nodes on 127.0.0.1 that know each other; the first is the bootstrap node. */
const loopbackDht = Effect.gen(function* () {
  const dht = yield* Dht
  const first = yield* dht.start({ host: "127.0.0.1", port: 0 })
  const bootstrap = [{ host: "127.0.0.1", port: first.port }]
  const others = yield* Effect.forEach([1, 2], () => dht.start({ host: "127.0.0.1", port: 0, bootstrap }))
  yield* Effect.forEach(others, (n) => n.bootstrap)
  return { nodes: [first, ...others] as ReadonlyArray<DhtNode>, bootstrap: `127.0.0.1:${first.port}` }
}).pipe(Effect.provide(DhtLoopback))

const hashOf = (n: number) => Uint8Array.from({ length: 20 }, (_, i) => (i * 7 + n) & 0xff)

describe("DHT (CLI)", () => {
  it.live("dht_peers prints the peers the DHT knows, one ip:port a line; none is exit 1 with one line", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { bootstrap, nodes } = yield* loopbackDht
      // A state file of its own: one left by another run lists nodes long gone, each a query timeout.
      const state = ["--dht-state", path.join(dir, "dht.dat")]
      const announced = yield* nodes[1]!.announce(hashOf(1), 7000)
      assert.isAbove(announced.announcedTo, 0)
      yield* Effect.promise(ensureBuilt)
      const found = yield* Effect.promise(() => runCli(["dht_peers", toHex(hashOf(1)), "--dht-bootstrap", bootstrap, ...state]))
      assert.deepStrictEqual(found, { code: 0, stdout: "127.0.0.1:7000\n", stderr: "" })
      const none = yield* Effect.promise(() => runCli(["dht_peers", toHex(hashOf(2)), "--dht-bootstrap", bootstrap, ...state]))
      assert.strictEqual(none.code, 1)
      assert.match(none.stderr, /^error: no peers for [0-9a-f]{40} in the DHT \(\d+ queries, \d+ nodes known\)\n$/)
      const bad = yield* Effect.promise(() => runCli(["dht_peers", toHex(hashOf(2)), "--dht-bootstrap", "nowhere"]))
      assert.strictEqual(bad.code, 2)
      assert.include(bad.stderr, "--dht-bootstrap")
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("a trackerless magnet link downloads from our seeder, found through the DHT", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { bootstrap, nodes } = yield* loopbackDht
      const payload = payloadBytes(16 * 1024 * 7 + 5, 4)
      const torrentFile = torrentBytes(singleFileInfo("payload.bin", payload, 16 * 1024), {})
      const infoHash = (yield* parseTorrent(torrentFile)).info.infoHash
      const torrent = path.join(dir, "t.torrent")
      const data = path.join(dir, "payload.bin")
      yield* Effect.promise(() => writeFile(torrent, torrentFile))
      yield* Effect.promise(() => writeFile(data, payload))
      yield* Effect.promise(ensureBuilt)

      const seeder = spawn(process.execPath, [cliPath, "seed", torrent, data, "--port", "0", "--host", "127.0.0.1", "--dht-bootstrap", bootstrap, "--dht-state", path.join(dir, "seed.dat")], {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => seeder.kill("SIGKILL")))
      let stderr = ""
      seeder.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
      // The seeder announces itself to the DHT once it has joined: wait until a lookup sees it.
      const deadline = Date.now() + 30_000
      while ((yield* nodes[2]!.getPeers(infoHash)).peers.length === 0) {
        assert.isBelow(Date.now(), deadline, `the seeder was not found in the DHT: ${stderr}`)
        yield* Effect.sleep("200 millis")
      }
      const out = path.join(dir, "out.bin")
      const magnet = `magnet:?xt=urn:btih:${toHex(infoHash)}`
      const result = yield* Effect.promise(() => runCli(["magnet_download", "-o", out, magnet, "--dht-bootstrap", bootstrap, "--dht-state", path.join(dir, "leech.dat"), "--port", "0"], 60_000))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(new Uint8Array(yield* Effect.promise(() => readFile(out))), payload)
    }).pipe(Effect.scoped), { timeout: 120_000 })
})
