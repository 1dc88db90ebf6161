/**
 * Rate-limit accuracy of the bundled CLI on loopback (issue 12's acceptance): our own seeders
 * (`seed` subprocesses on 127.0.0.1, unlimited unless the test limits them) and a `download --json`
 * subprocess, found through an in-process HTTP tracker. These check that a limiter holds its rate,
 * not how fast anything is: an unlimited loopback transfer runs at hundreds of MiB/s here.
 *
 * The rate is the download's own account: the times of its `piece_verified` lines (the process's
 * clock). Start-up is left out: the measured window runs from the piece that completes the first
 * 8 MiB (connections made, the limiter's initial burst and the socket buffers spent) to the last
 * piece. The upload check moves 64 MiB too (32 s at 2 MiB/s, 28 s of it measured).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { fakeHttpTracker } from "../support/FakeTracker.js"
import { runCli, startCli } from "../support/Swarm.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const MiB = 1024 * 1024
const pieceLength = 256 * 1024
const measuredFrom = 8 * MiB

/** A torrent of `size` pseudo-random bytes in a fresh folder, its payload beside it, announcing to a tracker that lists `peers`. */
const swarmFiles = (size: number, seed: number) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-rate-"))),
      (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
    )
    const peers: Array<number> = []
    const tracker = yield* fakeHttpTracker(() => ({
      body: Bencode.encode(Bencode.dict({
        interval: Bencode.int(60),
        peers: Uint8Array.from(peers.flatMap((port) => [127, 0, 0, 1, port >> 8, port & 0xff]))
      }))
    }))
    const payload = payloadBytes(size, seed)
    const torrent = path.join(dir, "rate.torrent")
    const data = path.join(dir, "payload.bin")
    yield* Effect.promise(() => writeFile(torrent, torrentBytes(singleFileInfo("payload.bin", payload, pieceLength), { announce: Bencode.text(tracker.url) })))
    yield* Effect.promise(() => writeFile(data, payload))
    return { dir, torrent, data, peers }
  })

/** A `seed` subprocess on 127.0.0.1 (any port), listed by the tracker once it listens. */
const seeder = (files: { torrent: string; data: string; peers: Array<number> }, extra: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const started = yield* startCli(["seed", files.torrent, files.data, "--host", "127.0.0.1", "--port", "0", "--no-dht", ...extra], {
      ready: /listening on 127\.0\.0\.1:\d+/,
      readyTimeoutMs: 60_000
    })
    const { stderr } = yield* started.output
    files.peers.push(Number(/listening on 127\.0\.0\.1:(\d+)/.exec(stderr)![1]))
  })

/** Bytes per second over the whole run, start-up included, by the download's own summary (for the log). */
const overallRate = (stdout: string): number => {
  const completed = JSON.parse(stdout.split("\n").find((l) => l.includes('"completed"'))!)
  return completed.downloadedBytes / completed.seconds
}

/** The payload bytes per second of a `download --json` run, over the pieces after the first `measuredFrom` bytes. */
const measuredRate = (stdout: string): number => {
  const verified = stdout.split("\n").filter((l) => l.includes('"piece_verified"')).map((l) => Date.parse(JSON.parse(l).time as string))
  const first = Math.ceil(measuredFrom / pieceLength) - 1
  const pieces = verified.length - 1 - first
  return (pieces * pieceLength) / ((verified[verified.length - 1]! - verified[first]!) / 1000)
}

const download = (files: { dir: string; torrent: string }, extra: ReadonlyArray<string>) =>
  runCli(["download", "--json", "--no-dht", "--host", "127.0.0.1", "--port", "0", "-o", path.join(files.dir, "out.bin"), files.torrent, ...extra], {
    timeoutMs: 150_000
  })

describe("rate limits (CLI, loopback)", () => {
  it.live("download --max-download-rate 4M from two fast seeders averages 4 MiB/s (±15%) over 64 MiB", () =>
    Effect.gen(function* () {
      const files = yield* swarmFiles(64 * MiB, 21)
      yield* seeder(files)
      yield* seeder(files)
      const result = yield* download(files, ["--max-download-rate", "4M"])
      expect(result.code, result.stderr).toBe(0)
      const rate = measuredRate(result.stdout)
      console.log(`download limited to 4 MiB/s: ${(rate / MiB).toFixed(3)} MiB/s measured, ${(overallRate(result.stdout) / MiB).toFixed(3)} MiB/s in all`)
      expect(Math.abs(rate - 4 * MiB) / (4 * MiB), `${(rate / MiB).toFixed(3)} MiB/s`).toBeLessThan(0.15)
    }).pipe(Effect.scoped), 240_000)

  it.live("seed --max-upload-rate 2M serves a downloader that has only it at 2 MiB/s (±15%), over 64 MiB", () =>
    Effect.gen(function* () {
      const files = yield* swarmFiles(64 * MiB, 22)
      yield* seeder(files, ["--max-upload-rate", "2M"])
      const result = yield* download(files, [])
      expect(result.code, result.stderr).toBe(0)
      const rate = measuredRate(result.stdout)
      console.log(`seed limited to 2 MiB/s: ${(rate / MiB).toFixed(3)} MiB/s measured, ${(overallRate(result.stdout) / MiB).toFixed(3)} MiB/s in all`)
      expect(Math.abs(rate - 2 * MiB) / (2 * MiB), `${(rate / MiB).toFixed(3)} MiB/s`).toBeLessThan(0.15)
    }).pipe(Effect.scoped), 240_000)
})
