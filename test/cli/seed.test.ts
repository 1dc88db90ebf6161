/**
 * The bundled `seed` command as a subprocess: it refuses a payload that does not verify, and a real
 * one it announces (started, then stopped on Ctrl-C) and serves to a peer.
 */
import { spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { Message } from "../../src/domain/Wire.js"
import { dialFakePeer } from "../support/FakePeer.js"
import { fakeHttpTracker, queryParams } from "../support/FakeTracker.js"
import { cliPath, ensureBuilt, repoRoot, runCli } from "../support/cli.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const pieceLength = 16 * 1024
const payload = payloadBytes(pieceLength * 5 + 100, 3)
const info = singleFileInfo("payload.bin", payload, pieceLength)

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-seed-cli-"))),
  (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
)

const write = (file: string, bytes: Uint8Array) => Effect.promise(() => writeFile(file, bytes))

describe("seed (CLI)", () => {
  it.live("refuses a payload where no piece verifies, and a missing one, with one line on stderr", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const torrent = path.join(dir, "t.torrent")
      const zeros = path.join(dir, "zeros.bin")
      yield* write(torrent, torrentBytes(info))
      yield* write(zeros, new Uint8Array(payload.length))
      yield* Effect.promise(ensureBuilt)
      const refused = yield* Effect.promise(() => runCli(["seed", torrent, zeros, "--port", "0"]))
      assert.deepStrictEqual(refused, {
        code: 1,
        stdout: "",
        stderr: `error: nothing to seed: none of the 6 pieces at ${zeros} matches the torrent\n`
      })
      const missing = path.join(dir, "missing.bin")
      const absent = yield* Effect.promise(() => runCli(["seed", torrent, missing, "--port", "0"]))
      assert.strictEqual(absent.code, 1)
      assert.strictEqual(absent.stderr, `error: cannot open ${missing}: no such file or folder\n`)
    }).pipe(Effect.scoped))

  it.live("announces started, serves a peer, and on Ctrl-C announces stopped and exits 130", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const tracker = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: new Uint8Array(0) })) })
      const torrent = path.join(dir, "t.torrent")
      const data = path.join(dir, "payload.bin")
      const torrentFile = torrentBytes(info, { announce: Bencode.text(tracker.url) })
      yield* write(torrent, torrentFile)
      yield* write(data, payload)
      yield* Effect.promise(ensureBuilt)

      const child = spawn(process.execPath, [cliPath, "seed", torrent, data, "--port", "0", "--host", "127.0.0.1"], {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      let stderr = ""
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
      const deadline = Date.now() + 20_000
      while (!/listening on/.test(stderr) || tracker.queries.length === 0) {
        assert.isBelow(Date.now(), deadline, `the seeder did not start: ${stderr}`)
        yield* Effect.sleep("20 millis")
      }
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1])
      assert.match(stderr, /^seeding 6 of 6 pieces, listening on 127\.0\.0\.1:\d+\n/)
      const started = queryParams(tracker.queries[0]!)
      assert.strictEqual(started.get("event"), "started")
      assert.strictEqual(started.get("port"), String(port))
      assert.strictEqual(started.get("left"), "0")

      // a peer gets the last (short) piece
      const infoHash = parseTorrent(torrentFile).pipe((e) => (e._tag === "Right" ? e.right.info.infoHash : assert.fail("torrent")))
      const peer = yield* dialFakePeer({ host: "127.0.0.1", port }, { infoHash })
      yield* peer.handshake
      yield* peer.send([Message.interested, Message.request(5, 0, 100)])
      const piece = yield* peer.messages.pipe(
        Stream.filter((m) => m._tag === "Piece"),
        Stream.runHead,
        Effect.timeout("10 seconds")
      )
      assert.deepStrictEqual(piece, Option.some(Message.piece(5, 0, payload.subarray(5 * pieceLength))))

      child.kill("SIGINT")
      assert.strictEqual(yield* Effect.promise(() => exited), 130)
      const stopped = queryParams(tracker.queries.at(-1)!)
      assert.strictEqual(stopped.get("event"), "stopped")
      assert.strictEqual(stopped.get("uploaded"), "100")
    }).pipe(Effect.scoped))
})
