/**
 * The harness itself, with no code of ours under test: a swarm with no seeders, seeded by a process
 * the test starts (aria2c standing in for our client's `seed`), then a measured WebTorrent
 * download from it (the shape of the seeding interop tests); a libtorrent download and its
 * measurements; and the loopback check catching a client that listens on every interface.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { aria2Seeder, libtorrent } from "../support/ReferenceClients.js"
import { awaitSeeders, fetchWith, scrape, startProcess, Swarm } from "../support/Swarm.js"

describe("swarm harness", () => {
  layer(Swarm.layer({ basePort: 28000, sizeMib: 4, seeders: 0 }), { excludeTestServices: true })("no seeders", (it) => {
    it.effect("a seeder started by the test serves a reference client", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        assert.deepStrictEqual(swarm.SEEDER_PEERS, [])
        assert.strictEqual((yield* scrape(swarm)).complete, 0)
        const seeder = aria2Seeder(swarm.TORRENT, swarm.DATA_DIR, "127.0.0.1", swarm.CLIENT_PORT)
        yield* startProcess(seeder.file, seeder.args)
        yield* awaitSeeders(swarm, 1)
        const result = yield* fetchWith(swarm, "webtorrent", { timeoutS: 60 })
        assert.isTrue(result.exitCode === 0 && result.rc === 0, result.log)
        assert.strictEqual(result.sha256, "OK")
        assert.strictEqual(result.loopback, "OK")
      }).pipe(Effect.scoped))

    it.effect("libtorrent downloads from a seeder it is told of, and is measured", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const seeder = libtorrent("seed", swarm.TORRENT, swarm.DATA_DIR, "127.0.0.1", swarm.CLIENT_PORT)
        yield* startProcess(seeder.file, seeder.args, { ready: /seeding/ })
        const result = yield* fetchWith(swarm, "libtorrent", { timeoutS: 60, peers: [`127.0.0.1:${swarm.CLIENT_PORT}`] })
        assert.strictEqual(result.exitCode, 0, result.log)
        assert.match(result.log, /lt: done in [\d.]+ s/)
        assert.isAbove(result.maxRssKib, 0)
        assert.isAbove(result.userS + result.sysS, 0)
      }).pipe(Effect.scoped))

    it.effect("a client listening on every interface fails the loopback check", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const listener = [
          "import socket, time",
          "s = socket.socket()",
          "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
          `s.bind(("0.0.0.0", {port}))`,
          "s.listen()",
          "time.sleep(2)"
        ].join("; ")
        const clientCmd = `/usr/bin/python3 -c '${listener}'`
        const result = yield* fetchWith(swarm, "custom", { label: "wildcard", clientCmd, timeoutS: 30 })
        assert.strictEqual(result.rc, 0, result.log)
        assert.strictEqual(result.loopback, "VIOLATION", result.log)
        assert.include(result.log, `0.0.0.0:${swarm.FETCH_PORT}`)
        assert.notStrictEqual(result.exitCode, 0)
      }).pipe(Effect.scoped))
  })
})
