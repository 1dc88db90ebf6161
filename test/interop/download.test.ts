/**
 * Our client downloads from real third-party seeders (aria2 and Transmission) on loopback: from
 * the .torrent, from the magnet link (metadata over BEP 9 from the aria2 seeders), one piece alone,
 * and a multi-file torrent with pieces spanning files. The harness checks every file's SHA-256 and
 * that every socket stayed on loopback.
 */
import { createHash } from "node:crypto"
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { cliCommand, fetchWith, runCli, Swarm } from "../support/Swarm.js"

/** Runs our CLI (`command`, a `fetchWith` client template) as the swarm's client: exit 0, exact payload, loopback only. */
const fetchesExactly = (label: string, command: string) =>
  Effect.gen(function* () {
    const swarm = yield* Swarm
    const result = yield* fetchWith(swarm, "custom", { label, clientCmd: cliCommand(command), timeoutS: 120 })
    assert.strictEqual(result.rc, 0, `our client failed:\n${result.log}`)
    assert.strictEqual(result.sha256, "OK", `payload mismatch:\n${result.log}`)
    assert.strictEqual(result.loopback, "OK", "a socket left the loopback")
    assert.strictEqual(result.exitCode, 0)
  })

describe("download from third-party seeders", () => {
  layer(Swarm.layer({ basePort: 28400, sizeMib: 16, seeders: 3, mix: ["aria2", "transmission"] }), {
    excludeTestServices: true
  })("aria2 and Transmission seeders, one file", (it) => {
    it.effect("download -o <out> <torrent> gives the exact payload", () =>
      fetchesExactly("ours", "download --quiet --host 127.0.0.1 -o {out} {torrent}"))

    it.effect("magnet_download -o <out> <magnet> gives the exact payload", () =>
      fetchesExactly("ours-magnet", "magnet_download --quiet --host 127.0.0.1 -o {out} {magnet}"))

    it.effect("download_piece writes exactly the last (short) piece", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const last = swarm.NUM_PIECES - 1
        const out = path.join(swarm.SWARM_DIR, "piece.bin")
        const res = yield* runCli(["download_piece", "--quiet", "-o", out, swarm.TORRENT, String(last)], { timeoutMs: 60_000 })
        assert.strictEqual(res.code, 0, res.stderr)
        const payload = yield* Effect.promise(() => readFile(swarm.DATA_PATH))
        const piece = yield* Effect.promise(() => readFile(out))
        assert.strictEqual(piece.length, swarm.SIZE_BYTES - last * swarm.PIECE_LENGTH)
        const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
        assert.strictEqual(sha(piece), sha(payload.subarray(last * swarm.PIECE_LENGTH)))
      }))
  })

  layer(Swarm.layer({ basePort: 28600, sizeMib: 8, seeders: 2, mix: ["aria2", "transmission"], files: 5, pieceKib: 64 }), {
    excludeTestServices: true
  })("multi-file torrent, pieces spanning files", (it) => {
    it.effect("download -o <folder> <torrent> gives every file exact", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        assert.strictEqual(swarm.NUM_FILES, 5)
        yield* fetchesExactly("ours-multi", "download --quiet --host 127.0.0.1 -o {out} {torrent}")
      }))
  })
})
