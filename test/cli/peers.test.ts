/**
 * `peers <file.torrent>` as a subprocess of the bundled CLI, against fake trackers that run in this
 * test process. The torrent is the course's sample.torrent with its announce rewritten (announce is
 * outside info, so the info hash stays d69f91e6...).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { fromHex } from "../../src/domain/Bytes.js"
import { ensureBuilt, fixturesDir, runCli } from "../support/cli.js"
import { compactPeers, fakeHttpTracker, fakeUdpTracker, queryParams, rawQueryBytes } from "../support/FakeTracker.js"
import { withKeys } from "../support/torrent.js"

const sampleInfoHash = fromHex("d69f91e6b2ae4c542468d1073a71d4ea13879a7f", 20)!
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

let tmp: string
beforeAll(async () => {
  await ensureBuilt()
  tmp = mkdtempSync(path.join(tmpdir(), "bt-peers-"))
  return () => rmSync(tmp, { recursive: true, force: true })
})

/** sample.torrent with its trackers replaced; returns the new file's path. */
const sampleWith = (name: string, trackers: Record<string, Bencode.Bencode | undefined>): string => {
  const original = readFileSync(path.join(fixturesDir, "course-sample/sample.torrent"))
  const meta = Bencode.decode(new Uint8Array(original))
  if (meta._tag === "Left" || !Bencode.isDict(meta.right)) throw new Error("sample.torrent does not decode")
  const file = path.join(tmp, name)
  writeFileSync(file, Bencode.encode(withKeys(meta.right, trackers)))
  return file
}

const run = (args: ReadonlyArray<string>) => Effect.promise(() => runCli(args))

describe("peers", () => {
  it.live("announces with the query of CONTRACT.md and prints ip:port lines", () =>
    Effect.gen(function* () {
      const six = new Uint8Array(18)
      six[15] = 1
      six.set([0x1a, 0xe2], 16)
      const fake = yield* fakeHttpTracker({
        body: Bencode.encode(Bencode.dict({
          interval: 60n,
          peers: compactPeers([{ host: "165.232.33.77", port: 51467 }, { host: "178.62.85.20", port: 51489 }]),
          peers6: six
        }))
      })
      const torrent = sampleWith("http.torrent", { announce: ascii(fake.url) })
      const r = yield* run(["peers", torrent])
      expect(r.stderr).toBe("")
      expect(r.stdout).toBe("165.232.33.77:51467\n178.62.85.20:51489\n[::1]:6882\n")
      expect(r.code).toBe(0)
      expect(fake.queries.length).toBe(1)
      const query = fake.queries[0]!
      expect(rawQueryBytes(query, "info_hash")).toEqual(sampleInfoHash)
      expect(rawQueryBytes(query, "peer_id")?.length).toBe(20)
      const q = queryParams(query)
      expect([q.get("port"), q.get("uploaded"), q.get("downloaded"), q.get("left"), q.get("compact")]).toEqual(["6881", "0", "0", "92063", "1"])
    }).pipe(Effect.scoped))

  it.live("a tracker's failure reason is a one-line error", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ "failure reason": ascii("unregistered torrent") })) })
      const r = yield* run(["peers", sampleWith("refused.torrent", { announce: ascii(fake.url) })])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe("")
      expect(r.stderr).toContain(`error: tracker ${fake.url} refused the announce: unregistered torrent\n`)
    }).pipe(Effect.scoped))

  it.live("falls back through the announce-list tiers to a UDP tracker", () =>
    Effect.gen(function* () {
      const down = yield* fakeHttpTracker({ status: 503, body: ascii("busy") })
      const udp = yield* fakeUdpTracker({ peers: [{ host: "127.0.0.1", port: 40001 }] })
      const torrent = sampleWith("tiers.torrent", {
        announce: ascii(down.url),
        "announce-list": [[ascii(down.url)], [ascii(udp.url)]]
      })
      const r = yield* run(["peers", torrent])
      expect(r.stdout).toBe("127.0.0.1:40001\n")
      expect(r.code).toBe(0)
      expect(down.queries.length).toBe(1)
      expect(r.stderr).toMatch(/HTTP 503/) // the skipped tracker is reported as a warning
      const announce = udp.received.find((d) => d.action === 1)!
      expect(announce.bytes.subarray(16, 36)).toEqual(sampleInfoHash)
    }).pipe(Effect.scoped))
})
