/**
 * The download engine against scripted fake peers over real loopback sockets: splitting the work
 * between peers, corrupt, stalling, choking, vanishing and misbehaving peers, resume from disk,
 * single pieces and stalls. Every test checks the exact payload at the end.
 *
 * The engine keeps its clocks with `Date.now()` (request ages, the stall check), so TestClock
 * cannot drive it: these are `it.live` tests with short real timeouts.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schedule, type Scope, Stream, TestClock } from "effect"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { type Info, pieceSize } from "../../src/domain/Metainfo.js"
import { formatPeer, type PeerAddress } from "../../src/domain/Peer.js"
import { Message, type Request } from "../../src/domain/Wire.js"
import {
  download,
  type DownloadEvent,
  DownloadStalled,
  type EngineOptions,
  type PieceSink,
  runEngine
} from "../../src/programs/Download.js"
import { Hasher } from "../../src/services/Hasher.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Storage } from "../../src/services/Storage.js"
import { Tracker, TrackerError } from "../../src/services/Tracker.js"
import { distinctPeerId, type FakeConnection, type FakePeerOptions, makeFakePeer, seeder, type SeederOptions } from "../support/FakePeer.js"
import { compactPeers, fakeHttpTracker, queryParams } from "../support/FakeTracker.js"
import { handInfo } from "../support/handInfo.js"
import { payloadBytes, sha1 } from "../support/torrent.js"

// --- fixtures -------------------------------------------------------------------------------

const ourId = Uint8Array.from(Buffer.from("-EB0010-downloadtest", "latin1"))
/** Nothing listens there: keeps the engine's own-address filter away from the fakes' ports. */
const ourPort = 1
const noRetry = Schedule.recurs(0)

/** No trackers in these tests: `trackers: []` still asks for (empty) tiers. */
const noTracker = Layer.succeed(
  Tracker,
  Tracker.of({
    announce: (url) => Effect.fail(new TrackerError({ url, reason: "Unreachable", detail: "no tracker in this test" })),
    tiers: () => Effect.succeed({ announce: () => Effect.die("no tracker in this test") })
  })
)
const EngineLayer = Layer.mergeAll(PeerWire.Tcp, Hasher.Sync, noTracker)
const DiskLayer = Layer.mergeAll(EngineLayer, Storage.Live.pipe(Layer.provide(Hasher.Sync)), NodeFileSystem.layer)

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const singleFile = (pieceLength: number, length: number, seed: number) =>
  handInfo(pieceLength, [{ path: ["payload.bin"], data: payloadBytes(length, seed) }])

const pieceOf = (info: Info, payload: Uint8Array, index: number) =>
  payload.subarray(index * info.pieceLength, index * info.pieceLength + pieceSize(info, index))

/** Where verified pieces land in memory (copied: the engine reuses its piece buffers), in write order. */
const memorySink = (info: Info) => {
  const bytes = new Uint8Array(info.totalLength)
  const writes: Array<number> = []
  const sink: PieceSink = {
    writePiece: (index, data) =>
      Effect.sync(() => {
        bytes.set(data, index * info.pieceLength)
        writes.push(index)
      })
  }
  return { bytes, writes, sink }
}

type Handler = NonNullable<FakePeerOptions["handler"]>

/** A fake peer running `handler` that records every message the client sends it. */
const recordingPeer = (handler: Handler, options: Omit<FakePeerOptions, "handler"> = {}) =>
  Effect.gen(function* () {
    const received: Array<Message> = []
    const peer = yield* makeFakePeer({
      peerId: distinctPeerId(),
      ...options,
      handler: (c) => handler({ ...c, messages: c.messages.pipe(Stream.tap((m) => Effect.sync(() => received.push(m)))) })
    })
    const requests = () => received.filter((m): m is Request => m._tag === "Request")
    return { ...peer, key: formatPeer(peer.address), received, requests }
  })

const seederPeer = (options: SeederOptions, peerOptions: Omit<FakePeerOptions, "handler"> = {}) =>
  recordingPeer(seeder(options), peerOptions)

/** Piece indexes of requests, deduplicated and sorted. */
const pieceIndexes = (requests: ReadonlyArray<Request>) => [...new Set(requests.map((r) => r.index))].sort((a, b) => a - b)
const blockKey = (r: { readonly index: number; readonly begin: number }) => `${r.index}:${r.begin}`

