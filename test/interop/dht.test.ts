/**
 * DHT interop with libtorrent (python3-libtorrent 2.0) and npm bittorrent-dht on loopback, no
 * tracker anywhere: an in-process DHT node of ours on 127.0.0.1 is every party's only bootstrap.
 * - libtorrent seeds with its DHT on; our `magnet_download` of the bare magnet link (joining
 *   through libtorrent's own DHT port) finds it and downloads the exact payload;
 * - our `seed` announces itself to the DHT; a libtorrent leecher of the bare magnet link finds it
 *   through its DHT and downloads the exact payload.
 *
 * - the npm `bittorrent-dht` (WebTorrent's DHT, 10.x) joins through our node, announces a peer we
 *   then find, and finds the peer one of our nodes announced.
 *
 * libtorrent refuses loopback DHT nodes unless told otherwise: the restrictions on routing and
 * search IPs, node-id verification and the "dark internet" filter are off. Ports 31900-31999.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { tmpdir } from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { Dht, type DhtNode } from "../../src/services/Dht.js"
import { Udp } from "../../src/services/Udp.js"
import { runCli } from "../support/cli.js"
import { referenceDir } from "../support/ReferenceClients.js"
import { startProcess } from "../support/Process.js"
import * as Reference from "../support/ReferenceClients.js"
import { startCli } from "../support/Swarm.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const loopback = "127.0.0.1"
const basePort = 31900
const DhtLoopback = Dht.layer.pipe(Layer.provide(Layer.merge(Udp.Live, NodeFileSystem.layer)))

/** libtorrent's DHT on, joined through `bootstrap` only, with its loopback restrictions off. */
const libtorrentDht = (bootstrap: string) => [
  "enable_dht=true",
  `dht_bootstrap_nodes=${bootstrap}`,
  "dht_restrict_routing_ips=false",
  "dht_restrict_search_ips=false",
  "dht_prefer_verified_node_ids=false",
  "dht_enforce_node_id=false",
  "dht_ignore_dark_internet=false",
  "dht_announce_interval=5"
].flatMap((s) => ["--set", s])

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(tmpdir(), "bt-dht-interop-"))),
  (d) => Effect.promise(() => fs.rm(d, { recursive: true, force: true }))
)

/** A public (not private) single-file torrent without announce, its payload on disk in `dir/data`. */
const fixture = (dir: string, seed: number) =>
  Effect.gen(function* () {
    const payload = payloadBytes(256 * 1024 * 6 + 77, seed)
    const torrentFile = torrentBytes(singleFileInfo("payload.bin", payload, 256 * 1024), {})
    const infoHash = (yield* parseTorrent(torrentFile)).info.infoHash
    const torrent = path.join(dir, "t.torrent")
    yield* Effect.promise(() => fs.mkdir(path.join(dir, "data"), { recursive: true }))
    yield* Effect.promise(() => fs.writeFile(torrent, torrentFile))
    yield* Effect.promise(() => fs.writeFile(path.join(dir, "data", "payload.bin"), payload))
    return { payload, torrent, infoHash, magnet: `magnet:?xt=urn:btih:${toHex(infoHash)}` }
  })

/** Waits (bounded) until a lookup from `node` finds a peer on `port`. */
const awaitPeer = (node: DhtNode, infoHash: Uint8Array, port: number, what: () => Effect.Effect<string>) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 90_000
    while (!(yield* node.getPeers(infoHash)).peers.some((p) => p.port === port)) {
      if (Date.now() > deadline) assert.fail(`${loopback}:${port} was not found in the DHT:\n${yield* what()}`)
      yield* Effect.sleep("500 millis")
    }
  })

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

