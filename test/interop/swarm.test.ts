/**
 * The harness itself, with no code of ours under test: a `--seeders 0` swarm seeded by a process
 * the test starts (aria2c standing in for our client's `seed`), then a measured WebTorrent
 * download from it. This is the shape of the seeding interop tests.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { awaitSeeders, fetchWith, scrape, startProcess, Swarm } from "../support/Swarm.js"

/** aria2c as a loopback-only seeder, with the options swarm.sh gives its own aria2 seeders. */
const aria2Seeder = (torrent: string, dataDir: string, port: number) => [
  "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
  "--disable-ipv6=true", "--bt-save-metadata=false", "--auto-save-interval=0", "--file-allocation=none",
  "--summary-interval=0", "--show-console-readout=false", "--no-conf=true", "--bt-require-crypto=false",
  "--interface=127.0.0.1", `--listen-port=${port}`, "--check-integrity=true", "--seed-ratio=0.0",
  "--bt-tracker-interval=2", "-d", dataDir, torrent
]

describe("swarm harness", () => {
  layer(Swarm.layer({ basePort: 28000, sizeMib: 4, seeders: 0 }), { excludeTestServices: true })("no seeders", (it) => {
    it.effect("a seeder started by the test serves a reference client", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        assert.deepStrictEqual(swarm.SEEDER_PEERS, [])
        assert.strictEqual((yield* scrape(swarm)).complete, 0)
        yield* startProcess("aria2c", aria2Seeder(swarm.TORRENT, swarm.DATA_DIR, swarm.CLIENT_PORT))
        yield* awaitSeeders(swarm, 1)
        const result = yield* fetchWith(swarm, "webtorrent", { timeoutS: 60 })
        assert.isTrue(result.exitCode === 0 && result.rc === 0, result.log)
        assert.strictEqual(result.sha256, "OK")
        assert.strictEqual(result.loopback, "OK")
      }).pipe(Effect.scoped))
  })
})
