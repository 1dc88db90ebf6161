import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer, Option, Random, type Scope, Stream, TestClock } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { concatBytes, toHex } from "../../src/domain/Bytes.js"
import {
  decodeExtendedHandshake,
  decodeMetadataMessage,
  encodeExtendedHandshake,
  encodeMetadataMessage,
  type MetadataMessage,
  ourUtMetadataId,
  ourUtPexId,
  utPexName
} from "../../src/domain/Extension.js"
import { type Info, parseInfo } from "../../src/domain/Metainfo.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { allowedFastSet } from "../../src/domain/FastExtension.js"
import { makeReserved, Message } from "../../src/domain/Wire.js"
import { type DownloadSource, runEngine } from "../../src/programs/Download.js"
import { fetchMetadata } from "../../src/programs/Metadata.js"
import { NothingToSeed, seed, SeedEvent, type SeedOptions, seedPath } from "../../src/programs/Seed.js"
import { defaultMaxQueuedRequests } from "../../src/programs/Upload.js"
import { Hasher } from "../../src/services/Hasher.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Transport } from "../../src/services/Transport.js"
import { Storage, StorageError } from "../../src/services/Storage.js"
import { Tracker } from "../../src/services/Tracker.js"
import { dialFakePeer, fakePeerId, makeFakePeer, messageReader } from "../support/FakePeer.js"
import { compactPeers, fakeHttpTracker, queryParams } from "../support/FakeTracker.js"
import { runCli } from "../support/cli.js"
import { handInfo } from "../support/handInfo.js"
import { payloadBytes, sha1, singleFileInfo } from "../support/torrent.js"
import { waitUntil } from "../support/realTime.js"

// 6 pieces of 32 KiB, the last one 1000 bytes: two blocks a piece, a short last block.
const pieceLength = 32768
const hand = handInfo(pieceLength, [{ path: ["seed.bin"], data: payloadBytes(5 * pieceLength + 1000, 7) }])
const payload = hand.payload
const info: Info = { ...hand.info, infoHash: sha1(Uint8Array.of(1, 2, 3)) }
const ourId = Uint8Array.from(Buffer.from("-EB0010-seedseedseed", "latin1"))
const leecherId = (n: number) => Uint8Array.from(Buffer.from(`-FK0001-leecher${String(n).padStart(5, "0")}`, "latin1"))

const memory = {
  readBlock: (index: number, begin: number, length: number) =>
    Effect.sync(() => payload.slice(index * pieceLength + begin, index * pieceLength + begin + length))
}
const block = (index: number, begin: number, length = 16384) =>
  payload.subarray(index * pieceLength + begin, index * pieceLength + begin + length)

const NoTracker = Layer.succeed(Tracker, {
  announce: () => Effect.die("no tracker in this test"),
  tiers: () => Effect.succeed({ announce: () => Effect.die("no tracker in this test") })
})
const PeerLayers = PeerWire.Live.pipe(Layer.provideMerge(Transport.Tcp))
const SeedLayer = Layer.mergeAll(PeerLayers, NoTracker, Hasher.Sync)

interface Running {
  readonly address: PeerAddress
  readonly events: Array<SeedEvent>
  readonly fiber: Fiber.RuntimeFiber<void, unknown>
}

/** A seeder on 127.0.0.1:0 for the rest of the scope; its events are collected. */
const startSeeder = (
  options: Partial<SeedOptions> = {},
  have: Bitfield = Bitfield.full(info.pieceCount),
  source: DownloadSource = { info, trackers: [] }
): Effect.Effect<Running, never, Tracker | PeerWire | Transport | Hasher | Scope.Scope> =>
  Effect.gen(function* () {
    const events: Array<SeedEvent> = []
    const fiber = yield* seed(source, memory, have, { peerId: ourId, port: 0, host: "127.0.0.1", ...options }).pipe(
      Stream.runForEach((e) => Effect.sync(() => events.push(e))),
      Effect.forkScoped
    )
    yield* waitUntil(() => events.length > 0, "Started")
    const started = events[0]!
    if (started._tag !== "Started") return yield* Effect.dieMessage(`first event ${started._tag}`)
    return { address: { host: "127.0.0.1", port: started.port }, events, fiber }
  })

/** Dials the seeder as a leecher; returns the socket and a reader of its messages. */
const leecher = (address: PeerAddress, n: number, reserved: Uint8Array = new Uint8Array(8)) =>
  Effect.gen(function* () {
    const socket = yield* dialFakePeer(address, { infoHash: info.infoHash, peerId: leecherId(n), reserved })
    const hs = yield* socket.handshake
    expect(toHex(hs.peerId)).toBe(toHex(ourId))
    return { socket, next: yield* messageReader(socket) }
  })