const options = (extra: Partial<EngineOptions> = {}): EngineOptions => ({ peerId: ourId, port: ourPort, ...extra })

/** Runs the engine to its end, handing each event to `onEvent` as it comes; bounded in real time. */
const runToEnd = (
  info: Info,
  peers: ReadonlyArray<PeerAddress>,
  sink: PieceSink,
  engineOptions: Partial<EngineOptions> = {},
  onEvent: (e: DownloadEvent) => Effect.Effect<unknown> = () => Effect.void,
  have: Bitfield = Bitfield.empty(info.pieceCount)
) =>
  Effect.gen(function* () {
    const events: Array<DownloadEvent> = []
    yield* runEngine({ info, trackers: [], peers }, sink, have, options(engineOptions)).pipe(
      Stream.runForEach((e) => Effect.zipRight(Effect.sync(() => events.push(e)), onEvent(e))),
      Effect.timeout("8 seconds")
    )
    return events
  })

const ofTag = <T extends DownloadEvent["_tag"]>(events: ReadonlyArray<DownloadEvent>, tag: T) =>
  events.filter((e): e is Extract<DownloadEvent, { _tag: T }> => e._tag === tag)

const verifiedIndexes = (events: ReadonlyArray<DownloadEvent>) =>
  ofTag(events, "PieceVerified").map((e) => e.index).sort((a, b) => a - b)

const allIndexes = (info: Info) => Array.from({ length: info.pieceCount }, (_, i) => i)

/** The common end state: Started first, Completed last, every wanted piece verified once, exact bytes. */
const expectComplete = (events: ReadonlyArray<DownloadEvent>, info: Info, payload: Uint8Array, bytes: Uint8Array) => {
  expect(events[0]?._tag).toBe("Started")
  expect(events.at(-1)?._tag).toBe("Completed")
  expect(verifiedIndexes(events)).toEqual(allIndexes(info))
  expect(sha256(bytes)).toBe(sha256(payload))
}

const corrupt = (data: Uint8Array) => data.map((b) => b ^ 0xff)

/**
 * A liar that corrupts piece 1, and an honest seeder that hides piece 1 until the first `revealOn`
 * event passes through `onEvent` (hand it to `runToEnd`), then announces it with a have.
 */
const liarAndHonest = (info: Info, payload: Uint8Array, revealOn: DownloadEvent["_tag"]) =>
  Effect.gen(function* () {
    const liar = yield* seederPeer({
      data: payload,
      pieceLength: info.pieceLength,
      block: (r, data) => (r.index === 1 ? corrupt(data) : data)
    })
    const reveal = yield* Deferred.make<void>()
    let revealed = false
    const honest = yield* recordingPeer((c) =>
      Effect.zipRight(
        Deferred.await(reveal).pipe(
          Effect.andThen(() => {
            revealed = true
            return c.send([Message.have(1)])
          }),
          Effect.forkScoped
        ),
        seeder({ data: payload, pieceLength: info.pieceLength, has: (i) => i !== 1 || revealed })(c)
      )
    )
    const onEvent = (e: DownloadEvent) => (e._tag === revealOn ? Deferred.succeed(reveal, undefined) : Effect.void)
    return { liar, honest, onEvent }
  })

