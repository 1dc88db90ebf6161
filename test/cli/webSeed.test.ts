/**
 * `download` with web seeds (BEP 19 `url-list`), the bundled CLI as a subprocess against an HTTP
 * server on 127.0.0.1 in this process (test/support/WebSeedServer.ts): web seeds alone (single- and
 * multi-file), web seeds beside a peer, a web seed that lies (banned; the peer finishes), and one
 * that answers 404 when it is the only source (exit 1 naming the URL and the status, soon).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { type Duration, Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { ensureBuilt, runCli } from "../support/cli.js"
import { makeFakePeer, seeder, type FakeConnection } from "../support/FakePeer.js"
import { compactPeers, fakeHttpTracker } from "../support/FakeTracker.js"
import { multiFileInfo, payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"
import { webSeedServer, type WebSeedServerOptions } from "../support/WebSeedServer.js"

let tmp: string
beforeAll(async () => {
  await ensureBuilt()
  tmp = mkdtempSync(path.join(tmpdir(), "bt-webseed-"))
  return () => rmSync(tmp, { recursive: true, force: true })
})

const pieceLength = 32768
const payload = payloadBytes(pieceLength * 24 - 1000, 11)
const singleInfo = singleFileInfo("payload.bin", payload, pieceLength)

const writeTorrent = (name: string, info: Bencode.BencodeDict, top: Record<string, Bencode.Bencode>) => {
  const file = path.join(tmp, `${name}.torrent`)
  writeFileSync(file, torrentBytes(info, top))
  return file
}

/** The CLI's download, bounded; no DHT, listening on any port of 127.0.0.1. */
const download = (torrent: string, out: string, extra: ReadonlyArray<string> = []) =>
  Effect.promise(() => runCli(["download", "--host", "127.0.0.1", "--port", "0", "--no-dht", ...extra, "-o", out, torrent], 60_000))

/** A web seed serving the single-file payload at `/files/payload.bin`. */
const singleSeed = (options: Omit<WebSeedServerOptions, "files"> = {}) =>
  webSeedServer({ ...options, files: { "/files/payload.bin": payload } })

/** A fake seeder of the payload (its connections kept, to see what it sent) and a tracker naming it. */
const peerAndTracker = (answerDelay?: Duration.DurationInput) =>
  Effect.gen(function* () {
    const connections: Array<FakeConnection> = []
    const peer = yield* makeFakePeer({
      ...(answerDelay === undefined ? {} : { answerDelay }),
      handler: (c) => Effect.suspend(() => (connections.push(c), seeder({ data: payload, pieceLength, bytesPerSecond: 400_000 })(c)))
    })
    const tracker = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers([peer.address]) })) })
    return { tracker, sent: () => connections.reduce((n, c) => n + c.bytesSent(), 0) }
  })

