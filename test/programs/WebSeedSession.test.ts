/**
 * Web seeds in the torrent core, with the WebSeed service over stand-in servers (no network):
 * a web seed alone fetches every piece; a lying web seed beside an honest one is banned and the
 * honest one finishes; a web seed that only answers 404 ends the torrent with its URL and status.
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, Schedule, Stream } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import type { Info } from "../../src/domain/Metainfo.js"
import { type DownloadEvent, NoPeerSources, type PieceSink, runEngine } from "../../src/programs/Download.js"
import { contiguousRuns } from "../../src/programs/torrent/WebSeedSession.js"
import { Hasher } from "../../src/services/Hasher.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Tracker } from "../../src/services/Tracker.js"
import { WebSeed, type WebSeedResponder, webSeedSources } from "../../src/services/WebSeed.js"
import { handInfo } from "../support/handInfo.js"
import { payloadBytes } from "../support/torrent.js"

const ourId = Uint8Array.from(Buffer.from("-EB0010-webseedtest0", "latin1"))
const { info, payload } = handInfo(16384, [{ path: ["a.bin"], data: payloadBytes(100_000, 4) }, { path: ["b.bin"], data: payloadBytes(90_001, 5) }])

const noTracker = Layer.succeed(Tracker, Tracker.of({ announce: () => Effect.die("no tracker"), tiers: () => Effect.die("no tracker") }))

/** Serves the payload's files under `http://<host>/`, Range only; `lie` flips every byte. */
const server = (host: string, lie = false, seen: Array<string> = []) => (request: HttpClientRequest.HttpClientRequest) =>
  Effect.sync(() => {
    const url = new URL(request.url)
    seen.push(url.host)
    const file = info.files.find((f) => url.pathname === `/hand/${f.path.join("/")}`)
    const m = /^bytes=(\d+)-(\d+)$/.exec(request.headers["range"] ?? "")
    if (url.host !== host || file === undefined || m === null) return new Response("no", { status: 404 })
    const [first, last] = [Number(m[1]), Number(m[2])]
    const body = payload.slice(file.offset + first, file.offset + last + 1).map((b) => (lie ? b ^ 0xff : b))
    return new Response(body, { status: 206, headers: { "content-range": `bytes ${first}-${last}/${file.length}` } })
  })

/** Answers each request by its host's server. */
const byHost = (servers: Record<string, WebSeedResponder>): WebSeedResponder => (request) =>
  servers[new URL(request.url).host]?.(request) ?? Effect.succeed(new Response("no", { status: 404 }))

const memorySink = (target: Info) => {
  const bytes = new Uint8Array(target.totalLength)
  const sink: PieceSink = { writePiece: (index, data) => Effect.sync(() => bytes.set(data, index * target.pieceLength)) }
  return { bytes, sink }
}

/** Runs the engine on web seeds alone until it ends; its events, or its error. */
const runWithWebSeeds = (urls: ReadonlyArray<string>, respond: WebSeedResponder, sink: PieceSink) =>
  Effect.gen(function* () {
    const webSeeds = yield* webSeedSources(urls, info)
    const events: Array<DownloadEvent> = []
    const exit = yield* runEngine({ info, trackers: [] }, sink, Bitfield.empty(info.pieceCount), { peerId: ourId, webSeeds, giveUpAfter: "200 millis" }).pipe(
      Stream.runForEach((e) => Effect.sync(() => events.push(e))),
      Effect.exit
    )
    return { events, exit }
  }).pipe(
    Effect.provide(Layer.mergeAll(PeerWire.Tcp, Hasher.Sync, noTracker, WebSeed.layerTest(respond, { retry: Schedule.recurs(1) })))
  )

describe("web seeds in the torrent core", () => {
  it("contiguousRuns joins blocks that follow each other in the payload, across pieces", () => {
    const runs = contiguousRuns([
      { index: 0, begin: 0, length: 16384 },
      { index: 0, begin: 16384, length: 16384 },
      { index: 1, begin: 0, length: 16384 },
      { index: 5, begin: 0, length: 100 }
    ], 32768)
    expect(runs.map((r) => [r.offset, r.length, r.blocks.length])).toEqual([[0, 49152, 3], [163840, 100, 1]])
  })

  it.live("a web seed alone fetches every piece", () =>
    Effect.gen(function* () {
      const { bytes, sink } = memorySink(info)
      const { exit } = yield* runWithWebSeeds(["http://seed/"], server("seed"), sink)
      expect(exit._tag).toBe("Success")
      expect(bytes).toEqual(payload)
    }))

  it.live("a lying web seed is banned; the honest one finishes, and is never blamed", () =>
    Effect.gen(function* () {
      const { bytes, sink } = memorySink(info)
      const { events, exit } = yield* runWithWebSeeds(
        ["http://liar/", "http://honest/"],
        byHost({ liar: server("liar", true), honest: server("honest") }),
        sink
      )
      expect(exit._tag).toBe("Success")
      expect(bytes).toEqual(payload)
      expect(events.filter((e) => e._tag === "PeerBanned").map((e) => e.peer)).toEqual(["http://liar/"])
    }))

  it.live("a web seed that only answers 404 ends the torrent with its URL and status", () =>
    Effect.gen(function* () {
      const { sink } = memorySink(info)
      const { events, exit } = yield* runWithWebSeeds(["http://gone/"], server("elsewhere"), sink)
      const error = exit._tag === "Failure" ? Cause.squash(exit.cause) : undefined
      expect(error).toBeInstanceOf(NoPeerSources)
      const says = /^web seed http:\/\/gone\/hand\/[ab]\.bin: HTTP 404: not found$/
      expect((error as NoPeerSources).message).toMatch(says)
      const dropped = events.find((e) => e._tag === "PeerDropped")
      expect(dropped?._tag === "PeerDropped" ? dropped.reason : "").toMatch(says)
    }))
})