/** A temporary folder removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "bt-download-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

// --- tests ----------------------------------------------------------------------------------

describe("download engine", () => {
  it.live("splits the pieces between three peers that each have a third of them", () =>
    Effect.gen(function* () {
      // 12 pieces of two blocks; the last piece is short.
      const { info, payload } = singleFile(32768, 12 * 32768 - 1000, 1)
      const peers = yield* Effect.forEach([0, 1, 2], (k) =>
        seederPeer({ data: payload, pieceLength: info.pieceLength, has: (i) => i % 3 === k })
      )
      const { bytes, sink, writes } = memorySink(info)
      const events = yield* runToEnd(info, peers.map((p) => p.address), sink)

      expectComplete(events, info, payload, bytes)
      expect(writes.length).toBe(info.pieceCount)
      expect(ofTag(events, "PeerConnected").map((e) => e.peer).sort()).toEqual(peers.map((p) => p.key).sort())
      expect(ofTag(events, "PeerConnected").every((e) => e.client === "FK0001")).toBe(true)
      expect(ofTag(events, "Completed")[0]!.bytes).toBe(info.totalLength)
      expect(ofTag(events, "PieceRejected")).toEqual([])
      peers.forEach((p, k) => {
        // each peer was asked for exactly the pieces it has, and nothing else
        expect(pieceIndexes(p.requests())).toEqual(allIndexes(info).filter((i) => i % 3 === k))
      })
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("advertises only what it can serve: no haves from a sink that cannot read pieces back, haves from one that can", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(16384, 8 * 16384, 4)
      /** Haves and bitfields an empty peer got from us while we fetched from a slow seeder. */
      const advertised = (sink: PieceSink) =>
        Effect.scoped(
          Effect.gen(function* () {
            const seeder = yield* seederPeer({ data: payload, pieceLength: info.pieceLength, bytesPerSecond: 64 * 1024 })
            const empty = yield* recordingPeer((c) => Stream.runDrain(c.messages))
            yield* runToEnd(info, [seeder.address, empty.address], sink)
            return empty.received.filter((m) => m._tag === "Have" || m._tag === "Bitfield").length
          })
        )
      const { bytes, sink } = memorySink(info)
      expect(yield* advertised(sink)).toBe(0)
      const readable: PieceSink = {
        ...memorySink(info).sink,
        readBlock: (index, begin, length) =>
          Effect.succeed(bytes.subarray(index * info.pieceLength + begin, index * info.pieceLength + begin + length))
      }
      expect(yield* advertised(readable)).toBeGreaterThan(0)
    }).pipe(Effect.provide(EngineLayer)))

  it.live("bans the lone sender of a corrupt piece at once, never dials it again, and fetches the piece from another peer", () =>
    Effect.gen(function* () {
      // One block per piece, so each piece has a single sender.
      const { info, payload } = singleFile(16384, 6 * 16384, 3)
      // Only the liar has piece 1 until it is banned.
      const { honest, liar, onEvent } = yield* liarAndHonest(info, payload, "PeerBanned")
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [liar.address, honest.address], sink, {}, onEvent)

      expectComplete(events, info, payload, bytes)
      expect(ofTag(events, "PieceRejected")).toEqual([expect.objectContaining({ index: 1, peers: [liar.key] })])
      expect(ofTag(events, "PeerBanned").map((e) => e.peer)).toEqual([liar.key])
      const banAt = events.findIndex((e) => e._tag === "PeerBanned")
      expect(events.findIndex((e) => e._tag === "PieceVerified" && e.index === 1)).toBeGreaterThan(banAt)
      expect(pieceIndexes(honest.requests())).toContain(1)
      expect(yield* liar.connections).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("requests a stalling peer never answers time out and other peers finish", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 10 * 32768, 4)
      const staller = yield* seederPeer({ data: payload, pieceLength: info.pieceLength, block: () => undefined })
      const good = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [staller.address, good.address], sink, { requestTimeout: "300 millis" })

      expectComplete(events, info, payload, bytes)
      // the staller was asked for blocks, and each of them was then fetched from the good peer
      const asked = new Set(staller.requests().map(blockKey))
      expect(asked.size).toBeGreaterThan(0)
      const fromGood = new Set(good.requests().map(blockKey))
      for (const b of asked) expect(fromGood.has(b)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("asks again for blocks whose requests timed out (a single peer that ignores first requests)", () =>
    Effect.gen(function* () {
      // Without the timeout nothing would ever be asked again: the peer ignores the first request for every block.
      const { info, payload } = singleFile(32768, 8 * 32768, 5)
      const seen = new Set<string>()
      const peer = yield* seederPeer({
        data: payload,
        pieceLength: info.pieceLength,
        block: (r, data) => {
          const key = blockKey(r)
          if (seen.has(key)) return data
          seen.add(key)
          return undefined
        }
      })
      const { bytes, sink } = memorySink(info)
      const startedAt = Date.now()
      const events = yield* runToEnd(info, [peer.address], sink, { requestTimeout: "300 millis" })

      expectComplete(events, info, payload, bytes)
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300)
      const counts = new Map<string, number>()
      for (const r of peer.requests()) counts.set(blockKey(r), (counts.get(blockKey(r)) ?? 0) + 1)
      expect(counts.size).toBe(16)
      // twice each (a third time only if an answer were itself slower than the timeout)
      expect([...counts.values()].every((n) => n >= 2)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("completes from the other peers when a peer disconnects mid-piece", () =>
    Effect.gen(function* () {
      // Four blocks per piece: the dropper serves two blocks, then drops the connection.
      const { info, payload } = singleFile(65536, 6 * 65536 + 7000, 6)
      const dropped = yield* Deferred.make<void>()
      const dropper = yield* recordingPeer((c) =>
        Effect.zipRight(
          Effect.forkScoped(Effect.zipRight(c.closed, Deferred.succeed(dropped, undefined))),
          seeder({ data: payload, pieceLength: info.pieceLength, closeAfterBlocks: 2 })(c)
        )
      )
      // The rescuer shows up only after the drop, so the first blocks come from the dropper alone.
      const rescuer = yield* recordingPeer((c) =>
        Effect.zipRight(Deferred.await(dropped), seeder({ data: payload, pieceLength: info.pieceLength })(c))
      )
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [dropper.address, rescuer.address], sink, { peerRetry: noRetry })

      expectComplete(events, info, payload, bytes)
      expect(ofTag(events, "PeerDropped").map((e) => e.peer)).toEqual([dropper.key])
      expect(yield* dropper.connections).toBe(1)
      // the rescuer was asked for the rest, each block once (25 blocks in all, two of them came from the dropper)
      const rescued = rescuer.requests().map(blockKey)
      expect(new Set(rescued).size).toBe(rescued.length)
      expect(rescued.length).toBeGreaterThanOrEqual(23)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("a choke hands outstanding requests back, and they are asked again after the unchoke", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 8 * 32768, 7)
      let phase: "first" | "choked" | "open" = "first"
      const before: Array<Request> = []
      const after: Array<Request> = []
      const peer = yield* recordingPeer((c: FakeConnection) => {
        const serve = (r: Request) => c.send([Message.piece(r.index, r.begin, pieceOf(info, payload, r.index).subarray(r.begin, r.begin + r.length))])
        const answer = (m: Message): Effect.Effect<void, unknown, Scope.Scope> => {
          if (m._tag === "Interested") return phase === "choked" ? Effect.void : c.send([Message.unchoke])
          if (m._tag !== "Request") return Effect.void
          switch (phase) {
            case "first":
              // serve one block, then choke with the rest of the batch outstanding, and unchoke later
              phase = "choked"
              before.push(m)
              return Effect.zipRight(
                Effect.zipRight(serve(m), c.send([Message.choke])),
                Effect.forkScoped(
                  Effect.sleep("150 millis").pipe(
                    Effect.andThen(() => {
                      phase = "open"
                      return c.send([Message.unchoke])
                    })
                  )
                )
              )
            case "choked":
              before.push(m) // discarded, as BEP 3 says a choke does
              return Effect.void
            case "open":
              after.push(m)
              return serve(m)
          }
        }
        return Effect.zipRight(c.send([Message.bitfield(new Uint8Array([0xff]))]), Stream.runForEach(c.messages, answer))
      })
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [peer.address], sink)

      expectComplete(events, info, payload, bytes)
      expect(before.length).toBeGreaterThan(1)
      const askedAgain = new Set(after.map(blockKey))
      for (const r of before.slice(1)) expect(askedAgain.has(blockKey(r))).toBe(true)
      expect(askedAgain.has(blockKey(before[0]!))).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("ignores unsolicited, misaligned, oversized and short blocks", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 6 * 32768 - 3000, 8)
      let first = true
      // Every block the seeder sends is preceded by bad copies; the very first send (the bitfield)
      // by blocks nobody asked for: a piece never requested, and one out of range.
      const noisy = yield* recordingPeer((c) =>
        seeder({ data: payload, pieceLength: info.pieceLength })({
          ...c,
          send: (messages) => {
            const out: Array<Message> = []
            if (first) {
              first = false
              out.push(Message.piece(2, 0, new Uint8Array(16384)), Message.piece(999, 0, new Uint8Array(100)))
            }
            for (const m of messages) {
              if (m._tag === "Piece") {
                const garbage = corrupt(m.block)
                out.push(
                  Message.piece(m.index, m.begin + 1, garbage), // misaligned
                  Message.piece(m.index, m.begin, new Uint8Array(m.block.length + 100)), // oversized, within the frame limit
                  Message.piece(m.index, m.begin, garbage.subarray(0, m.block.length - 1)) // short
                )
              }
              out.push(m)
              // and a duplicate after the real one
              if (m._tag === "Piece") out.push(Message.piece(m.index, m.begin, corrupt(m.block)))
            }
            return c.send(out)
          }
        })
      )
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [noisy.address], sink)

      expectComplete(events, info, payload, bytes)
      expect(ofTag(events, "PieceRejected")).toEqual([])
      expect(ofTag(events, "PeerDropped")).toEqual([])
      expect(ofTag(events, "Completed")[0]!.bytes).toBe(info.totalLength)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("drops a peer that sends a frame over the limit, and completes from another", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 4 * 32768, 9)
      const gone = yield* Deferred.make<void>()
      const header = new Uint8Array(5)
      new DataView(header.buffer).setUint32(0, 9 + 16384 + 4096, false)
      header[4] = 7 // a `piece` too big for any block
      const bad = yield* recordingPeer((c) =>
        c.sendRaw(header).pipe(Effect.zipRight(c.closed), Effect.zipRight(Deferred.succeed(gone, undefined)))
      )
      // the good peer waits for the drop, so the download cannot finish before it
      const good = yield* recordingPeer((c) =>
        Effect.zipRight(Deferred.await(gone), seeder({ data: payload, pieceLength: info.pieceLength })(c))
      )
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [bad.address, good.address], sink, { peerRetry: noRetry })

      expectComplete(events, info, payload, bytes)
      const dropped = ofTag(events, "PeerDropped")
      expect(dropped.map((e) => e.peer)).toEqual([bad.key])
      expect(dropped[0]!.reason).toMatch(/protocol violation: frame of 20489 bytes exceeds the limit/)
      expect(yield* bad.connections).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("drops peers that send a malformed bitfield or a have out of range", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 4 * 32768, 19)
      const badBitfield = yield* Deferred.make<void>()
      const badHave = yield* Deferred.make<void>()
      // four pieces: the low four bits of the bitfield's byte are spare and must be zero
      const spare = yield* recordingPeer((c) =>
        c.send([Message.bitfield(new Uint8Array([0xff]))]).pipe(Effect.zipRight(c.closed), Effect.zipRight(Deferred.succeed(badBitfield, undefined)))
      )
      const outOfRange = yield* recordingPeer((c) =>
        c.send([Message.have(4)]).pipe(Effect.zipRight(c.closed), Effect.zipRight(Deferred.succeed(badHave, undefined)))
      )
      const good = yield* recordingPeer((c) =>
        Effect.zipRight(Effect.zip(Deferred.await(badBitfield), Deferred.await(badHave)), seeder({ data: payload, pieceLength: info.pieceLength })(c))
      )
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [spare.address, outOfRange.address, good.address], sink, { peerRetry: noRetry })

      expectComplete(events, info, payload, bytes)
      const reasons = new Map(ofTag(events, "PeerDropped").map((e) => [e.peer, e.reason]))
      expect(reasons.size).toBe(2)
      expect(reasons.get(spare.key)).toMatch(/protocol violation: bitfield of the wrong length or with spare bits set/)
      expect(reasons.get(outOfRange.key)).toMatch(/protocol violation: have for piece 4 out of range/)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("requests a short last piece with a short last block", () =>
    Effect.gen(function* () {
      // last piece: one full block and 1234 bytes
      const { info, payload } = singleFile(65536, 3 * 65536 + 16384 + 1234, 10)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [peer.address], sink)

      expectComplete(events, info, payload, bytes)
      const requests = peer.requests().map((r) => [r.index, r.begin, r.length])
      expect(requests.filter((r) => r[0] === 3)).toEqual([[3, 0, 16384], [3, 16384, 1234]])
      expect(requests.filter((r) => r[0] !== 3).every((r) => r[2] === 16384 && r[1]! % 16384 === 0)).toBe(true)
      expect(requests.length).toBe(3 * 4 + 2)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("downloads a torrent smaller than one block", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 1000, 11)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [peer.address], sink)

      expectComplete(events, info, payload, bytes)
      expect(peer.requests()).toEqual([Message.request(0, 0, 1000)])
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("downloads a multi-file torrent with pieces spanning files into a folder", () =>
    Effect.gen(function* () {
      const files = [
        { path: ["a.bin"], data: payloadBytes(10000, 21) },
        { path: ["empty"], data: new Uint8Array(0) },
        { path: ["sub", "b.bin"], data: payloadBytes(50000, 22) },
        { path: ["sub", "c"], data: payloadBytes(1, 23) },
        { path: ["d.bin"], data: payloadBytes(70001, 24) }
      ]
      const { info, payload } = handInfo(32768, files)
      const peers = yield* Effect.forEach([0, 1], (k) =>
        seederPeer({ data: payload, pieceLength: info.pieceLength, has: (i) => i % 2 === k })
      )
      const dir = yield* tempDir
      const events: Array<DownloadEvent> = []
      yield* download({ info, trackers: [], peers: peers.map((p) => p.address) }, dir, options()).pipe(
        Stream.runForEach((e) => Effect.sync(() => events.push(e))),
        Effect.timeout("8 seconds")
      )

      expect(events[0]).toMatchObject({ _tag: "Started", pieces: 4, verified: 0, bytesLeft: info.totalLength })
      expect(events.at(-1)?._tag).toBe("Completed")
      expect(verifiedIndexes(events)).toEqual(allIndexes(info))
      for (const f of files) expect(sha256(readFileSync(join(dir, ...f.path)))).toBe(sha256(f.data))
    }).pipe(Effect.scoped, Effect.provide(DiskLayer)))

  it.live("resumes: after an interrupted run only the missing pieces are requested", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(16384, 16 * 16384 - 10, 12)
      const target = join(yield* tempDir, "payload.bin")
      const source = (peer: PeerAddress) => ({ info, trackers: [], peers: [peer] })

      // First run: a peer with only the first half, interrupted after three verified pieces.
      const half = yield* seederPeer({ data: payload, pieceLength: info.pieceLength, has: (i) => i < 8 })
      let verified = 0
      const first = yield* download(source(half.address), target, options()).pipe(
        Stream.takeUntil((e) => e._tag === "PieceVerified" && ++verified >= 3),
        Stream.runCollect,
        Effect.timeout("8 seconds")
      )
      expect([...first].some((e) => e._tag === "Completed")).toBe(false)

      // What is on disk now, judged independently of the engine: only the .part file.
      expect(existsSync(target)).toBe(false)
      const onDisk = readFileSync(`${target}.part`)
      const missing = allIndexes(info).filter((i) => !Buffer.from(sha1(pieceOf(info, onDisk, i))).equals(info.pieceHashes[i]!))
      expect(missing.length).toBeLessThanOrEqual(16 - 3)
      expect(missing).toEqual(expect.arrayContaining([8, 9, 10, 11, 12, 13, 14, 15]))

      // Second run: a full seeder that records what it is asked for.
      const full = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const events: Array<DownloadEvent> = []
      yield* download(source(full.address), target, options()).pipe(
        Stream.runForEach((e) => Effect.sync(() => events.push(e))),
        Effect.timeout("8 seconds")
      )

      expect(events[0]).toMatchObject({ _tag: "Started", pieces: 16, verified: 16 - missing.length })
      expect(events.at(-1)?._tag).toBe("Completed")
      expect(verifiedIndexes(events)).toEqual(missing)
      expect(pieceIndexes(full.requests())).toEqual(missing)
      expect(sha256(readFileSync(target))).toBe(sha256(payload))
      expect(existsSync(`${target}.part`)).toBe(false)

      // Third run on the complete file: nothing to fetch, nobody dialled.
      const connections = yield* full.connections
      const third = yield* download(source(full.address), target, options()).pipe(Stream.runCollect, Effect.timeout("8 seconds"))
      expect([...third]).toEqual([
        expect.objectContaining({ _tag: "Started", pieces: 16, verified: 16, bytesLeft: 0 }),
        expect.objectContaining({ _tag: "Completed", bytes: 0 })
      ])
      expect(yield* full.connections).toBe(connections)
    }).pipe(Effect.scoped, Effect.provide(DiskLayer)))

  it.live("a stalled download's PieceVerified events still come: the engine's ticker flushes their batch", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(16384, 8 * 16384, 14)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength, has: (i) => i < 3 })
      let verified = 0
      // No progress events (the hour), no end: nothing but the tick puts the waiting batch in.
      const source = { info, trackers: [], peers: [peer.address] }
      const events = yield* runEngine(source, memorySink(info).sink, Bitfield.empty(info.pieceCount), options({ progressInterval: "1 hour" })).pipe(
        Stream.takeUntil((e) => e._tag === "PieceVerified" && ++verified >= 3),
        Stream.runCollect,
        Effect.timeout("5 seconds")
      )
      expect(verifiedIndexes([...events])).toEqual([0, 1, 2])
      expect([...events].map((e) => e._tag)).not.toContain("Progress")
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("fetches only the pieces asked for (download_piece)", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 6 * 32768 - 5000, 13)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      for (const index of [4, 5]) {
        const { bytes, sink, writes } = memorySink(info)
        const before = peer.requests().length
        const events = yield* runToEnd(info, [peer.address], sink, { pieces: [index] })

        expect(events[0]).toMatchObject({ _tag: "Started", pieces: 6, verified: 0, bytesLeft: pieceSize(info, index) })
        expect(events.at(-1)?._tag).toBe("Completed")
        expect(verifiedIndexes(events)).toEqual([index])
        expect(writes).toEqual([index])
        expect(pieceIndexes(peer.requests().slice(before))).toEqual([index])
        expect(sha256(pieceOf(info, bytes, index))).toBe(sha256(pieceOf(info, payload, index)))
      }
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("fails with DownloadStalled when there are no peers", () =>
    Effect.gen(function* () {
      const { info } = singleFile(32768, 4 * 32768, 14)
      const { sink } = memorySink(info)
      const startedAt = Date.now()
      const error = yield* runToEnd(info, [], sink, { stallTimeout: "500 millis" }).pipe(Effect.flip)

      expect(error).toBeInstanceOf(DownloadStalled)
      expect(error).toMatchObject({ piecesLeft: 4, peersSeen: 0, lastTrackerError: undefined })
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(500)
      expect(Date.now() - startedAt).toBeLessThan(3000)
    }).pipe(Effect.provide(EngineLayer)))

  it.effect("times the stall with Effect's Clock: the default 5 minutes pass on the TestClock, no real waiting", () =>
    Effect.gen(function* () {
      const { info } = singleFile(32768, 4 * 32768, 16)
      const { sink } = memorySink(info)
      // With no source at all it would give up first (below): a long give-up time isolates the stall.
      const fiber = yield* runEngine({ info, trackers: [], peers: [] }, sink, Bitfield.empty(info.pieceCount), options({ giveUpAfter: "1 hour" })).pipe(
        Stream.runDrain,
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust("4 minutes")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("2 minutes")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "DownloadStalled", seconds: 300, piecesLeft: 4, peersSeen: 0 })
    }).pipe(Effect.provide(EngineLayer)))

  it.effect("gives up with NoPeerSources once no peer source is left, after the give-up time on the TestClock", () =>
    Effect.gen(function* () {
      const { info } = singleFile(32768, 4 * 32768, 16)
      const { sink } = memorySink(info)
      const fiber = yield* runEngine({ info, trackers: [], peers: [] }, sink, Bitfield.empty(info.pieceCount), options({})).pipe(
        Stream.runDrain,
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust("15 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "NoPeerSources", seconds: 20 })
    }).pipe(Effect.provide(EngineLayer)))

  it.effect("a peer source still running keeps it from giving up; once it ends, the give-up time runs", () =>
    Effect.gen(function* () {
      const { info } = singleFile(32768, 4 * 32768, 16)
      const { sink } = memorySink(info)
      const ended = yield* Deferred.make<void>()
      const source = () => Stream.fromEffect(Deferred.await(ended)).pipe(Stream.drain)
      const fiber = yield* runEngine({ info, trackers: [], peers: [] }, sink, Bitfield.empty(info.pieceCount), options({ peerSources: [source] })).pipe(
        Stream.runDrain,
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust("1 minute")
      expect(fiber.unsafePoll()).toBeNull()
      yield* Deferred.succeed(ended, undefined)
      yield* TestClock.adjust("25 seconds")
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "NoPeerSources", seconds: 20 })
    }).pipe(Effect.provide(EngineLayer)))

  it.live("dials the peers a peer source streams, and gives the source the port it announces", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 3 * 32768 + 9, 18)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const { bytes, sink } = memorySink(info)
      const ports: Array<number> = []
      const source = (port: number) => Stream.succeed(peer.address).pipe(Stream.tap(() => Effect.sync(() => ports.push(port))))
      const events = yield* runToEnd(info, [], sink, { peerSources: [source] })
      expectComplete(events, info, payload, bytes)
      expect(ports).toEqual([ourPort])
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("tells a peer it is not interested once it has nothing left that we lack", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 4 * 32768, 17)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength, has: (i) => i < 2 })
      const { sink } = memorySink(info)
      // Pieces 2 and 3 exist nowhere: the download ends stalled, after the peer gave all it had.
      const error = yield* runToEnd(info, [peer.address], sink, { stallTimeout: "2500 millis" }).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "DownloadStalled", piecesLeft: 2 })
      const tags = peer.received.map((m) => m._tag).filter((t) => t === "Interested" || t === "NotInterested")
      expect(tags).toEqual(["Interested", "NotInterested"])
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("fails with DownloadStalled when the only peer never unchokes", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 4 * 32768, 15)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength, unchoke: false })
      const { sink } = memorySink(info)
      const error = yield* runToEnd(info, [peer.address], sink, { stallTimeout: "600 millis" }).pipe(Effect.flip)

      expect(error).toMatchObject({ _tag: "DownloadStalled", piecesLeft: 4, peersSeen: 1 })
      expect(peer.received.some((m) => m._tag === "Interested")).toBe(true)
      expect(peer.requests()).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("drops a peer that turns out to be ourselves, and never dials it again", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 4 * 32768, 16)
      const gone = yield* Deferred.make<void>()
      const mirror = yield* recordingPeer((c) => Effect.zipRight(c.closed, Deferred.succeed(gone, undefined)), { peerId: ourId })
      const good = yield* recordingPeer((c) =>
        Effect.zipRight(Deferred.await(gone), seeder({ data: payload, pieceLength: info.pieceLength })(c))
      )
      const { bytes, sink } = memorySink(info)
      // the default retry schedule: a ban must stop it
      const events = yield* runToEnd(info, [mirror.address, good.address], sink)

      expectComplete(events, info, payload, bytes)
      const dropped = ofTag(events, "PeerDropped")
      expect(dropped.map((e) => e.peer)).toEqual([mirror.key])
      expect(dropped[0]!.reason).toMatch(/connected to ourselves/)
      expect(ofTag(events, "PeerConnected").map((e) => e.peer)).toEqual([good.key])
      expect(yield* mirror.connections).toBe(1)
      expect(mirror.received).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("never dials its own announced address", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 2 * 32768, 17)
      const self = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const good = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const { bytes, sink } = memorySink(info)
      const events = yield* runToEnd(info, [self.address, good.address], sink, { port: self.address.port })

      expectComplete(events, info, payload, bytes)
      expect(yield* self.connections).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(EngineLayer)))

  it.live("finds its peers through an HTTP tracker and announces started and completed", () =>
    Effect.gen(function* () {
      const { info, payload } = singleFile(32768, 5 * 32768 + 1, 18)
      const peer = yield* seederPeer({ data: payload, pieceLength: info.pieceLength })
      const tracker = yield* fakeHttpTracker({
        body: Bencode.encode(Bencode.dict({ interval: 60n, peers: compactPeers([peer.address]) }))
      })
      const { bytes, sink } = memorySink(info)
      const events: Array<DownloadEvent> = []
      yield* runEngine({ info, trackers: [[tracker.url]] }, sink, Bitfield.empty(info.pieceCount), options()).pipe(
        Stream.runForEach((e) => Effect.sync(() => events.push(e))),
        Effect.timeout("8 seconds"),
        Effect.provide(Tracker.Live.pipe(Layer.provide(NodeHttpClient.layerUndici)))
      )

      expectComplete(events, info, payload, bytes)
      const announced = tracker.queries.map((q) => queryParams(q))
      expect(announced[0]!.get("event")).toBe("started")
      expect(announced[0]!.get("left")).toBe(String(info.totalLength))
      expect(announced.at(-2)!.get("event")).toBe("completed")
      expect(announced.at(-2)!.get("left")).toBe("0")
      // and `stopped` as the finished torrent stops
      expect(announced.at(-1)!.get("event")).toBe("stopped")
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(PeerWire.Tcp, Hasher.Sync))))
})
