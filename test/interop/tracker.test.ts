/**
 * `peers` against a real opentracker, over HTTP (the swarm's torrent) and over UDP (a copy of it
 * whose announce is the tracker's udp:// URL). opentracker lists the announcing client too; our
 * client must print exactly the seeders, never itself.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { runCli, Swarm, type SwarmEnv } from "../support/Swarm.js"

const lines = (stdout: string): Array<string> => stdout.split("\n").filter((l) => l !== "")
const sorted = (xs: ReadonlyArray<string>): Array<string> => [...xs].sort()

/** A copy of the swarm's torrent announcing only to `announce` (the info dict, hence the hash, unchanged). */
const torrentAnnouncing = (swarm: SwarmEnv, announce: string, name: string) =>
  Effect.gen(function* () {
    const original = yield* Effect.promise(() => fs.readFile(swarm.TORRENT))
    const decoded = Bencode.decode(new Uint8Array(original))
    assert.isTrue(decoded._tag === "Right" && Bencode.isDict(decoded.right), "the swarm's torrent is a bencoded dict")
    const copy = new Map(decoded._tag === "Right" ? (decoded.right as Bencode.BencodeDict) : [])
    copy.set(Bencode.bytesToKey(Bencode.text("announce")), Bencode.text(announce))
    copy.delete(Bencode.bytesToKey(Bencode.text("announce-list")))
    const file = path.join(swarm.SWARM_DIR, name)
    yield* Effect.promise(() => fs.writeFile(file, Bencode.encode(copy)))
    return file
  })

const expectSeeders = (swarm: SwarmEnv, torrent: string) =>
  Effect.gen(function* () {
    const res = yield* runCli(["peers", torrent], { timeoutMs: 60_000 })
    assert.strictEqual(res.code, 0, `peers failed: ${res.stderr}`)
    for (const line of lines(res.stdout)) assert.match(line, /^\d+\.\d+\.\d+\.\d+:\d+$/, "one ip:port a line")
    // exactly the seeders: the tracker's entry for ourselves is dropped
    assert.deepStrictEqual(sorted(lines(res.stdout)), sorted(swarm.SEEDER_PEERS))
  })

describe("peers against opentracker", () => {
  layer(Swarm.layer({ basePort: 27600, sizeMib: 4, seeders: 2, mix: ["aria2", "transmission"] }), { excludeTestServices: true })("swarm", (it) => {
    it.effect("HTTP announce lists the seeders", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        assert.strictEqual(swarm.TRACKER, swarm.TRACKER_HTTP)
        yield* expectSeeders(swarm, swarm.TORRENT)
      }))

    it.effect("UDP announce (BEP 15) lists the seeders", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        assert.match(swarm.TRACKER_UDP, /^udp:\/\/127\.0\.0\.1:\d+/)
        const udpTorrent = yield* torrentAnnouncing(swarm, swarm.TRACKER_UDP, "udp.torrent")
        const info = yield* runCli(["info", udpTorrent])
        assert.strictEqual(info.code, 0, info.stderr)
        assert.include(info.stdout, `Tracker URL: ${swarm.TRACKER_UDP}\n`)
        assert.include(info.stdout, `Info Hash: ${swarm.INFO_HASH}\n`, "announce lies outside the info dict")
        yield* expectSeeders(swarm, udpTorrent)
      }))
  })
})
