/**
 * `download` from a libtorrent seeder with TCP off (issue 11: "some peers are reachable only over
 * uTP"): libtorrent so set still listens on TCP, takes our connection and drops it, so the client
 * must try uTP next (DualTransport), and the payload arrives exact.
 *
 * Ports: 31400 (tracker), our client on P+60, libtorrent on P+61.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Reference from "../support/ReferenceClients.js"
import { awaitSeeders, runCli, startProcess, Swarm } from "../support/Swarm.js"

const loopback = "127.0.0.1"
const utpOnly = { enable_outgoing_tcp: false, enable_incoming_tcp: false, enable_outgoing_utp: true, enable_incoming_utp: true }

describe("download over uTP alone", () => {
  layer(Swarm.layer({ basePort: 31400, sizeMib: 8, seeders: 0 }), { excludeTestServices: true })("a tracker and an 8 MiB torrent", (it) => {
    it.effect("gets the exact payload from a libtorrent seeder with TCP off", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const command = Reference.libtorrent("seed", swarm.TORRENT, swarm.DATA_DIR, loopback, swarm.BASE_PORT + 61, { settings: utpOnly })
        const seeder = yield* startProcess(command.file, command.args, { ready: /^lt: seeding /m, readyTimeoutMs: 30_000 })
        yield* awaitSeeders(swarm, 1)
        const out = path.join(swarm.SWARM_DIR, "ours-utp", swarm.TORRENT_NAME)
        const result = yield* runCli(
          ["download", "--quiet", "--host", loopback, "--port", String(swarm.BASE_PORT + 60), "--no-dht", "-o", out, swarm.TORRENT],
          { timeoutMs: 90_000 }
        )
        const lt = yield* seeder.output
        assert.strictEqual(result.code, 0, `${result.stderr}\nlibtorrent:\n${lt.stdout}${lt.stderr}`)
        const digest = createHash("sha256").update(yield* Effect.promise(() => fs.readFile(out))).digest("hex")
        assert.strictEqual(digest, swarm.DATA_SHA256)
      }).pipe(Effect.scoped), { timeout: 150_000 })
  })
})
