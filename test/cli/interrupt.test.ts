/**
 * Ctrl-C (and SIGKILL) during `download` (the bundled CLI as a subprocess, a fake tracker and fake
 * peers in this process): the process exits promptly with 130 and says how far it got; what it
 * leaves on disk is only `<out>.part` holding verified pieces, and a rerun checks them, fetches
 * only the missing pieces and ends with the exact payload at `<out>`.
 */
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { formatBytes } from "../../src/programs/cli/progress.js"
import { compactPeers, fakeHttpTracker } from "../support/FakeTracker.js"
import { makeFakePeer, seeder } from "../support/FakePeer.js"
import { cliPath, repoRoot, runCli } from "../support/cli.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const pieceLength = 32 * 1024
const pieceCount = 32
const servedBeforeStall = 10

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** Waits (bounded) until the first served pieces are in `file`: it holds their bytes. */
const waitForPieces = (file: string, payload: Uint8Array) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 20_000
    const head = payload.subarray(0, servedBeforeStall * pieceLength)
    for (;;) {
      const onDisk = yield* Effect.promise(() => readFile(file).catch(() => Buffer.alloc(0)))
      if (onDisk.length >= head.length && sha256(onDisk.subarray(0, head.length)) === sha256(head)) return
      assert.isBelow(Date.now(), deadline, "the first pieces never reached the disk")
      yield* Effect.sleep("50 millis")
    }
  })

/** First run: a peer that serves the first pieces, then stalls; Ctrl-C exits with 130 at once, keeping only verified pieces. */
const interruptedRun = (dir: string, out: string, payload: Uint8Array, info: ReturnType<typeof singleFileInfo>) =>
  Effect.gen(function* () {
    const stalling = yield* makeFakePeer({
      handler: seeder({ data: payload, pieceLength, block: (r, data) => (r.index < servedBeforeStall ? data : undefined) })
    })
    const tracker1 = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers([stalling.address]) })) })
    const torrent1 = path.join(dir, "first.torrent")
    yield* Effect.promise(() => writeFile(torrent1, torrentBytes(info, { announce: Bencode.text(tracker1.url) })))

    const child = spawn(process.execPath, [cliPath, "download", "-o", out, torrent1], { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += String(chunk)))
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    yield* waitForPieces(`${out}.part`, payload)
    // The download has stalled; the count the Ctrl-C line gives comes from PieceVerified events,
    // which reach the CLI in batches at most 200 ms after their pieces are written.
    yield* Effect.sleep("500 millis")
    const interruptedAt = Date.now()
    child.kill("SIGINT")
    const code = yield* Effect.promise(() => exited)
    assert.strictEqual(code, 130)
    assert.isBelow(Date.now() - interruptedAt, 3000, "Ctrl-C took too long")
    assert.include(stderr, `\ninterrupted: ${servedBeforeStall} of ${pieceCount} pieces verified; run the same command to resume\n`)

    // Only verified pieces are on disk, under the .part name: the rest of the file is still zeros.
    assert.deepStrictEqual((yield* Effect.promise(() => readdir(dir))).sort(), ["first.torrent", "payload.bin.part"])
    const partial = yield* Effect.promise(() => readFile(`${out}.part`))
    assert.strictEqual(partial.length, payload.length)
    assert.isTrue(partial.subarray(servedBeforeStall * pieceLength).every((b) => b === 0))
  })

describe("download interrupted by Ctrl-C", () => {
  it.live("exits with 130 at once, keeps only verified pieces, and a rerun fetches only the rest", () =>
    Effect.gen(function* () {
      const payload = payloadBytes(pieceLength * pieceCount - 1234, 7)
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-interrupt-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
      )
      const out = path.join(dir, "payload.bin")
      const info = singleFileInfo("payload.bin", payload, pieceLength)
      yield* interruptedRun(dir, out, payload, info)

      // Second run: a full seeder; only the missing pieces may be requested.
      const requested = new Set<number>()
      const full = yield* makeFakePeer({
        handler: seeder({ data: payload, pieceLength, block: (r, data) => (requested.add(r.index), data) })
      })
      const tracker2 = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers([full.address]) })) })
      const torrent2 = path.join(dir, "second.torrent")
      yield* Effect.promise(() => writeFile(torrent2, torrentBytes(info, { announce: Bencode.text(tracker2.url) })))
      const rerun = yield* Effect.promise(() => runCli(["download", "-o", out, torrent2], 30_000))
      assert.strictEqual(rerun.code, 0, rerun.stderr)
      assert.match(rerun.stderr, new RegExp(`resuming: ${servedBeforeStall} of ${pieceCount} pieces already verified`))
      assert.deepStrictEqual([...requested].sort((a, b) => a - b), Array.from({ length: pieceCount - servedBeforeStall }, (_, i) => i + servedBeforeStall))
      assert.strictEqual(sha256(yield* Effect.promise(() => readFile(out))), sha256(payload))
      const summary = rerun.stderr.split("\n").find((l) => l.startsWith("done: ")) ?? ""
      assert.match(summary, /^done: (.*), (.*) in [0-9.]+ s \([0-9.]+ (B|KiB|MiB)\/s\), 1 peer, 0 B wasted$/)
      assert.include(summary, `done: ${out}, ${formatBytes(payload.length)} in `)
      assert.deepStrictEqual((yield* Effect.promise(() => readdir(dir))).sort(), ["first.torrent", "payload.bin", "second.torrent"])

      // Third run: nothing to fetch.
      const again = yield* Effect.promise(() => runCli(["download", "-o", out, torrent2], 30_000))
      assert.strictEqual(again.code, 0, again.stderr)
      assert.include(again.stderr, `already complete: ${out} (${formatBytes(payload.length)})`)
    }).pipe(Effect.scoped))

  it.live("a killed download (SIGKILL) leaves only <out>.part", () =>
    Effect.gen(function* () {
      const payload = payloadBytes(pieceLength * pieceCount, 9)
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-kill-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
      )
      const out = path.join(dir, "payload.bin")
      const stalling = yield* makeFakePeer({
        handler: seeder({ data: payload, pieceLength, block: (r, data) => (r.index < servedBeforeStall ? data : undefined) })
      })
      const tracker = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers([stalling.address]) })) })
      const torrent = path.join(dir, "t.torrent")
      yield* Effect.promise(() => writeFile(torrent, torrentBytes(singleFileInfo("payload.bin", payload, pieceLength), { announce: Bencode.text(tracker.url) })))
      const child = spawn(process.execPath, [cliPath, "download", "-o", out, torrent], { cwd: repoRoot, stdio: "ignore" })
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_, signal) => resolve(signal)))
      yield* waitForPieces(`${out}.part`, payload)
      child.kill("SIGKILL")
      assert.strictEqual(yield* Effect.promise(() => exited), "SIGKILL")
      assert.deepStrictEqual((yield* Effect.promise(() => readdir(dir))).sort(), ["payload.bin.part", "t.torrent"])
    }).pipe(Effect.scoped))
})
