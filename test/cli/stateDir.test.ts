/**
 * `download --state-dir`: the torrent's resume data is kept there, and a download started again
 * trusts it for files whose size and modification time are unchanged, reading nothing of them.
 * Shown the hard way: a byte changed behind the client's back with the old modification time put
 * back goes unnoticed (the file was not read); once its time moves, the file is read and repaired.
 */
import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { toHex } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import * as ResumeData from "../../src/domain/ResumeData.js"
import { compactPeers, fakeHttpTracker } from "../support/FakeTracker.js"
import { makeFakePeer, seeder } from "../support/FakePeer.js"
import { cliPath, type CliResult } from "../support/cli.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const pieceLength = 16384
const payload = payloadBytes(pieceLength * 12 - 7, 9)

const run = (cwd: string, args: ReadonlyArray<string>): Effect.Effect<CliResult> =>
  Effect.async((resume) => {
    execFile(process.execPath, [cliPath, ...args], { cwd, timeout: 30_000, encoding: "utf8" }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }))
    )
  })

const completedEvent = (res: CliResult) =>
  res.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { event: string; alreadyComplete?: boolean }).find((e) => e.event === "completed")

describe("download --state-dir", () => {
  it.live("keeps resume data there; a restart trusts unchanged files and reads changed ones", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-statedir-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
      )
      const peer = yield* makeFakePeer({ handler: seeder({ data: payload, pieceLength }) })
      const tracker = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers([peer.address]) })) })
      const bytes = torrentBytes(singleFileInfo("payload.bin", payload, pieceLength), { announce: Bencode.text(tracker.url) })
      const info = Either.getOrThrow(parseTorrent(bytes)).info
      yield* Effect.promise(() => writeFile(path.join(dir, "t.torrent"), bytes))
      const state = path.join(dir, "state")
      const args = ["download", "--json", "--state-dir", state, "-o", "payload.bin", "t.torrent"]

      const first = yield* run(dir, args)
      assert.strictEqual(first.code, 0, first.stderr)
      const saved = Either.getOrThrow(ResumeData.decode(yield* Effect.promise(() => readFile(path.join(state, `${toHex(info.infoHash)}.resume`)))))
      assert.isTrue(saved.have.isComplete)

      // A time in whole seconds (the record keeps nanoseconds; utimes can put back only what a double holds).
      const file = path.join(dir, "payload.bin")
      const then = Math.floor(Date.now() / 1000) - 10
      yield* Effect.promise(() => utimes(file, then, then))
      const rechecked = yield* run(dir, args)
      assert.strictEqual(rechecked.code, 0, rechecked.stderr)
      // One byte changed, that time put back: a client that trusts its stamps does not see it.
      const damaged = Uint8Array.from(payload)
      damaged[5] = damaged[5]! ^ 0xff
      yield* Effect.promise(() => writeFile(file, damaged))
      yield* Effect.promise(() => utimes(file, then, then))
      const trusting = yield* run(dir, args)
      assert.strictEqual(trusting.code, 0, trusting.stderr)
      assert.strictEqual(completedEvent(trusting)?.alreadyComplete, true)
      assert.deepStrictEqual(new Uint8Array(yield* Effect.promise(() => readFile(file))), damaged)

      // A new time: the file is read, its bad piece fetched again.
      yield* Effect.promise(() => utimes(file, new Date(), new Date()))
      const checking = yield* run(dir, args)
      assert.strictEqual(checking.code, 0, checking.stderr)
      assert.strictEqual(completedEvent(checking)?.alreadyComplete, false)
      assert.deepStrictEqual(new Uint8Array(yield* Effect.promise(() => readFile(file))), payload)
    }).pipe(Effect.scoped), 60_000)
})
