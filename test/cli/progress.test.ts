/**
 * The stderr renderers of download and seed progress, in process: what they write in each mode
 * (captured from process.stderr.write), and the status line shared by both.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { DownloadEvent } from "../../src/programs/Download.js"
import { connectedPeersText, formatBytes, formatRate, makeRenderer, makeStatusLines, peersText } from "../../src/programs/cli/progress.js"
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
  const total = 4 * 1048576
  const progress = (verifiedBytes: number, peers = 2) =>
    DownloadEvent.Progress({ verifiedBytes, totalBytes: total, bytesPerSecond: 1, peers, piecesDone: 1, piecesTotal: 4, uploadedBytes: 0, uploadBytesPerSecond: 0, interested: 0, unchoked: 0 })
  const started = (verified: number, bytesLeft: number) => DownloadEvent.Started({ pieces: 4, verified, bytesLeft, totalBytes: total, host: undefined, port: undefined })
  const uploaded = (bytes: number) => SeedEvent.Uploaded({ bytes, bytesPerSecond: 0, peers: 1, interested: 1, unchoked: 1 })

  it("sizes and rates in the unit that reads best; 1 peer, 2 peers", () => {
    expect([formatBytes(0), formatBytes(1023), formatBytes(1536), formatBytes(100 * 1048576), formatBytes(3 * 1073741824)]).toEqual(
      ["0 B", "1023 B", "1.5 KiB", "100.0 MiB", "3.0 GiB"]
    )
    expect(formatRate(512)).toBe("512 B/s")
    expect([peersText(1), peersText(2), peersText(0)]).toEqual(["1 peer", "2 peers", "0 peers"])
  })

  it("says how peers connected when some are over uTP or encrypted, and nothing more when none are", () => {
    expect(connectedPeersText(12, 5, 7)).toBe("12 peers (5 uTP, 7 encrypted)")
    expect(connectedPeersText(3, 1, 0)).toBe("3 peers (1 uTP)")
    expect(connectedPeersText(1, 0, 1)).toBe("1 peer (1 encrypted)")
    expect([connectedPeersText(2, 0, 0), connectedPeersText(2)]).toEqual(["2 peers", "2 peers"])
  })

  it.effect("download: the status line counts the uTP and encrypted peers", () =>
    Effect.gen(function* () {
      const { render } = makeRenderer("live", "out.bin")
      yield* render([started(0, total)])
      yield* TestClock.adjust("1 second")
      yield* render([DownloadEvent.Progress({
        verifiedBytes: 1048576, totalBytes: total, bytesPerSecond: 1, peers: 12, utpPeers: 5, encryptedPeers: 7,
        piecesDone: 1, piecesTotal: 4, uploadedBytes: 0, uploadBytesPerSecond: 0, interested: 0, unchoked: 0
      })])
      expect(written.at(-1)).toBe(`${clear}25.0% 1.0 MiB/4.0 MiB  1.0 MiB/s  12 peers (5 uTP, 7 encrypted)  ETA 3s`)
    }))

  it.effect("download: the speed is that of the last seconds (the engine's rate is ignored), then the summary", () =>
    Effect.gen(function* () {
      const { render } = makeRenderer("live", "out.bin")
      yield* render([started(0, total)])
      yield* TestClock.adjust("1 second")
      yield* render([progress(1048576, 1)])
      // Slower now: 256 KiB in each of the next 3 s; the window (3 s) forgets the fast first second.
      for (let s = 1; s <= 3; s++) {
        yield* TestClock.adjust("1 second")
        yield* render([progress(1048576 + s * 262144)])
      }
      yield* render([DownloadEvent.PeerConnected({ peer: "a", client: "x", inbound: false, encryption: "plaintext" })])
      yield* render([DownloadEvent.PieceRejected({ index: 1, peers: ["a"], bytes: 1048576 })])
      yield* render([DownloadEvent.Completed({ bytes: total, seconds: 2 })])
      expect(written.slice(0, 4)).toEqual([
        `${clear}25.0% 1.0 MiB/4.0 MiB  1.0 MiB/s  1 peer  ETA 3s`,
        `${clear}31.3% 1.3 MiB/4.0 MiB  640.0 KiB/s  2 peers  ETA 5s`,
        `${clear}37.5% 1.5 MiB/4.0 MiB  512.0 KiB/s  2 peers  ETA 5s`,
        `${clear}43.8% 1.8 MiB/4.0 MiB  256.0 KiB/s  2 peers  ETA 9s`
      ])
      expect(written.slice(-1)).toEqual(["done: out.bin, 4.0 MiB in 2.00 s (2.0 MiB/s), 1 peer, 1.0 MiB wasted\n"])
    }))

  it.effect("download: nothing needed reads 'already complete'", () =>
    Effect.gen(function* () {
      const { render } = makeRenderer("plain", "out.bin", 0)
      yield* render([started(4, 0)])
      yield* render([DownloadEvent.Completed({ bytes: 0, seconds: 0 })])
      expect(written).toEqual(["already complete: out.bin (4.0 MiB)\n"])
    }))

  it.effect("download: an interrupt ends the status line and says how far it got", () =>
    Effect.gen(function* () {
      const renderer = makeRenderer("live", "out.bin")
      yield* renderer.render([started(1, 3 * 1048576)])
      yield* renderer.render([DownloadEvent.PieceVerified({ index: 2 })])
      yield* renderer.render([progress(2 * 1048576)])
      yield* renderer.interrupted
      expect(written.slice(-1)).toEqual(["\ninterrupted: 2 of 4 pieces verified; run the same command to resume\n"])
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
      yield* makeRenderer("quiet", "out.bin", 0).render([progress(1)])
      yield* makeSeedRenderer("quiet", 0)(uploaded(1))
      expect(written).toEqual([])
    }))
})
