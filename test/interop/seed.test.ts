/**
 * Our seeder against real third-party clients on a loopback swarm (test/support/Swarm.ts):
 * - a `--seeders 0` swarm where `seed` is the only seeder: aria2c, WebTorrent and transmission-cli
 *   each download the exact payload from it (`fetch-with` exits 0 only when the SHA-256 matches).
 *   transmission-cli never dials loopback peers, so it completes only because we dial it; aria2c and
 *   WebTorrent started from the magnet link get the metadata (BEP 9) from it too, there being no one else;
 * - a swarm where our seeder seeds beside aria2 and WebTorrent seeders while our client downloads,
 *   and `download --seed` joins it as one more seeder.
 *
 * Ports: 30000 (the first swarm) and 30200 (the second): below the ephemeral range (32768+), where an
 * outgoing connection could hold a port; each swarm uses P, P+1.., P+50, P+60 and P+70.
 */
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import {
  awaitSeeders,
  cliCommand,
  type FetchClient,
  fetchWith,
  ourSeeder,
  scrape,
  startCli,
  Swarm,
  SwarmError
} from "../support/Swarm.js"
import { assertFetched } from "../support/SwarmAssert.js"

describe("seed: our client as the only seeder", () => {
  layer(Swarm.layer({ basePort: 30000, sizeMib: 8, seeders: 0 }), { excludeTestServices: true })("no other seeder", (it) => {
    const served: ReadonlyArray<readonly [FetchClient, number]> = [["aria2c", 60], ["webtorrent", 60], ["transmission", 90]]
    for (const [client, timeoutS] of served) {
      it.effect(`${client} downloads the exact payload from our seeder`, () =>
        Effect.gen(function* () {
          const swarm = yield* Swarm
          const seeder = yield* ourSeeder(swarm)
          yield* awaitSeeders(swarm, 1)
          assertFetched(yield* fetchWith(swarm, client, { timeoutS }))
          const { stderr } = yield* seeder.output
          assert.include(stderr, `seeding 32 of 32 pieces, listening on 127.0.0.1:${swarm.CLIENT_PORT}`)
          // transmission-cli is served only because we dialled it
          if (client === "transmission") assert.match(stderr, /connected \(TR\d+, dialled\)/, stderr)
        }).pipe(Effect.scoped))
    }

    for (const client of ["aria2c", "webtorrent"] as const) {
      it.effect(`${client} downloads the exact payload from a magnet link, the metadata coming from our seeder`, () =>
        Effect.gen(function* () {
          const swarm = yield* Swarm
          const seeder = yield* ourSeeder(swarm)
          yield* awaitSeeders(swarm, 1)
          const result = yield* fetchWith(swarm, client, { magnet: true, timeoutS: 60 })
          assertFetched(result)
          assert.include(result.client, "magnet", result.log)
          const { stderr } = yield* seeder.output
          assert.match(stderr, /connected \(\S+, (inbound|dialled)\)/, stderr)
        }).pipe(Effect.scoped))
    }

    it.effect("Ctrl-C stops the seeder, which announces `stopped`", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const seeder = yield* ourSeeder(swarm)
        yield* awaitSeeders(swarm, 1)
        process.kill(seeder.pid, "SIGINT")
        yield* scrape(swarm).pipe(
          Effect.filterOrFail(
            (s) => s.complete === 0,
            (s) => new SwarmError({ command: "scrape", reason: `tracker still lists ${s.complete} seeder(s)`, output: "" })
          ),
          Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.upTo("10 seconds")))
        )
      }).pipe(Effect.scoped))
  })
})

describe("seed: beside third-party seeders", () => {
  layer(Swarm.layer({ basePort: 30200, sizeMib: 16, seeders: 2, mix: ["aria2", "webtorrent"] }), { excludeTestServices: true })(
    "aria2 and WebTorrent seeders plus ours",
    (it) => {
      it.effect("our client downloads from the swarm's seeders and ours", () =>
        Effect.gen(function* () {
          const swarm = yield* Swarm
          const seeder = yield* ourSeeder(swarm)
          yield* awaitSeeders(swarm, 3)
          assertFetched(
            yield* fetchWith(swarm, "custom", {
              label: "ours",
              clientCmd: cliCommand("download -o {out} {torrent} --host 127.0.0.1 --port {port} --quiet"),
              timeoutS: 60
            })
          )
          const { stderr } = yield* seeder.output
          assert.match(stderr, /connected \(EB0010, inbound\)/, stderr)
        }).pipe(Effect.scoped))

      it.effect("download --seed joins the swarm as a seeder once the download is verified", () =>
        Effect.gen(function* () {
          const swarm = yield* Swarm
          const out = path.join(swarm.SWARM_DIR, "fetch-out", "download-seed", swarm.TORRENT_NAME)
          const before = (yield* scrape(swarm)).complete
          yield* startCli(["download", "-o", out, swarm.TORRENT, "--seed", "--host", "127.0.0.1", "--port", String(swarm.BASE_PORT + 70)], {
            ready: /listening on/,
            readyTimeoutMs: 60_000
          })
          const sha256 = createHash("sha256").update(readFileSync(out)).digest("hex")
          assert.strictEqual(sha256, swarm.DATA_SHA256)
          yield* awaitSeeders(swarm, before + 1)
        }).pipe(Effect.scoped))
    }
  )
})
