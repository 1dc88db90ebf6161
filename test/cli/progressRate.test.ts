/**
 * The speed the progress line shows against the true rate: a seeder paced at a fixed rate, the
 * engine in process, its events through the plain renderer; the true rate comes from this test's
 * own clock (verified bytes over elapsed time), not from the pacing figure.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { download } from "../../src/programs/Download.js"
import { makeRenderer } from "../../src/programs/cli/progress.js"
import { Hasher } from "../../src/services/Hasher.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Storage } from "../../src/services/Storage.js"
import { Tracker, TrackerError } from "../../src/services/Tracker.js"
import { makeFakePeer, seeder } from "../support/FakePeer.js"
import { handInfo } from "../support/handInfo.js"
import { payloadBytes } from "../support/torrent.js"

const noTracker = Layer.succeed(
  Tracker,
  Tracker.of({
    announce: (url) => Effect.fail(new TrackerError({ url, reason: "Unreachable", detail: "no tracker in this test" })),
    tiers: () => Effect.succeed({ announce: () => Effect.die("no tracker in this test") })
  })
)
const TestLayer = Layer.mergeAll(PeerWire.Tcp, noTracker, Storage.Memory).pipe(Layer.provideMerge(Hasher.Sync))

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

const mibPerSecond = (text: string): number | undefined => {
  const m = /  ([0-9.]+) (B|KiB|MiB)\/s  /.exec(text)
  if (m === null) return undefined
  return (Number(m[1]) * { B: 1, KiB: 1024, MiB: 1048576 }[m[2] as "B" | "KiB" | "MiB"]) / 1048576
}

describe("progress speed", () => {
  it.live("is within 20% of the true rate of a download from a seeder paced at 2 MiB/s", () =>
    Effect.gen(function* () {
      const pieceLength = 65536
      // 16 MiB: about 8 s at the pace, so that several progress lines fall between the window's end
      // (3.5 s) and the download's (10 MiB left only one or two, and sometimes one).
      const { info, payload } = handInfo(pieceLength, [{ path: ["paced.bin"], data: payloadBytes(16 * 1048576, 11) }])
      const peer = yield* makeFakePeer({ handler: seeder({ data: payload, pieceLength, bytesPerSecond: 2 * 1048576 }) })
      const { render } = makeRenderer("plain", "paced.bin", 0)
      // The true rate, by this test's clock: the bytes verified from the first verified piece to the last, over that time.
      const verifiedAt: Array<number> = []
      const shown: Array<number | undefined> = []
      yield* download({ info, trackers: [], peers: [peer.address] }, "paced", { peerId: new Uint8Array(20).fill(7), port: 1 }).pipe(
        Stream.runForEach((event) =>
          Effect.zipRight(
            render([event]),
            Effect.sync(() => {
              if (event._tag === "PieceVerified") verifiedAt.push(Date.now())
              // Past the 3 s window, and not the last moments (the engine's final tick may see the end).
              if (event._tag === "Progress" && verifiedAt.length > 0 && Date.now() - verifiedAt[0]! > 3500 && event.verifiedBytes < payload.length) {
                shown.push(mibPerSecond(written[written.length - 1]!))
              }
            })
          )
        ),
        Effect.timeout("30 seconds")
      )
      const trueRate = ((verifiedAt.length - 1) * pieceLength) / ((verifiedAt[verifiedAt.length - 1]! - verifiedAt[0]!) / 1000) / 1048576
      expect(shown.length).toBeGreaterThanOrEqual(2)
      for (const speed of shown) {
        expect(speed).toBeDefined()
        expect(Math.abs(speed! - trueRate) / trueRate, `shown ${speed} MiB/s, true ${trueRate.toFixed(2)} MiB/s`).toBeLessThan(0.2)
      }
    }).pipe(Effect.scoped, Effect.provide(TestLayer)), 40_000)
})
