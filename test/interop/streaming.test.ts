/**
 * Streaming from the real daemon while it downloads (issue 13): a few MiB of H.264 made by
 * ffmpeg, seeded by our `seed` on 127.0.0.1 with its upload held to 256 KiB/s, and the daemon
 * (`bittorrent daemon`, the bundled CLI) given the torrent through a state folder written by the
 * Session's own state store, as if it had been added before a restart. ffprobe reads the stream
 * URL and finds the video while the file is still partial (percentDone < 1 over the daemon's
 * Transmission RPC, and the .part file still there); a Range request for the middle gets
 * exactly those bytes, asked for before the download had them on disk; Range edge cases and path
 * traversal get their status, and the daemon goes on serving.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { existsSync } from "node:fs"
import { mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises"
import * as Http from "node:http"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { equalBytes, toHex } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { TorrentInput } from "../../src/programs/Session.js"
import { saveMetainfo, saveRecord } from "../../src/programs/session/SessionState.js"
import { StateStore } from "../../src/services/StateStore.js"
import { runProcess } from "../support/Process.js"
import { startCli } from "../support/Swarm.js"
import { singleFileInfo, torrentBytes } from "../support/torrent.js"

const pieceLength = 64 * 1024
const uploadRate = "256K"

/** 20 s of the test pattern at 3 Mbit/s, moov first: about 7 MiB. */
const makeVideo = (file: string) =>
  runProcess("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=20:size=320x240:rate=25",
    // Noise, so that the encoder cannot squeeze the pattern below the asked rate.
    "-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-minrate", "3M", "-maxrate", "3M", "-bufsize", "1M",
    "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-y", file
  ], { timeoutMs: 120_000 })

/** A raw GET or HEAD on loopback: the path goes out exactly as given (no URL normalisation). */
const request = (port: number, target: string, headers: Record<string, string> = {}, method = "GET") =>
  Effect.async<{ status: number; headers: Http.IncomingHttpHeaders; body: Uint8Array }, Error>((resume) => {
    const req = Http.request({ host: "127.0.0.1", port, path: target, method, headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body: new Uint8Array(Buffer.concat(chunks)) })))
      res.on("error", (e) => resume(Effect.fail(e)))
    })
    req.on("error", (e) => resume(Effect.fail(e)))
    req.setTimeout(60_000, () => req.destroy(new Error(`${target}: no answer in 60 s`)))
    req.end()
  })

/** The torrent's `percentDone` through the daemon's Transmission RPC (the 409 handshake first). */
const percentDone = (port: number) =>
  Effect.gen(function* () {
    const rpc = (sessionId: string) => Effect.promise(() => fetch(`http://127.0.0.1:${port}/transmission/rpc`, {
      method: "POST",
      headers: { "x-transmission-session-id": sessionId, "content-type": "application/json" },
      body: JSON.stringify({ method: "torrent-get", arguments: { ids: [1], fields: ["percentDone"] } })
    }))
    const handshake = yield* rpc("")
    expect(handshake.status).toBe(409)
    const answer = yield* rpc(handshake.headers.get("x-transmission-session-id") ?? "")
    const body = (yield* Effect.promise(() => answer.json())) as { arguments: { torrents: Array<{ percentDone: number }> } }
    return body.arguments.torrents[0]!.percentDone
  })

const readAt = async (file: string, at: number, length: number) => {
  const handle = await open(file, "r")
  try {
    const out = Buffer.alloc(length)
    const { bytesRead } = await handle.read(out, 0, length, at)
    return new Uint8Array(out.subarray(0, bytesRead))
  } finally {
    await handle.close()
  }
}

