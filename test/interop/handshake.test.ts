/**
 * `handshake` against real seeders: aria2 (which needs our handshake alone before anything else),
 * Transmission, the WebTorrent engine and libtorrent. Each seeder is dialled once: Transmission 3.00 starts
 * refusing 127.0.0.1 after a few connections that close right after the handshake.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { runCli, Swarm, type SeederKind } from "../support/Swarm.js"

/** How each client's peer id starts (Azureus style for Transmission, WebTorrent and libtorrent, aria2's own). */
const peerIdPrefix: Record<SeederKind, string> = {
  aria2: Buffer.from("A2-").toString("hex"),
  transmission: Buffer.from("-TR").toString("hex"),
  webtorrent: Buffer.from("-WW").toString("hex"),
  libtorrent: Buffer.from("-LT").toString("hex")
}

describe("handshake against third-party seeders", () => {
  layer(Swarm.layer({ basePort: 27800, sizeMib: 4, seeders: 4, mix: ["aria2", "transmission", "webtorrent", "libtorrent"] }), {
    excludeTestServices: true
  })(
    "swarm",
    (it) => {
      for (const kind of ["aria2", "transmission", "webtorrent", "libtorrent"] as const) {
        it.effect(`${kind} seeder`, () =>
          Effect.gen(function* () {
            const swarm = yield* Swarm
            const seeder = swarm.SEEDERS.find((s) => s.kind === kind)
            assert.isDefined(seeder, `a ${kind} seeder in ${swarm.SEEDERS.map((s) => s.kind).join(",")}`)
            const res = yield* runCli(["handshake", swarm.TORRENT, seeder!.address], { timeoutMs: 30_000 })
            assert.strictEqual(res.code, 0, `handshake failed: ${res.stderr}`)
            assert.match(res.stdout, /^Peer ID: [0-9a-f]{40}\n$/)
            assert.isTrue(res.stdout.startsWith(`Peer ID: ${peerIdPrefix[kind]}`), `${kind} peer id: ${res.stdout}`)
          }))
      }
    }
  )
})
