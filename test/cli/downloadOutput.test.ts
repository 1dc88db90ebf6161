/**
 * `download` as a user meets it (the bundled CLI as a subprocess, a fake tracker and a fake seeder
 * in this process): the default output is `./<name>`, data that is not the torrent's is never
 * overwritten without --force, and `--json` writes one schema-valid event per line on stdout.
 */
import { execFile } from "node:child_process"
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { compactPeers, fakeHttpTracker } from "../support/FakeTracker.js"
import { makeFakePeer, seeder } from "../support/FakePeer.js"
import { cliPath, type CliResult } from "../support/cli.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const pieceLength = 16384
const payload = payloadBytes(pieceLength * 20 - 100, 5)

/** Runs the CLI in `cwd`, bounded by a timeout. */
const runIn = (cwd: string, args: ReadonlyArray<string>): Effect.Effect<CliResult> =>
  Effect.async((resume) => {
    execFile(process.execPath, [cliPath, ...args], { cwd, timeout: 30_000, encoding: "utf8" }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }))
    )
  })

/** A temporary folder holding `t.torrent`, whose tracker names one fake seeder of `payload`. */
const setup = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-output-"))),
    (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
  )
  const peer = yield* makeFakePeer({ handler: seeder({ data: payload, pieceLength }) })
  const tracker = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers([peer.address]) })) })
  const info = singleFileInfo("payload.bin", payload, pieceLength)
  yield* Effect.promise(() => writeFile(path.join(dir, "t.torrent"), torrentBytes(info, { announce: Bencode.text(tracker.url) })))
  return dir
})

const read = (file: string) => Effect.promise(() => readFile(file))
const list = (dir: string) => Effect.promise(() => readdir(dir).then((names) => names.sort()))

const Time = Schema.String.pipe(Schema.filter((s) => !Number.isNaN(Date.parse(s))))
const Count = Schema.Int.pipe(Schema.nonNegative())
const JsonEvent = Schema.Union(
  Schema.Struct({ event: Schema.Literal("started"), time: Time, path: Schema.String, pieces: Count, verified: Count, totalBytes: Count, bytesLeft: Count }),
  Schema.Struct({ event: Schema.Literal("announced"), time: Time, url: Schema.String, peers: Schema.Number }),
  Schema.Struct({ event: Schema.Literal("tracker_error"), time: Time, url: Schema.String, message: Schema.String }),
  Schema.Struct({ event: Schema.Literal("peer_connected"), time: Time, peer: Schema.String, client: Schema.String, inbound: Schema.Boolean,
    encryption: Schema.Literal("plaintext", "mse-plaintext", "mse-rc4") }),
  Schema.Struct({ event: Schema.Literal("peer_dropped"), time: Time, peer: Schema.String, reason: Schema.String }),
  Schema.Struct({ event: Schema.Literal("peer_banned"), time: Time, peer: Schema.String }),
  Schema.Struct({ event: Schema.Literal("piece_verified"), time: Time, index: Count }),
  Schema.Struct({ event: Schema.Literal("piece_rejected"), time: Time, index: Count, bytes: Count, peers: Schema.Array(Schema.String) }),
  Schema.Struct({
    event: Schema.Literal("progress"), time: Time, verifiedBytes: Count, totalBytes: Count, bytesPerSecond: Count,
    peers: Count, piecesDone: Count, piecesTotal: Count
  }),
  Schema.Struct({
    event: Schema.Literal("completed"), time: Time, path: Schema.String, totalBytes: Count, downloadedBytes: Count,
    seconds: Schema.Number, peers: Count, wastedBytes: Count, alreadyComplete: Schema.Boolean
  }),
  Schema.Struct({ event: Schema.Literal("interrupted"), time: Time, path: Schema.String, verified: Count, pieces: Count }),
  Schema.Struct({ event: Schema.Literal("error"), time: Time, message: Schema.String })
)
const decodeLine = Schema.decodeUnknownEither(Schema.parseJson(JsonEvent))

describe("download output", () => {
  it.live("without -o it writes ./<name> in the current folder, and nothing on stdout", () =>
    Effect.gen(function* () {
      const dir = yield* setup
      const res = yield* runIn(dir, ["download", "t.torrent"])
      assert.strictEqual(res.code, 0, res.stderr)
      assert.strictEqual(res.stdout, "")
      assert.deepStrictEqual(yield* list(dir), ["payload.bin", "t.torrent"])
      assert.deepStrictEqual(new Uint8Array(yield* read(path.join(dir, "payload.bin"))), payload)
    }).pipe(Effect.scoped))

  it.live("an unrelated file is refused (exit 1, untouched); --force overwrites it", () =>
    Effect.gen(function* () {
      const dir = yield* setup
      const notes = path.join(dir, "notes.txt")
      const mine = new TextEncoder().encode("my own notes, not a torrent\n")
      yield* Effect.promise(() => writeFile(notes, mine))
      const refused = yield* runIn(dir, ["download", "-o", "notes.txt", "t.torrent"])
      assert.strictEqual(refused.code, 1)
      assert.strictEqual(refused.stderr.trim().split("\n").pop(), `error: ${notes} exists and is not this torrent's data (use --force to overwrite)`)
      assert.deepStrictEqual(new Uint8Array(yield* read(notes)), mine)
      assert.deepStrictEqual(yield* list(dir), ["notes.txt", "t.torrent"])
      const forced = yield* runIn(dir, ["download", "-o", "notes.txt", "--force", "t.torrent"])
      assert.strictEqual(forced.code, 0, forced.stderr)
      assert.deepStrictEqual(new Uint8Array(yield* read(notes)), payload)
    }).pipe(Effect.scoped))

  it.live("--json: every stdout line is one event that parses against the schema, from started to completed", () =>
    Effect.gen(function* () {
      const dir = yield* setup
      const res = yield* runIn(dir, ["download", "--json", "-o", "out.bin", "t.torrent"])
      assert.strictEqual(res.code, 0, res.stderr)
      assert.strictEqual(res.stderr, "")
      const lines = res.stdout.trimEnd().split("\n")
      const events = lines.map((line) => {
        const decoded = decodeLine(line)
        assert.isTrue(Either.isRight(decoded), `not a valid event: ${line}`)
        return Either.getOrThrow(decoded)
      })
      const kinds = events.map((e) => e.event)
      assert.strictEqual(kinds[0], "started")
      assert.strictEqual(kinds[kinds.length - 1], "completed")
      assert.include(kinds, "peer_connected")
      assert.strictEqual(kinds.filter((k) => k === "piece_verified").length, Math.ceil(payload.length / pieceLength))
      const done = events[events.length - 1]!
      assert.isTrue(done.event === "completed" && done.totalBytes === payload.length && done.path === "out.bin")
    }).pipe(Effect.scoped))

  it.live("--json: a failure is an error event on stdout", () =>
    Effect.gen(function* () {
      const dir = yield* setup
      yield* Effect.promise(() => writeFile(path.join(dir, "notes.txt"), "mine"))
      const res = yield* runIn(dir, ["download", "--json", "-o", "notes.txt", "t.torrent"])
      assert.strictEqual(res.code, 1)
      const last = decodeLine(res.stdout.trimEnd().split("\n").pop() ?? "")
      assert.isTrue(Either.isRight(last) && last.right.event === "error" && last.right.message.includes("not this torrent's data"))
    }).pipe(Effect.scoped))
})
