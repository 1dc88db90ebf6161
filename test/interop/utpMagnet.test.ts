/**
 * `download` of a magnet link whose only peer speaks uTP alone: a libtorrent seeder with TCP off
 * (it listens on TCP, takes our connection and drops it), named by the link's `x.pe`, with no
 * tracker and no DHT. The metadata itself must come over uTP, so the command listens before
 * fetching it; then the torrent downloads on the same listener, and the file arrives exact.
 *
 * Ports: libtorrent on 29401, our client on 29460.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { repoRoot } from "../support/cli.js"
import * as Reference from "../support/ReferenceClients.js"
import { payloadBytes } from "../support/torrent.js"
import { runCli, runProcess, startProcess } from "../support/Swarm.js"

const loopback = "127.0.0.1"
const ltPort = 29401
const ourPort = 29460
const ltCreate = path.join(repoRoot, "scripts/reference-clients/lt-create.py")
const utpOnly = { enable_outgoing_tcp: false, enable_incoming_tcp: false, enable_outgoing_utp: true, enable_incoming_utp: true }
/** 49 pieces of 64 KiB, the last one short. */
const size = 3 * 1024 * 1024 + 12_345

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(tmpdir(), "bt-utpmagnet-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

describe("a magnet link whose only peer speaks uTP alone", () => {
  it.live("download fetches the metadata and the payload over uTP from a libtorrent seeder with TCP off", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const payload = payloadBytes(size, 29)
      const source = path.join(dir, "data", "payload.bin")
      yield* Effect.promise(async () => {
        await fs.mkdir(path.dirname(source), { recursive: true })
        await fs.writeFile(source, payload)
      })
      const torrent = path.join(dir, "t.torrent")
      const made = yield* runProcess(Reference.debianPython, [ltCreate, "v1", source, torrent, "--piece-length", "65536"], { timeoutMs: 60_000 })
      assert.strictEqual(made.code, 0, made.stderr)
      const infoHash = /^lt: created v1=([0-9a-f]{40}) /m.exec(made.stdout)?.[1]
      assert.isDefined(infoHash, made.stdout)
      const command = Reference.libtorrent("seed", torrent, path.dirname(source), loopback, ltPort, { settings: utpOnly })
      const seeder = yield* startProcess(command.file, command.args, { ready: /^lt: seeding /m, readyTimeoutMs: 30_000 })
      const out = path.join(dir, "out.bin")
      const magnet = `magnet:?xt=urn:btih:${infoHash}&dn=payload.bin&x.pe=${loopback}:${ltPort}`
      const result = yield* runCli(
        ["--log-level", "debug", "download", "--quiet", "--no-dht", "--host", loopback, "--port", String(ourPort), "-o", out, magnet],
        { timeoutMs: 90_000 }
      )
      const lt = yield* seeder.output
      assert.strictEqual(result.code, 0, `${result.stderr}\nlibtorrent:\n${lt.stdout}${lt.stderr}`)
      assert.strictEqual(sha256(yield* Effect.promise(() => fs.readFile(out))), sha256(payload))
    }).pipe(Effect.scoped), { timeout: 150_000 })
})
