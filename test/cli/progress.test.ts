/**
 * The stderr renderers of download and seed progress, in process: what they write in each mode
 * (captured from process.stderr.write), and the status line shared by both.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import { DownloadEvent } from "../../src/programs/Download.js"
import { makeRenderer, makeStatusLines } from "../../src/programs/cli/progress.js"
import { makeSeedRenderer } from "../../src/programs/cli/seed.js"
import { SeedEvent } from "../../src/programs/Seed.js"

let written: Array<string>
beforeEach(() => {
  written = []
  vi.spyOn(process.stderr, "write").mockImplementation((text) => {
    written.push(String(text))
    return true
  })
})
afterEach(() => {
  vi.restoreAllMocks()
})

const clear = "\r\x1b[K"

describe("status lines", () => {
  it("live: the status is rewritten in place, and a plain line first clears it, once", () => {
    const { line, status } = makeStatusLines("live", 5000)
    expect(status("10%")).toBe(false)
    expect(status("20%")).toBe(false)
    line("a")
    line("b")
    expect(written).toEqual([`${clear}10%`, `${clear}20%`, clear, "a\n", "b\n"])
  })

  it("plain: the status is a plain line, at most once per interval, and only when worth printing", () => {
    const { line, status } = makeStatusLines("plain", 60_000)
    expect(status("same", false)).toBe(false)
    expect(status("first")).toBe(true)
    expect(status("too soon")).toBe(false)
    line("a")
    expect(written).toEqual(["first\n", "a\n"])
    const eager = makeStatusLines("plain", 0)
    expect([eager.status("x"), eager.status("y"), eager.status("z", false)]).toEqual([true, true, false])
    expect(written.slice(2)).toEqual(["x\n", "y\n"])
  })
})

describe("renderers", () => {
  const progress = (verifiedBytes: number) =>
    DownloadEvent.Progress({ verifiedBytes, totalBytes: 4 * 1048576, bytesPerSecond: 1048576, peers: 2, piecesDone: 1, piecesTotal: 4, uploadedBytes: 0, uploadBytesPerSecond: 0, interested: 0, unchoked: 0 })
  const uploaded = (bytes: number) => SeedEvent.Uploaded({ bytes, bytesPerSecond: 0, peers: 1, interested: 1, unchoked: 1 })

  it.effect("download: progress on the live line, then the done line below it", () =>
    Effect.gen(function* () {
      const render = makeRenderer("live")
      yield* render(progress(1048576))
      yield* render(DownloadEvent.Completed({ bytes: 4 * 1048576, seconds: 2 }))
      expect(written).toEqual([`${clear}25.0% 1.0/4.0 MiB  1.0 MiB/s  2 peers  ETA 3s`, clear, "done: 4.0 MiB downloaded in 2.00 s\n"])
    }))

  it.effect("seed, plain: the upload totals are printed again only once they changed", () =>
    Effect.gen(function* () {
      const render = makeSeedRenderer("plain", 0)
      yield* render(uploaded(1048576))
      yield* render(uploaded(1048576))
      yield* render(uploaded(2 * 1048576))
      expect(written).toEqual([
        "uploaded 1.0 MiB  0.0 MiB/s  1 peers, 1 unchoked\n",
        "uploaded 2.0 MiB  0.0 MiB/s  1 peers, 1 unchoked\n"
      ])
    }))

  it.effect("quiet: nothing at all", () =>
    Effect.gen(function* () {
      yield* makeRenderer("quiet", 0)(progress(1))
      yield* makeSeedRenderer("quiet", 0)(uploaded(1))
      expect(written).toEqual([])
    }))
})
