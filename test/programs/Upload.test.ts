/**
 * Upload while downloading: the download engine (over a sink that can read blocks back) serves
 * the pieces it has verified to the peers it dialled, with the seeder's rules (Upload.ts). The
 * leechers are scripted fakes over real loopback sockets.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Stream } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { Bitfield } from "../../src/domain/Bitfield.js"
import type { Info } from "../../src/domain/Metainfo.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { Message } from "../../src/domain/Wire.js"
import { type DownloadEvent, type PieceSink, runEngine } from "../../src/programs/Download.js"
import { Hasher } from "../../src/services/Hasher.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Tracker } from "../../src/services/Tracker.js"
import { type FakeConnection, distinctPeerId, makeFakePeer, messageReader, seeder } from "../support/FakePeer.js"
import { compactPeers, fakeHttpTracker, queryParams } from "../support/FakeTracker.js"
import { handInfo } from "../support/handInfo.js"
import { waitUntil } from "../support/realTime.js"
import { payloadBytes } from "../support/torrent.js"

// 6 pieces of 32 KiB, the last one 1000 bytes: two blocks a piece, a short last block.
const pieceLength = 32768
const { info, payload }: { info: Info; payload: Uint8Array } = handInfo(pieceLength, [
  { path: ["up.bin"], data: payloadBytes(5 * pieceLength + 1000, 11) }
])
const ourId = Uint8Array.from(Buffer.from("-EB0010-uploadtest00", "latin1"))

const NoTracker = Layer.succeed(Tracker, {
  announce: () => Effect.die("no tracker in this test"),
  tiers: () => Effect.succeed({ announce: () => Effect.die("no tracker in this test") })
})
const EngineLayer = Layer.mergeAll(PeerWire.Tcp, Hasher.Sync, NoTracker)

const block = (index: number, begin: number, length = 16384) =>
  payload.subarray(index * pieceLength + begin, index * pieceLength + begin + length)

/** A disk in memory holding `have`'s pieces; the engine's writes land in it and reads come from it. */
const memoryDisk = (have: Bitfield): PieceSink => {
  const bytes = new Uint8Array(info.totalLength)
  for (let i = 0; i < info.pieceCount; i++) if (have.has(i)) bytes.set(block(i, 0, pieceLength), i * pieceLength)
  return {
    writePiece: (index, data) => Effect.sync(() => bytes.set(data, index * pieceLength)),
    readBlock: (index, begin, length) => Effect.sync(() => bytes.slice(index * pieceLength + begin, index * pieceLength + begin + length))
  }
}

/** A fake peer the engine dials; the test drives its one connection. */
const fakeLeecher = Effect.gen(function* () {
  const connection = yield* Deferred.make<FakeConnection>()
  const peer = yield* makeFakePeer({ peerId: distinctPeerId(), handler: (c) => Effect.zipRight(Deferred.succeed(connection, c), Effect.never) })
  return { address: peer.address, connection: Deferred.await(connection) }
})

/** Runs our engine for the rest of the scope; its events are collected. */
const startEngine = (have: Bitfield, peers: ReadonlyArray<PeerAddress>) =>
  Effect.gen(function* () {
    const events: Array<DownloadEvent> = []
    yield* runEngine({ info, trackers: [], peers }, memoryDisk(have), have, { peerId: ourId, port: 1 }).pipe(
      Stream.runForEach((e) => Effect.sync(() => events.push(e))),
      Effect.forkScoped
    )
    return events
  })

const bits = (...indexes: Array<number>) => {
  const b = Bitfield.empty(info.pieceCount)
  for (const i of indexes) b.add(i)
  return b
}