describe("streaming from the daemon (ffmpeg, loopback)", () => {
  it.live("ffprobe reads a video while it downloads; a Range of the middle comes before the download has it; traversal is refused", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-stream-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
      )
      const source = path.join(dir, "video.mp4")
      const made = yield* makeVideo(source)
      expect(made.code).toBe(0)
      const video = new Uint8Array(yield* Effect.promise(() => readFile(source)))
      const bytes = torrentBytes(singleFileInfo("video.mp4", video, pieceLength), {})
      const info = Either.getOrThrow(parseTorrent(bytes)).info
      const hash = toHex(info.infoHash)
      const torrentFile = path.join(dir, "video.torrent")
      yield* Effect.promise(() => writeFile(torrentFile, bytes))

      const seeder = yield* startCli(
        ["seed", torrentFile, source, "--host", "127.0.0.1", "--port", "0", "--no-dht", "--max-upload-rate", uploadRate],
        { ready: /listening on 127\.0\.0\.1:\d+/, readyTimeoutMs: 60_000 }
      )
      const seedPort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec((yield* seeder.output).stderr)![1])

      // The daemon's state folder, written as its session writes it on an add.
      const stateDir = path.join(dir, "state")
      const downloads = path.join(dir, "downloads")
      yield* Effect.gen(function* () {
        const store = yield* StateStore
        yield* saveMetainfo(store, hash, bytes)
        yield* saveRecord(store, {
          key: hash,
          input: TorrentInput.Metainfo({ bytes }),
          options: { peers: [{ host: "127.0.0.1", port: seedPort }] },
          directory: downloads,
          paused: false,
          addedAtMs: Date.now(),
          queuePosition: undefined
        })
      }).pipe(Effect.provide(StateStore.layer(stateDir)), Effect.provide(NodeFileSystem.layer))
      const daemon = yield* startCli(
        ["daemon", "--rpc-host", "127.0.0.1", "--rpc-port", "0", "--port", "0", "--host", "127.0.0.1", "--no-dht", "--state-dir", stateDir, "--download-dir", downloads],
        { ready: /daemon: listening on http:\/\/127\.0\.0\.1:\d+/, readyTimeoutMs: 60_000 }
      )
      const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec((yield* daemon.output).stdout)![1])
      const url = `http://127.0.0.1:${port}/stream/${hash}/0`
      const partial = path.join(downloads, "video.mp4.part")
      const incomplete = () => existsSync(partial) && !existsSync(path.join(downloads, "video.mp4"))

      const head = yield* request(port, `/stream/${hash}/0`, {}, "HEAD")
      expect(head.status).toBe(200)
      expect(head.headers).toMatchObject({ "accept-ranges": "bytes", "content-type": "video/mp4", "content-length": String(video.length) })
      expect(head.headers["content-disposition"]).toContain('inline; filename="video.mp4"')
      expect(head.headers).toMatchObject({ "x-content-type-options": "nosniff", "content-security-policy": "sandbox" })

      const probe = yield* runProcess("ffprobe", ["-v", "error", "-show_streams", "-show_format", "-of", "json", url], { timeoutMs: 90_000 })
      expect(probe.code, probe.stderr).toBe(0)
      const doneAfterProbe = yield* percentDone(port)
      expect(doneAfterProbe).toBeLessThan(1)
      expect(incomplete()).toBe(true)
      const probed = JSON.parse(probe.stdout) as { streams: Array<{ codec_name: string; width: number; height: number }>; format: { duration: string } }
      expect(probed.streams[0]).toMatchObject({ codec_name: "h264", width: 320, height: 240 })
      expect(Number(probed.format.duration)).toBeCloseTo(20, 0)

      // The middle: not on disk yet when asked for (an unwritten part of the sparse .part reads as zeros), served exactly.
      const start = Math.floor(video.length / 2)
      const end = start + 99_999
      const want = video.subarray(start, end + 1)
      const before = yield* Effect.promise(() => readAt(partial, start, want.length))
      expect(equalBytes(before, want)).toBe(false)
      const asked = Date.now()
      const middle = yield* request(port, `/stream/${hash}/0`, { range: `bytes=${start}-${end}` })
      const rangeMs = Date.now() - asked
      expect(middle.status).toBe(206)
      expect(middle.headers["content-range"]).toBe(`bytes ${start}-${end}/${video.length}`)
      expect(equalBytes(middle.body, want)).toBe(true)
      const doneAfterRange = yield* percentDone(port)
      expect(doneAfterRange).toBeLessThan(1)
      expect(incomplete()).toBe(true)
      const onDisk = yield* Effect.promise(() => stat(partial))
      console.log(`streaming: ffprobe done at ${(doneAfterProbe * 100).toFixed(1)}%, the middle range at ${(doneAfterRange * 100).toFixed(1)}% after ${rangeMs} ms (${onDisk.blocks * 512} of ${onDisk.size} bytes allocated)`)

      // The torrent's id works as well as its hash; a suffix range; past the end is a 416.
      const tail = yield* request(port, "/stream/1/0", { range: "bytes=-1000" })
      expect(tail.status).toBe(206)
      expect(equalBytes(tail.body, video.subarray(video.length - 1000))).toBe(true)
      const beyond = yield* request(port, `/stream/${hash}/0`, { range: `bytes=${video.length}-` })
      expect(beyond.status).toBe(416)
      expect(beyond.headers["content-range"]).toBe(`bytes */${video.length}`)

      for (const target of [
        "/stream/../../etc/passwd", "/stream/..%2F..%2Fetc%2Fpasswd/0", "/stream/%2e%2e/%2e%2e/etc/passwd", `/stream/${hash}/..%2F..%2Fetc%2Fpasswd`,
        `/stream/${hash}/%2e%2e`, "/stream/..%252F..%252Fetc/0", `/stream/${hash}/1`, `/stream/${hash}/-1`, "/stream/0000000000000000000000000000000000000000/0"
      ]) {
        const refused = yield* request(port, target)
        expect([400, 404], target).toContain(refused.status)
        expect(new TextDecoder().decode(refused.body)).not.toContain("root:")
      }
      expect((yield* request(port, `/stream/${hash}/0`, { range: "bytes=0-9" })).status).toBe(206)
    }).pipe(Effect.scoped), 240_000)
})