const expectNext = (next: Effect.Effect<Option.Option<Message>>, expected: Message) =>
  Effect.map(next, (m) => expect(m).toEqual(Option.some(expected)))

const dropReasons = (events: ReadonlyArray<SeedEvent>) =>
  events.flatMap((e) => (e._tag === "PeerDropped" ? [e.reason] : []))

/** Reads until the seeder ends the connection (every message on the way of `tag`), then checks why it dropped us. */
const expectDroppedAfter = (
  next: Effect.Effect<Option.Option<Message>>,
  events: ReadonlyArray<SeedEvent>,
  tag: Message["_tag"],
  reason: RegExp
) =>
  Effect.gen(function* () {
    for (;;) {
      const m = yield* next
      if (Option.isNone(m)) break
      expect(m.value._tag).toBe(tag)
    }
    yield* waitUntil(() => dropReasons(events).length > 0, "PeerDropped")
    expect(dropReasons(events)[0]).toMatch(reason)
  })

describe("seed: greeting", () => {
  it.scopedLive("sends the extension handshake (reqq, port; no ut_metadata without the info dict's bytes) then our bitfield", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder()
      const { next } = yield* leecher(seeder.address, 1, makeReserved({ extensions: true }))
      const ext = Option.getOrThrow(yield* next)
      if (ext._tag !== "Extended") return expect.fail(`expected Extended, got ${ext._tag}`)
      expect(ext.id).toBe(0)
      const hs = decodeExtendedHandshake(ext.payload).pipe((e) => (e._tag === "Right" ? e.right : expect.fail(e.left.message)))
      expect(hs.reqq).toBe(defaultMaxQueuedRequests)
      expect(hs.p).toBe(seeder.address.port)
      expect([...hs.m]).toEqual([[utPexName, ourUtPexId]])
      expect(hs.metadataSize).toBeUndefined()
      yield* expectNext(next, Message.bitfield(Uint8Array.of(0xfc)))
      const connected = seeder.events.find((e) => e._tag === "PeerConnected")
      expect(connected).toMatchObject({ client: "FK0001", inbound: true })
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("offers no ut_pex for a private torrent (BEP 27)", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder({}, Bitfield.full(info.pieceCount), { info: { ...info, private: true }, trackers: [] })
      const { next } = yield* leecher(seeder.address, 1, makeReserved({ extensions: true }))
      const ext = Option.getOrThrow(yield* next)
      if (ext._tag !== "Extended") return expect.fail(`expected Extended, got ${ext._tag}`)
      const hs = decodeExtendedHandshake(ext.payload).pipe((e) => (e._tag === "Right" ? e.right : expect.fail(e.left.message)))
      expect(hs.m.size).toBe(0)
      expect(hs.p).toBe(seeder.address.port)
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("sends only the bitfield of the pieces it has to a peer without extensions", () =>
    Effect.gen(function* () {
      const have = Bitfield.empty(info.pieceCount)
      for (const i of [0, 2, 5]) have.add(i)
      const seeder = yield* startSeeder({}, have)
      const { next } = yield* leecher(seeder.address, 1)
      yield* expectNext(next, Message.bitfield(Uint8Array.of(0b1010_0100)))
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("sends nothing when it has no piece (no bitfield, no HaveNone without the Fast extension)", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder({}, Bitfield.empty(info.pieceCount))
      const { next, socket } = yield* leecher(seeder.address, 1)
      yield* socket.send([Message.interested])
      // the unchoke is the first thing on the wire: nothing came before it
      yield* expectNext(next, Message.unchoke)
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("answers an MSE public key with its own, drops the peer that goes no further, and keeps serving others", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder()
      const mse = Uint8Array.from({ length: 96 }, (_, i) => (i * 37 + 0xa7) & 0xff)
      const encrypted = yield* dialFakePeer(seeder.address, { infoHash: info.infoHash, firstBytes: mse })
      yield* encrypted.closed
      // Yb and PadB: 96 to 608 bytes, and nothing of the torrent
      expect(encrypted.bytesReceived()).toBeGreaterThanOrEqual(96)
      expect(encrypted.bytesReceived()).toBeLessThanOrEqual(96 + 512)
      const { next } = yield* leecher(seeder.address, 2)
      yield* expectNext(next, Message.bitfield(Uint8Array.of(0xfc)))
      expect(seeder.events.filter((e) => e._tag === "PeerConnected")).toHaveLength(1)
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("closes the connection when both sides are seeders", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder()
      const { next, socket } = yield* leecher(seeder.address, 1)
      yield* expectNext(next, Message.bitfield(Uint8Array.of(0xfc)))
      yield* socket.send([Message.bitfield(Uint8Array.of(0xfc))])
      expect(yield* next).toEqual(Option.none())
      yield* waitUntil(() => dropReasons(seeder.events).length > 0, "PeerDropped")
      expect(dropReasons(seeder.events)).toEqual(["both sides are seeders"])
    }).pipe(Effect.provide(SeedLayer)))
})

describe("seed: requests", () => {
  /** A leecher that got our bitfield, said it is interested and was unchoked. */
  const unchokedLeecher = (options: Partial<SeedOptions> = {}) =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder(options)
      const l = yield* leecher(seeder.address, 1)
      yield* expectNext(l.next, Message.bitfield(Uint8Array.of(0xfc)))
      yield* l.socket.send([Message.interested])
      yield* expectNext(l.next, Message.unchoke)
      return { seeder, ...l }
    })

  it.scopedLive("unchokes an interested peer with a free slot at once and serves exactly the blocks asked for", () =>
    Effect.gen(function* () {
      const { next, socket } = yield* unchokedLeecher()
      const asked = [
        Message.request(0, 0, 16384),
        Message.request(0, 16384, 16384),
        Message.request(3, 16384, 16384),
        Message.request(5, 0, 1000), // the short last piece
        Message.request(2, 100, 5) // any range within a piece
      ]
      yield* socket.send(asked)
      for (const r of asked) yield* expectNext(next, Message.piece(r.index, r.begin, block(r.index, r.begin, r.length)))
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("ignores requests from a choked peer: they are dropped, as BEP 3 says", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder()
      const { next, socket } = yield* leecher(seeder.address, 1)
      yield* expectNext(next, Message.bitfield(Uint8Array.of(0xfc)))
      yield* socket.send([Message.request(0, 0, 16384)])
      yield* socket.send([Message.interested])
      yield* expectNext(next, Message.unchoke)
      yield* socket.send([Message.request(1, 0, 16384)])
      yield* expectNext(next, Message.piece(1, 0, block(1, 0))) // not piece 0 first
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("honours cancels of queued requests", () =>
    Effect.gen(function* () {
      const { next, socket } = yield* unchokedLeecher()
      // one write, so the cancel is handled together with the requests it cancels
      yield* socket.send([
        Message.request(0, 0, 16384),
        Message.request(1, 0, 16384),
        Message.request(2, 0, 16384),
        Message.cancel(1, 0, 16384)
      ])
      yield* expectNext(next, Message.piece(0, 0, block(0, 0)))
      yield* expectNext(next, Message.piece(2, 0, block(2, 0)))
      yield* socket.send([Message.request(4, 0, 16384)])
      yield* expectNext(next, Message.piece(4, 0, block(4, 0)))
    }).pipe(Effect.provide(SeedLayer)))

  const onlyPiece0 = () => {
    const have = Bitfield.empty(info.pieceCount)
    have.add(0)
    return have
  }
  const all = () => Bitfield.full(info.pieceCount)
  const violations: ReadonlyArray<readonly [string, Message, () => Bitfield, string]> = [
    ["a piece we lack", Message.request(1, 0, 16384), onlyPiece0, "request for piece 1, which we do not have"],
    ["a piece beyond the last", Message.request(6, 0, 16384), all, "request for piece 6, beyond the last piece (5)"],
    ["more than 16 KiB", Message.request(0, 0, 32768), all, "request of 32768 bytes (1 to 16384 allowed)"],
    ["zero bytes", Message.request(0, 0, 0), all, "request of 0 bytes (1 to 16384 allowed)"],
    ["beyond the end of the piece", Message.request(5, 0, 1001), all, "request for 0+1001, beyond the end of piece 5 (1000 bytes)"],
    ["a block crossing into the next piece", Message.request(0, 16385, 16384), all, "request for 16385+16384, beyond the end of piece 0 (32768 bytes)"]
  ]
  for (const [what, request, have, detail] of violations) {
    it.scopedLive(`drops a peer that requests ${what}`, () =>
      Effect.gen(function* () {
        const seeder = yield* startSeeder({}, have())
        const { next, socket } = yield* leecher(seeder.address, 1)
        expect(Option.getOrThrow(yield* next)._tag).toBe("Bitfield")
        yield* socket.send([Message.interested])
        yield* expectNext(next, Message.unchoke)
        yield* socket.send([request])
        expect(yield* next).toEqual(Option.none())
        yield* waitUntil(() => dropReasons(seeder.events).length > 0, "PeerDropped")
        const peer = seeder.events.flatMap((e) => (e._tag === "PeerConnected" ? [e.peer] : []))[0]
        expect(dropReasons(seeder.events)).toEqual([`peer ${peer}: protocol violation: ${detail}`])
      }).pipe(Effect.provide(SeedLayer)))
  }

  it.scopedLive("advertises its queue bound as reqq, and serves a peer that keeps that many requests queued", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder({ maxQueuedRequests: 8 })
      const { next, socket } = yield* leecher(seeder.address, 1, makeReserved({ extensions: true }))
      const ext = Option.getOrThrow(yield* next)
      if (ext._tag !== "Extended") return expect.fail(`expected Extended, got ${ext._tag}`)
      const hs = decodeExtendedHandshake(ext.payload).pipe((e) => (e._tag === "Right" ? e.right : expect.fail(e.left.message)))
      expect(hs.reqq).toBe(8)
      yield* expectNext(next, Message.bitfield(Uint8Array.of(0xfc)))
      yield* socket.send([Message.interested])
      yield* expectNext(next, Message.unchoke)
      // libtransmission keeps exactly `reqq` outstanding: a full queue is no flood
      const asked = Array.from({ length: hs.reqq ?? 0 }, (_, i) => Message.request(i % 5, 0, 1000))
      yield* socket.send(asked)
      for (const r of asked) yield* expectNext(next, Message.piece(r.index, r.begin, block(r.index, r.begin, r.length)))
      expect(dropReasons(seeder.events)).toEqual([])
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("drops a peer that floods more requests than the queue bound", () =>
    Effect.gen(function* () {
      const { next, seeder, socket } = yield* unchokedLeecher({ maxQueuedRequests: 8 })
      yield* socket.send(Array.from({ length: 40 }, (_, i) => Message.request(i % 6, 0, 1000)))
      // whatever was served before the flood was seen, the connection ends
      yield* expectDroppedAfter(next, seeder.events, "Piece", /protocol violation: more than 8 requests queued$/)
    }).pipe(Effect.provide(SeedLayer)))
})

describe("seed: choker", () => {
  it.scoped("unchokes the best uploader and one optimistic peer each round, rotating the optimistic every third round", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder({ uploadSlots: 1 })
      // A takes the only regular slot at once and downloads during the first round
      const a = yield* leecher(seeder.address, 1)
      yield* expectNext(a.next, Message.bitfield(Uint8Array.of(0xfc)))
      yield* a.socket.send([Message.interested])
      yield* expectNext(a.next, Message.unchoke)
      yield* a.socket.send([Message.request(0, 0, 16384), Message.request(0, 16384, 16384)])
      yield* expectNext(a.next, Message.piece(0, 0, block(0, 0)))
      yield* expectNext(a.next, Message.piece(0, 16384, block(0, 16384)))
      // B and C find the slot taken
      const b = yield* leecher(seeder.address, 2)
      const c = yield* leecher(seeder.address, 3)
      for (const l of [b, c]) {
        yield* expectNext(l.next, Message.bitfield(Uint8Array.of(0xfc)))
        yield* l.socket.send([Message.interested])
      }
      // the progress event counts the interested peers: wait (in virtual seconds) until both are seen
      for (let s = 1; s < 10; s++) {
        const before = seeder.events.length
        yield* TestClock.adjust("1 second")
        yield* waitUntil(() => seeder.events.length > before, "an Uploaded event")
        const last = seeder.events.at(-1)!
        if (last._tag === "Uploaded" && last.interested === 3) break
      }
      // round 1 (t = 10 s): A keeps its slot by rate; B is the optimistic pick (random 0: the first candidate)
      yield* TestClock.setTime(10_000)
      yield* expectNext(b.next, Message.unchoke)
      // rounds 2 and 3 keep the optimistic; round 4 rotates it to C (random 0.99: the last candidate)
      yield* TestClock.setTime(20_000)
      yield* TestClock.setTime(30_000)
      yield* TestClock.setTime(40_000)
      yield* expectNext(b.next, Message.choke)
      yield* expectNext(c.next, Message.unchoke) // nothing reached C before this
      // A was never choked: its next message answers a request
      yield* a.socket.send([Message.request(1, 0, 16384)])
      yield* expectNext(a.next, Message.piece(1, 0, block(1, 0)))
      const last = seeder.events.filter((e) => e._tag === "Uploaded").at(-1)
      expect(last).toMatchObject({ peers: 3, interested: 3 })
    }).pipe(Effect.withRandom(Random.fixed([0, 0, 0, 0.99])), Effect.provide(SeedLayer)))

  it.scoped("chokes a peer that lost interest at the next round and discards its queue", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder({ uploadSlots: 1 })
      const a = yield* leecher(seeder.address, 1)
      yield* expectNext(a.next, Message.bitfield(Uint8Array.of(0xfc)))
      yield* a.socket.send([Message.interested])
      yield* expectNext(a.next, Message.unchoke)
      yield* a.socket.send([Message.notInterested])
      yield* TestClock.setTime(10_000)
      yield* expectNext(a.next, Message.choke)
      // the slot is free again for the next interested peer
      const b = yield* leecher(seeder.address, 2)
      yield* expectNext(b.next, Message.bitfield(Uint8Array.of(0xfc)))
      yield* b.socket.send([Message.interested])
      yield* expectNext(b.next, Message.unchoke)
      expect(seeder.events.filter((e) => e._tag === "PeerConnected")).toHaveLength(2)
    }).pipe(Effect.provide(SeedLayer)))
})

describe("seed: trackers", () => {
  it.scoped("announces started with its port and left, dials the listed leechers, re-announces with uploaded, and says stopped", () =>
    Effect.gen(function* () {
      const served = yield* Deferred.make<void>()
      // the leecher the tracker lists: it waits to be dialled, as Transmission does
      const listed = yield* makeFakePeer({
        peerId: leecherId(9),
        handler: (c) =>
          Effect.gen(function* () {
            const next = yield* messageReader(c)
            yield* expectNext(next, Message.bitfield(Uint8Array.of(0xf8)))
            yield* c.send([Message.interested])
            yield* expectNext(next, Message.unchoke)
            yield* c.send([Message.request(4, 0, 16384), Message.request(4, 16384, 16384)])
            yield* expectNext(next, Message.piece(4, 0, block(4, 0)))
            yield* expectNext(next, Message.piece(4, 16384, block(4, 16384)))
            yield* Deferred.succeed(served, undefined)
            yield* Effect.never
          })
      })
      const tracker = yield* fakeHttpTracker((query) => {
        const self = { host: "127.0.0.1", port: Number(queryParams(query).get("port")) }
        return { body: Bencode.encode(Bencode.dict({ interval: 1800n, peers: compactPeers([self, listed.address]) })) }
      })
      const have = Bitfield.full(info.pieceCount)
      have.remove(5) // the short last piece: 1000 bytes left
      const seeder = yield* startSeeder({ announceInterval: "2 seconds" }, have, { info, trackers: [[tracker.url]] })
      yield* waitUntil(() => tracker.queries.length >= 1, "the started announce")
      const started = queryParams(tracker.queries[0]!)
      expect(started.get("event")).toBe("started")
      expect(started.get("port")).toBe(String(seeder.address.port))
      expect(started.get("left")).toBe("1000")
      expect(started.get("uploaded")).toBe("0")
      const ours = yield* listed.nextHandshake
      expect(toHex(ours.peerId)).toBe(toHex(ourId))
      yield* Deferred.await(served)
      yield* waitUntil(() => seeder.events.some((e) => e._tag === "Announced"), "Announced")
      expect(seeder.events.find((e) => e._tag === "Announced")).toMatchObject({ url: tracker.url, peers: 1, interval: 1800 })
      // the announce interval is ours (2 s), not the tracker's
      yield* TestClock.adjust("2 seconds")
      yield* waitUntil(() => tracker.queries.length >= 2, "the regular announce")
      const regular = queryParams(tracker.queries[1]!)
      expect(regular.has("event")).toBe(false)
      expect(regular.get("uploaded")).toBe("32768")
      expect(yield* listed.connections).toBe(1) // not dialled again while connected
      yield* Fiber.interrupt(seeder.fiber)
      const last = queryParams(tracker.queries.at(-1)!)
      expect(last.get("event")).toBe("stopped")
      expect(last.get("uploaded")).toBe("32768")
    }).pipe(Effect.provide(Layer.mergeAll(PeerLayers, Hasher.Sync, Tracker.Live.pipe(Layer.provide(NodeHttpClient.layerUndici))))))

  it.scoped("does not let a hanging tracker hold up the end for longer than the stopped timeout", () =>
    Effect.gen(function* () {
      const tracker = yield* fakeHttpTracker((query) =>
        query.includes("event=stopped") ? "hang" : { body: Bencode.encode(Bencode.dict({ interval: 1800n, peers: new Uint8Array(0) })) }
      )
      const seeder = yield* startSeeder({ stoppedTimeout: "3 seconds" }, undefined, { info, trackers: [[tracker.url]] })
      yield* waitUntil(() => seeder.events.some((e) => e._tag === "Announced"), "Announced")
      const stopping = yield* Fiber.interrupt(seeder.fiber).pipe(Effect.fork)
      yield* waitUntil(() => tracker.queries.length >= 2, "the stopped announce")
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(stopping)
    }).pipe(Effect.provide(Layer.mergeAll(PeerLayers, Hasher.Sync, Tracker.Live.pipe(Layer.provide(NodeHttpClient.layerUndici))))))
})

describe("seed: with our download engine", () => {
  it.scopedLive("our engine downloads the exact payload from our seeder over loopback", () =>
    Effect.gen(function* () {
      const big = handInfo(65536, [{ path: ["big.bin"], data: payloadBytes(3 * 1024 * 1024 + 12345, 11) }])
      const bigInfo: Info = { ...big.info, infoHash: sha1(Uint8Array.of(9)) }
      const events: Array<SeedEvent> = []
      yield* seed(
        { info: bigInfo, trackers: [] },
        { readBlock: (i, b, l) => Effect.sync(() => big.payload.slice(i * 65536 + b, i * 65536 + b + l)) },
        Bitfield.full(bigInfo.pieceCount),
        { peerId: ourId, port: 0, host: "127.0.0.1" }
      ).pipe(Stream.runForEach((e) => Effect.sync(() => events.push(e))), Effect.forkScoped)
      yield* waitUntil(() => events.length > 0, "Started")
      const port = (events[0] as Extract<SeedEvent, { _tag: "Started" }>).port
      const received = new Uint8Array(bigInfo.totalLength)
      yield* runEngine(
        { info: bigInfo, trackers: [], peers: [{ host: "127.0.0.1", port }] },
        { writePiece: (i, data) => Effect.sync(() => received.set(data, i * 65536)) },
        Bitfield.empty(bigInfo.pieceCount),
        { peerId: Uint8Array.from(fakePeerId), port: 6881 }
      ).pipe(Stream.runDrain, Effect.timeout("20 seconds"))
      expect(Buffer.from(received).equals(Buffer.from(big.payload))).toBe(true)
      yield* waitUntil(() => events.some((e) => e._tag === "Uploaded" && e.bytes === bigInfo.totalLength), "the upload count")
    }).pipe(Effect.provide(Layer.mergeAll(SeedLayer, Hasher.Sync))))
})

describe("seedPath", () => {
  const tempDir = Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "bt-seed-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const StorageLayers = Layer.mergeAll(SeedLayer, Storage.Live).pipe(Layer.provideMerge(Hasher.Sync))
  const firstEvent = (target: string) =>
    seedPath({ info, trackers: [] }, target, { peerId: ourId, port: 0, host: "127.0.0.1" }).pipe(Stream.runHead)

  it.scoped("verifies the payload and serves the pieces that pass", () =>
    Effect.gen(function* () {
      const file = join(yield* tempDir, "seed.bin")
      const damaged = Uint8Array.from(payload)
      damaged[pieceLength + 5] ^= 0xff // piece 1 fails its hash check
      writeFileSync(file, damaged)
      const started = Option.getOrThrow(yield* firstEvent(file))
      expect(started).toMatchObject({ _tag: "Started", pieces: 6, verified: 5 })
    }).pipe(Effect.provide(StorageLayers)))

  it.scoped("refuses a payload where no piece verifies", () =>
    Effect.gen(function* () {
      const file = join(yield* tempDir, "seed.bin")
      writeFileSync(file, new Uint8Array(payload.length))
      const e = yield* Effect.flip(firstEvent(file))
      expect(e).toBeInstanceOf(NothingToSeed)
      expect(e.message).toBe(`nothing to seed: none of the 6 pieces at ${file} matches the torrent`)
    }).pipe(Effect.provide(StorageLayers)))

  it.scoped("fails with a StorageError and creates nothing when the payload is missing", () =>
    Effect.gen(function* () {
      const file = join(yield* tempDir, "missing.bin")
      const e = yield* Effect.flip(firstEvent(file))
      expect(e).toBeInstanceOf(StorageError)
      expect((e as StorageError).reason).toBe("NotFound")
    }).pipe(Effect.provide(StorageLayers)))

  it.scoped("skips the scan when told which pieces are verified", () =>
    Effect.gen(function* () {
      const file = join(yield* tempDir, "seed.bin")
      writeFileSync(file, payload)
      const verified = Bitfield.empty(info.pieceCount)
      verified.add(3)
      const started = yield* seedPath({ info, trackers: [] }, file, { peerId: ourId, port: 0, host: "127.0.0.1" }, verified).pipe(
        Stream.runHead
      )
      expect(Option.getOrThrow(started)).toMatchObject({ _tag: "Started", verified: 1 })
      expect(SeedEvent.$is("Started")(Option.getOrThrow(started))).toBe(true)
    }).pipe(Effect.provide(StorageLayers)))
})

describe("seed: metadata for magnet links (BEP 9)", () => {
  // 2100 pieces of 256 bytes: an info dict of about 42 KB, three metadata pieces (the last one short).
  const metaBytes = Bencode.encode(singleFileInfo("meta.bin", payloadBytes(2100 * 256 - 17, 5), 256))
  const metaInfo = Either.getOrThrow(parseInfo(metaBytes))
  const metaSource: DownloadSource = { info: metaInfo, trackers: [] }
  const startMetaSeeder = (options: Partial<SeedOptions> = {}) =>
    startSeeder(options, Bitfield.full(metaInfo.pieceCount), metaSource)

  /** A magnet leecher (extension bit, never interested) that read our extension handshake and bitfield. */
  const magnetLeecher = (address: PeerAddress) =>
    Effect.gen(function* () {
      const socket = yield* dialFakePeer(address, {
        infoHash: metaInfo.infoHash,
        peerId: leecherId(1),
        reserved: makeReserved({ extensions: true })
      })
      yield* socket.handshake
      const next = yield* messageReader(socket)
      const ext = Option.getOrThrow(yield* next)
      if (ext._tag !== "Extended" || ext.id !== 0) return yield* Effect.dieMessage(`expected the extension handshake, got ${ext._tag}`)
      expect(Option.getOrThrow(yield* next)._tag).toBe("Bitfield")
      return { socket, next, handshake: Either.getOrThrow(decodeExtendedHandshake(ext.payload)) }
    })

  /** Our extension handshake as a leecher, asking for ut_metadata messages under `id`. */
  const announce = (id: number) => Message.extended(0, encodeExtendedHandshake({ m: new Map([["ut_metadata", id]]) }))
  const ask = (piece: number) => Message.extended(ourUtMetadataId, encodeMetadataMessage({ _tag: "Request", piece }))

  /** The next ut_metadata message, with the extended id it came under. */
  const nextMetadata = (next: Effect.Effect<Option.Option<Message>>) =>
    Effect.map(next, (m): { readonly id: number; readonly message: MetadataMessage } => {
      const got = Option.getOrThrow(m)
      if (got._tag !== "Extended") return expect.fail(`expected Extended, got ${got._tag}`)
      return { id: got.id, message: Either.getOrThrow(decodeMetadataMessage(got.payload)) }
    })

  const metaSlice = (piece: number) => metaBytes.subarray(piece * 16384, (piece + 1) * 16384)

  it.scopedLive("advertises ut_metadata and the info dict's size in its extension handshake", () =>
    Effect.gen(function* () {
      const seeder = yield* startMetaSeeder()
      const { handshake } = yield* magnetLeecher(seeder.address)
      expect([...handshake.m]).toEqual([["ut_metadata", ourUtMetadataId], [utPexName, ourUtPexId]])
      expect(handshake.metadataSize).toBe(metaBytes.length)
      expect(handshake.reqq).toBe(defaultMaxQueuedRequests)
      expect(handshake.p).toBe(seeder.address.port)
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("serves every piece to a choked peer under its id: together exactly the info dict", () =>
    Effect.gen(function* () {
      expect(metaBytes.length).toBeGreaterThan(2 * 16384)
      const seeder = yield* startMetaSeeder()
      const { next, socket } = yield* magnetLeecher(seeder.address)
      yield* socket.send([announce(5), ask(0), ask(1), ask(2)])
      const parts: Array<Uint8Array> = []
      for (const piece of [0, 1, 2]) {
        const { id, message } = yield* nextMetadata(next)
        expect(id).toBe(5)
        expect(message).toEqual({ _tag: "Data", piece, totalSize: metaBytes.length, data: metaSlice(piece) })
        if (message._tag === "Data") parts.push(message.data)
      }
      expect(parts.map((p) => p.length)).toEqual([16384, 16384, metaBytes.length - 2 * 16384])
      expect(toHex(sha1(concatBytes(parts)))).toBe(toHex(metaInfo.infoHash))
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("rejects requests for pieces out of range and keeps serving", () =>
    Effect.gen(function* () {
      const seeder = yield* startMetaSeeder()
      const { next, socket } = yield* magnetLeecher(seeder.address)
      yield* socket.send([announce(3), ask(3), ask(4000000000)])
      expect(yield* nextMetadata(next)).toEqual({ id: 3, message: { _tag: "Reject", piece: 3 } })
      expect(yield* nextMetadata(next)).toEqual({ id: 3, message: { _tag: "Reject", piece: 4000000000 } })
      yield* socket.send([ask(2)])
      expect((yield* nextMetadata(next)).message).toMatchObject({ _tag: "Data", piece: 2, data: metaSlice(2) })
      expect(dropReasons(seeder.events)).toEqual([])
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("leaves unanswered a request from a peer that announced no ut_metadata id, and answers once it has", () =>
    Effect.gen(function* () {
      const seeder = yield* startMetaSeeder()
      const { next, socket } = yield* magnetLeecher(seeder.address)
      // a reply needs the id the peer wants it under: before its handshake there is none
      yield* socket.send([ask(0)])
      yield* socket.send([announce(9), ask(1)])
      expect(yield* nextMetadata(next)).toMatchObject({ id: 9, message: { _tag: "Data", piece: 1 } })
      // data, rejects and unknown message types sent to us are ignored
      yield* socket.send([
        Message.extended(ourUtMetadataId, encodeMetadataMessage({ _tag: "Reject", piece: 0 })),
        Message.extended(ourUtMetadataId, Bencode.encode(Bencode.dict({ msg_type: Bencode.int(7) }))),
        ask(0)
      ])
      expect(yield* nextMetadata(next)).toMatchObject({ id: 9, message: { _tag: "Data", piece: 0 } })
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("drops a peer whose ut_metadata message does not decode", () =>
    Effect.gen(function* () {
      const seeder = yield* startMetaSeeder()
      const { next, socket } = yield* magnetLeecher(seeder.address)
      yield* socket.send([announce(2), Message.extended(ourUtMetadataId, Bencode.encode(Bencode.dict({ piece: Bencode.int(0) })))])
      expect(yield* next).toEqual(Option.none())
      yield* waitUntil(() => dropReasons(seeder.events).length > 0, "PeerDropped")
      expect(dropReasons(seeder.events)[0]).toMatch(/: protocol violation: ut_metadata message without msg_type$/)
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("counts metadata requests against the per-peer request bound", () =>
    Effect.gen(function* () {
      const seeder = yield* startMetaSeeder({ maxQueuedRequests: 4 })
      const { next, socket } = yield* magnetLeecher(seeder.address)
      yield* socket.send([announce(2), ...Array.from({ length: 12 }, (_, i) => ask(i % 3))])
      yield* expectDroppedAfter(next, seeder.events, "Extended", /protocol violation: more than 4 requests queued$/)
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("our fetchMetadata gets the info dict from our seeder over loopback", () =>
    Effect.gen(function* () {
      const seeder = yield* startMetaSeeder()
      const fetched = yield* fetchMetadata(
        { infoHash: metaInfo.infoHash, trackers: [], peers: [seeder.address] },
        { peerId: Uint8Array.from(fakePeerId), port: 6881, peerTimeout: "10 seconds" }
      )
      expect(fetched.info.raw).toEqual(metaBytes)
      expect(fetched.info.pieceCount).toBe(2100)
      expect(fetched.peer).toEqual(seeder.address)
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("the CLI's magnet_info prints the info fetched from our seeder", () =>
    Effect.gen(function* () {
      const seeder = yield* startMetaSeeder()
      const hash = toHex(metaInfo.infoHash)
      const link = `magnet:?xt=urn:btih:${hash}&dn=meta.bin&x.pe=127.0.0.1:${seeder.address.port}`
      const r = yield* Effect.promise(() => runCli(["magnet_info", link], 30_000))
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      const hashes = metaInfo.pieceHashes.map(toHex)
      expect(r.stdout).toBe([`Length: ${metaInfo.totalLength}`, `Info Hash: ${hash}`, "Piece Length: 256", "Piece Hashes:", ...hashes, ""].join("\n"))
    }).pipe(Effect.provide(SeedLayer)))
})

describe("seed: the Fast extension (BEP 6), with a peer that sets its bit", () => {
  const fastReserved = makeReserved({ fast: true })
  const allowed = allowedFastSet(info.infoHash, "127.0.0.1", info.pieceCount, 10)
  // Two Allowed Fast pieces of full size (the last piece is short).
  const [first, second] = allowed.filter((i) => i !== info.pieceCount - 1)

  it.scoped("a complete seed says Have All, grants the canonical Allowed Fast set, and serves those pieces while it chokes", () =>
    Effect.gen(function* () {
      const seeder = yield* startSeeder({ uploadSlots: 0 })
      const l = yield* leecher(seeder.address, 1, fastReserved)
      yield* expectNext(l.next, Message.haveAll)
      for (const index of allowed) yield* expectNext(l.next, Message.allowedFast(index))
      // choked (no slot), yet an Allowed Fast piece is served
      yield* l.socket.send([Message.request(first!, 0, 16384)])
      yield* expectNext(l.next, Message.piece(first!, 0, block(first!, 0)))
    }).pipe(Effect.provide(SeedLayer)))

  it.scoped("a partial seed rejects a request for a piece it lacks (Reject Request) and keeps the connection", () =>
    Effect.gen(function* () {
      const have = Bitfield.full(info.pieceCount)
      have.remove(first!)
      const seeder = yield* startSeeder({ uploadSlots: 0 }, have)
      const l = yield* leecher(seeder.address, 2, fastReserved)
      yield* expectNext(l.next, Message.bitfield(have.bytes))
      for (const index of allowed) yield* expectNext(l.next, Message.allowedFast(index))
      yield* l.socket.send([Message.request(first!, 0, 16384), Message.request(second!, 0, 16384)])
      yield* expectNext(l.next, Message.rejectRequest(first!, 0, 16384))
      yield* expectNext(l.next, Message.piece(second!, 0, block(second!, 0)))
      expect(dropReasons(seeder.events)).toEqual([])
    }).pipe(Effect.provide(SeedLayer)))
})
