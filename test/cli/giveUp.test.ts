/**
 * `download` when its only peer source fails for good: a tracker that refuses the announce, or
 * answers HTTP 500. It must not sit for minutes: it exits 1 within 30 s with the tracker's words,
 * and leaves no full-size file behind (only what `.part` holds).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { ensureBuilt, runCli } from "../support/cli.js"
import { fakeHttpTracker } from "../support/FakeTracker.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

let tmp: string
beforeAll(async () => {
  await ensureBuilt()
  tmp = mkdtempSync(path.join(tmpdir(), "bt-giveup-"))
  return () => rmSync(tmp, { recursive: true, force: true })
})

const torrentFor = (name: string, announce: string): string => {
  const file = path.join(tmp, `${name}.torrent`)
  writeFileSync(file, torrentBytes(singleFileInfo(`${name}.bin`, payloadBytes(100_000, 3), 32768), { announce: Bencode.text(announce) }))
  return file
}

const downloadGivesUp = (
  name: string,
  reply: { readonly status?: number; readonly body: Uint8Array },
  says: RegExp,
  extra: ReadonlyArray<string> = [],
  withinSeconds = 30
) =>
  Effect.gen(function* () {
    const tracker = yield* fakeHttpTracker(reply)
    const out = path.join(tmp, `${name}.bin`)
    const started = Date.now()
    const r = yield* Effect.promise(() =>
      // The tracker is the only source here: with the DHT on, its first round (no node answers) comes first.
      runCli(["download", "--quiet", "--host", "127.0.0.1", "--port", "0", "--no-dht", ...extra, "-o", out, torrentFor(name, tracker.url)], 45_000)
    )
    const seconds = (Date.now() - started) / 1000
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split("\n").at(-1)).toMatch(says)
    expect(seconds).toBeLessThan(withinSeconds)
    expect(existsSync(out)).toBe(false)
  })

describe("download gives up when every peer source failed for good", () => {
  it.scopedLive("a tracker that answers `failure reason`: exit 1 with that reason", () =>
    downloadGivesUp(
      "refused",
      { body: Bencode.encode(Bencode.dict({ "failure reason": Bencode.text("torrent not registered") })) },
      /^error: tracker http:\/\/127\.0\.0\.1:\d+\/announce refused the announce: torrent not registered$/
    ), 60_000)

  it.scopedLive("a tracker that answers HTTP 500: exit 1 with the status (after --give-up-after 3)", () =>
    downloadGivesUp(
      "http500",
      { status: 500, body: new TextEncoder().encode("oops") },
      /^error: tracker http:\/\/127\.0\.0\.1:\d+\/announce answered with an HTTP error: HTTP 500$/,
      ["--give-up-after", "3"],
      // 3 s after the tracker's first answer (it fails for good at once), plus start-up
      15
    ), 60_000)
})