describe("download with web seeds (BEP 19)", () => {
  it.scopedLive("a single-file torrent with a web seed and no tracker downloads exactly", () =>
    Effect.gen(function* () {
      const server = yield* singleSeed()
      const torrent = writeTorrent("single", singleInfo, { "url-list": Bencode.text(`${server.origin}/files/payload.bin`) })
      const out = path.join(tmp, "single.bin")
      const r = yield* download(torrent, out, ["--quiet"])
      expect(r.code, r.stderr).toBe(0)
      expect(new Uint8Array(readFileSync(out))).toEqual(payload)
      expect(server.requests()).toBeGreaterThan(0)
    }), 90_000)

  it.scopedLive("a multi-file torrent from a folder URL (name and paths appended, percent-encoded) downloads exactly", () =>
    Effect.gen(function* () {
      const files = [
        { path: ["a.bin"], data: payloadBytes(50_000, 1) },
        { path: ["sub dir", "b c.bin"], data: payloadBytes(70_001, 2) },
        { path: ["empty"], data: new Uint8Array(0) },
        { path: ["d.bin"], data: payloadBytes(100_000, 3) }
      ]
      const server = yield* webSeedServer({
        files: {
          "/pub/multi/a.bin": files[0]!.data,
          "/pub/multi/sub%20dir/b%20c.bin": files[1]!.data,
          "/pub/multi/d.bin": files[3]!.data
        }
      })
      const torrent = writeTorrent("multi", multiFileInfo("multi", files, 16384), { "url-list": [Bencode.text(`${server.origin}/pub/`)] })
      const out = path.join(tmp, "multi")
      const r = yield* download(torrent, out, ["--quiet"])
      expect(r.code, r.stderr).toBe(0)
      for (const f of files) expect(new Uint8Array(readFileSync(path.join(out, ...f.path)))).toEqual(f.data)
    }), 90_000)

  it.scopedLive("a peer and a web seed together: both serve part of it, and it downloads exactly", () =>
    Effect.gen(function* () {
      const server = yield* singleSeed({ delayMillis: 40 })
      const { tracker, sent } = yield* peerAndTracker()
      const torrent = writeTorrent("mixed", singleInfo, {
        announce: Bencode.text(tracker.url),
        "url-list": Bencode.text(`${server.origin}/files/payload.bin`)
      })
      const out = path.join(tmp, "mixed.bin")
      const r = yield* download(torrent, out, ["--quiet"])
      expect(r.code, r.stderr).toBe(0)
      expect(new Uint8Array(readFileSync(out))).toEqual(payload)
      // More than the greeting each: pieces came from both.
      expect(server.bytesServed()).toBeGreaterThan(pieceLength)
      expect(sent()).toBeGreaterThan(pieceLength)
    }), 90_000)

  it.scopedLive("a web seed that serves wrong bytes is banned, and the peer finishes the download", () =>
    Effect.gen(function* () {
      const server = yield* singleSeed({ lie: true })
      // The peer answers late, so the liar's pieces come first.
      const { tracker } = yield* peerAndTracker("1 second")
      const url = `${server.origin}/files/payload.bin`
      const torrent = writeTorrent("liar", singleInfo, { announce: Bencode.text(tracker.url), "url-list": Bencode.text(url) })
      const out = path.join(tmp, "liar.bin")
      const r = yield* download(torrent, out, ["--json"])
      expect(r.code, r.stderr).toBe(0)
      expect(new Uint8Array(readFileSync(out))).toEqual(payload)
      const events = r.stdout.trim().split("\n").map((line) => JSON.parse(line) as { event: string; peer?: string })
      expect(events.filter((e) => e.event === "peer_banned").map((e) => e.peer)).toEqual([url])
      expect(events.some((e) => e.event === "piece_rejected")).toBe(true)
    }), 90_000)

  it.scopedLive("a web seed that answers 404, the only source: exit 1 naming the URL and the status, within seconds", () =>
    Effect.gen(function* () {
      const server = yield* singleSeed({ status: 404 })
      const url = `${server.origin}/files/payload.bin`
      const torrent = writeTorrent("gone", singleInfo, { "url-list": Bencode.text(url) })
      const started = Date.now()
      const r = yield* download(torrent, path.join(tmp, "gone.bin"), ["--quiet", "--give-up-after", "1"])
      expect(r.code).toBe(1)
      expect(r.stderr.trim().split("\n").at(-1)).toBe(`error: web seed ${url}: HTTP 404: not found`)
      // 4 tries (3 retries, backoff from 500 ms), then 1 s without a source, plus start-up.
      expect(server.requests()).toBeGreaterThanOrEqual(4)
      expect((Date.now() - started) / 1000).toBeLessThan(20)
    }), 90_000)

  it.scopedLive("a redirect is followed; a redirect loop ends with a clear error", () =>
    Effect.gen(function* () {
      const server = yield* webSeedServer({
        files: { "/files/payload.bin": payload },
        redirects: { "/old/payload.bin": "/files/payload.bin", "/loop/a": "/loop/b", "/loop/b": "/loop/a" }
      })
      const moved = writeTorrent("moved", singleInfo, { "url-list": Bencode.text(`${server.origin}/old/payload.bin`) })
      const out = path.join(tmp, "moved.bin")
      const r = yield* download(moved, out, ["--quiet"])
      expect(r.code, r.stderr).toBe(0)
      expect(new Uint8Array(readFileSync(out))).toEqual(payload)
      const looping = writeTorrent("looping", singleInfo, { "url-list": Bencode.text(`${server.origin}/loop/a`) })
      const failed = yield* download(looping, path.join(tmp, "looping.bin"), ["--quiet", "--give-up-after", "1"])
      expect(failed.code).toBe(1)
      expect(failed.stderr.trim().split("\n").at(-1)).toBe(`error: web seed ${server.origin}/loop/a: HTTP 302: more than 5 redirects`)
    }), 90_000)

  it.scopedLive("--no-web-seeds ignores the url-list", () =>
    Effect.gen(function* () {
      const server = yield* singleSeed()
      const torrent = writeTorrent("ignored", singleInfo, { "url-list": Bencode.text(`${server.origin}/files/payload.bin`) })
      const r = yield* download(torrent, path.join(tmp, "ignored.bin"), ["--quiet", "--no-web-seeds", "--give-up-after", "1"])
      expect(r.code).toBe(1)
      expect(server.requests()).toBe(0)
    }), 90_000)
})