describe("download engine: upload while downloading", () => {
  it.scopedLive("greets with our bitfield, unchokes an interested leecher, serves exact blocks and drops one asking for a piece we lack", () =>
    Effect.gen(function* () {
      const leecher = yield* fakeLeecher
      const events = yield* startEngine(bits(0, 2), [leecher.address])
      const c = yield* leecher.connection
      const next = yield* messageReader(c)
      expect(yield* next).toEqual(Option.some(Message.bitfield(Uint8Array.of(0b1010_0000))))
      // asked while choked: dropped, as BEP 3 says; the unchoke is what comes next
      yield* c.send([Message.request(0, 0, 16384), Message.interested])
      expect(yield* next).toEqual(Option.some(Message.unchoke))
      const asked = [Message.request(0, 0, 16384), Message.request(2, 16384, 16384), Message.request(0, 100, 5)]
      yield* c.send(asked)
      for (const r of asked) expect(yield* next).toEqual(Option.some(Message.piece(r.index, r.begin, block(r.index, r.begin, r.length))))
      yield* c.send([Message.request(1, 0, 16384)])
      expect(yield* next).toEqual(Option.none())
      yield* waitUntil(() => events.some((e) => e._tag === "PeerDropped"), "PeerDropped")
      const dropped = events.find((e) => e._tag === "PeerDropped")
      expect(dropped).toMatchObject({ reason: expect.stringContaining("request for piece 1, which we do not have") })
    }).pipe(Effect.provide(EngineLayer)))

  it.scopedLive("tells a leecher of each piece it verifies and serves it from what was written", () =>
    Effect.gen(function* () {
      // Piece 5 is nowhere: the download keeps running while the leecher is served.
      const source = yield* makeFakePeer({ peerId: distinctPeerId(), handler: seeder({ data: payload, pieceLength, has: (i) => i !== 5 }) })
      const leecher = yield* fakeLeecher
      const events = yield* startEngine(Bitfield.empty(info.pieceCount), [source.address, leecher.address])
      const c = yield* leecher.connection
      const next = yield* messageReader(c)
      // Depending on when it connected, the leecher learns of the first pieces from a bitfield or from haves.
      const known = Bitfield.empty(info.pieceCount)
      while (known.cardinality < 5) {
        const m = Option.getOrThrow(yield* next)
        if (m._tag === "Have") known.add(m.index)
        else if (m._tag === "Bitfield") {
          const theirs = Bitfield.fromWire(m.bits, info.pieceCount)
          for (let i = 0; i < info.pieceCount; i++) if (theirs?.has(i) === true) known.add(i)
        } else return expect.fail(`unexpected ${m._tag}`)
      }
      expect(known.has(5)).toBe(false)
      yield* c.send([Message.interested])
      expect(yield* next).toEqual(Option.some(Message.unchoke))
      yield* c.send([Message.request(3, 16384, 16384), Message.request(4, 0, 16384)])
      expect(yield* next).toEqual(Option.some(Message.piece(3, 16384, block(3, 16384))))
      expect(yield* next).toEqual(Option.some(Message.piece(4, 0, block(4, 0))))
      expect(events.filter((e) => e._tag === "PieceVerified")).toHaveLength(5)
      expect(events.some((e) => e._tag === "Completed")).toBe(false)
    }).pipe(Effect.provide(EngineLayer)))

  it.scopedLive("reports what it uploaded in its announces", () =>
    Effect.gen(function* () {
      // The last piece comes only after the leecher was served, so the completed announce follows the upload.
      const served = yield* Deferred.make<void>()
      const source = yield* makeFakePeer({
        peerId: distinctPeerId(),
        handler: (c) => Effect.zipRight(Deferred.await(served), seeder({ data: payload, pieceLength, has: (i) => i === 5 })(c))
      })
      const leecher = yield* fakeLeecher
      const tracker = yield* fakeHttpTracker({
        body: Bencode.encode(Bencode.dict({ interval: 60n, peers: compactPeers([source.address, leecher.address]) }))
      })
      const have = bits(0, 1, 2, 3, 4)
      const engine = yield* runEngine({ info, trackers: [[tracker.url]] }, memoryDisk(have), have, { peerId: ourId, port: 1 }).pipe(
        Stream.runDrain,
        Effect.provide(Tracker.Live.pipe(Layer.provide(NodeHttpClient.layerUndici))),
        Effect.forkScoped
      )
      const c = yield* leecher.connection
      const next = yield* messageReader(c)
      expect(yield* next).toEqual(Option.some(Message.bitfield(Uint8Array.of(0b1111_1000))))
      yield* c.send([Message.interested])
      expect(yield* next).toEqual(Option.some(Message.unchoke))
      yield* c.send([Message.request(1, 0, 16384)])
      expect(yield* next).toEqual(Option.some(Message.piece(1, 0, block(1, 0))))
      yield* Deferred.succeed(served, undefined)
      yield* Fiber.join(engine).pipe(Effect.timeout("5 seconds"))
      const announced = tracker.queries.map((q) => queryParams(q))
      expect(announced[0]!.get("event")).toBe("started")
      expect(announced[0]!.get("uploaded")).toBe("0")
      expect(announced.at(-2)!.get("event")).toBe("completed")
      expect(announced.at(-2)!.get("uploaded")).toBe("16384")
      expect(announced.at(-1)!.get("event")).toBe("stopped")
    }).pipe(Effect.provide(Layer.mergeAll(PeerWire.Tcp, Hasher.Sync))))
})