describe("DHT interop (libtorrent, bittorrent-dht)", () => {
  it.live("a trackerless magnet download of a torrent only libtorrent seeds", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const router = yield* Effect.flatMap(Dht, (dht) => dht.start({ host: loopback, port: basePort })).pipe(Effect.provide(DhtLoopback))
      const { infoHash, magnet, payload, torrent } = yield* fixture(dir, 31)
      const ltPort = basePort + 1
      const seed = Reference.libtorrent("seed", torrent, path.join(dir, "data"), loopback, ltPort)
      const lt = yield* startProcess(seed.file, [...seed.args, ...libtorrentDht(`${loopback}:${basePort}`)], { ready: /^lt: seeding /m })
      yield* awaitPeer(router, infoHash, ltPort, () => Effect.map(lt.output, (o) => o.stdout + o.stderr))
      const out = path.join(dir, "out.bin")
      const result = yield* Effect.promise(() =>
        runCli(["magnet_download", "-o", out, magnet, "--dht-bootstrap", `${loopback}:${ltPort}`, "--port", String(basePort + 2), "--host", loopback, "--dht-state", path.join(dir, "dht.dat")], 120_000)
      )
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(sha256(yield* Effect.promise(() => fs.readFile(out))), sha256(payload))
    }).pipe(Effect.scoped), { timeout: 240_000 })

  it.live("our seeder, found by libtorrent through the DHT", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const router = yield* Effect.flatMap(Dht, (dht) => dht.start({ host: loopback, port: basePort + 10 })).pipe(Effect.provide(DhtLoopback))
      const bootstrap = `${loopback}:${basePort + 10}`
      const { infoHash, magnet, payload, torrent } = yield* fixture(dir, 32)
      const ourPort = basePort + 11
      const ours = yield* startCli(
        ["seed", torrent, path.join(dir, "data", "payload.bin"), "--host", loopback, "--port", String(ourPort), "--dht-bootstrap", bootstrap, "--dht-state", path.join(dir, "dht.dat")],
        { ready: /listening on/, readyTimeoutMs: 30_000 }
      )
      yield* awaitPeer(router, infoHash, ourPort, () => Effect.map(ours.output, (o) => o.stdout + o.stderr))
      const leech = Reference.libtorrent("leech", magnet, path.join(dir, "lt"), loopback, basePort + 12, { timeoutS: 120 })
      const lt = yield* startProcess(leech.file, [...leech.args, ...libtorrentDht(bootstrap)], { ready: /^lt: done in /m, readyTimeoutMs: 150_000 })
      assert.match((yield* lt.output).stdout, /^lt: done in /m)
      assert.strictEqual(sha256(yield* Effect.promise(() => fs.readFile(path.join(dir, "lt", "payload.bin")))), sha256(payload))
    }).pipe(Effect.scoped), { timeout: 240_000 })

  it.live("bittorrent-dht (npm): it finds what we announced, we find what it announced", () =>
    Effect.gen(function* () {
      const router = yield* Effect.flatMap(Dht, (dht) => dht.start({ host: loopback, port: basePort + 20 })).pipe(Effect.provide(DhtLoopback))
      const ours = yield* Effect.flatMap(Dht, (dht) => dht.start({ host: loopback, port: basePort + 21, bootstrap: [{ host: loopback, port: basePort + 20 }] }))
        .pipe(Effect.provide(DhtLoopback))
      const ourHash = Uint8Array.from({ length: 20 }, (_, i) => i + 1)
      const theirHash = Uint8Array.from({ length: 20 }, (_, i) => 200 - i)
      assert.isAbove((yield* ours.announce(ourHash, 8888)).announcedTo, 0)
      // Joins through our router, announces its hash for port 7777, then looks ours up.
      const script = `
        const DHT = require(${JSON.stringify(path.join(referenceDir, "node_modules", "bittorrent-dht"))})
        const dht = new DHT({ bootstrap: ["${loopback}:${basePort + 20}"], host: "${loopback}" })
        dht.listen(${basePort + 22}, "${loopback}")
        dht.on("ready", () => dht.announce("${toHex(theirHash)}", 7777, (err) => {
          console.log(err ? "announce failed: " + err.message : "announced")
          dht.on("peer", (peer, hash) => console.log("peer " + peer.host + ":" + peer.port + " for " + hash.toString("hex")))
          dht.lookup("${toHex(ourHash)}")
        }))`
      const js = yield* startProcess(process.execPath, ["-e", script], { ready: new RegExp(`^peer ${loopback}:8888 for ${toHex(ourHash)}$`, "m"), readyTimeoutMs: 60_000 })
      assert.match((yield* js.output).stdout, /^announced$/m)
      yield* awaitPeer(router, theirHash, 7777, () => Effect.map(js.output, (o) => o.stdout + o.stderr))
    }).pipe(Effect.scoped), { timeout: 120_000 })
})
