/**
 * A seeder of a v2 torrent answers BEP 52 hash requests from its piece layers: hashes that prove
 * out against the file's pieces root, a hash reject for what it does not keep, and no more than a
 * peer's budget however many it asks for. A fake leecher dials it on loopback.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Stream } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import type { HashRange } from "../../src/domain/HashRequest.js"
import { pieceLayerRequests, treeHeight, verifyAnswer } from "../../src/domain/MerkleProof.js"
import { hashBudget } from "../../src/domain/PieceLayers.js"
import { makeReserved, type Message, Message as Msg, supportsV2 } from "../../src/domain/Wire.js"
import { seed, type SeedEvent } from "../../src/programs/Seed.js"
import { Hasher } from "../../src/services/Hasher.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Tracker } from "../../src/services/Tracker.js"
import { Transport } from "../../src/services/Transport.js"
import { dialFakePeer, messageReader } from "../support/FakePeer.js"
import { waitUntil } from "../support/realTime.js"
import { payloadBytes, v2Torrent } from "../support/torrent.js"

const pieceLength = 32768
const a = payloadBytes(20 * pieceLength - 100, 3)
const info = v2Torrent([["a.bin", a], ["b.bin", payloadBytes(3 * pieceLength, 4)]], pieceLength).metainfo.info
const rootA = info.v2!.piecesRoots[0]!

const NoTracker = Layer.succeed(Tracker, {
  announce: () => Effect.die("no tracker in this test"),
  tiers: () => Effect.succeed({ announce: () => Effect.die("no tracker in this test") })
})
const SeedLayer = Layer.mergeAll(PeerWire.Live.pipe(Layer.provideMerge(Transport.Tcp)), NoTracker, Hasher.Sync)
const noBlocks = { readBlock: () => Effect.dieMessage("no block is asked for in this test") }

/** Seeds `info` on 127.0.0.1 and dials it as a v2 leecher: our handshake, and a reader of the seeder's messages after its greeting. */
const seedAndDial = Effect.gen(function* () {
  const events: Array<SeedEvent> = []
  yield* seed({ info, trackers: [] }, noBlocks, Bitfield.full(info.pieceCount), { peerId: new Uint8Array(20).fill(1), port: 0, host: "127.0.0.1" }).pipe(
    Stream.runForEach((e) => Effect.sync(() => events.push(e))),
    Effect.forkScoped
  )
  yield* waitUntil(() => events.length > 0, "Started")
  const started = events[0]!
  if (started._tag !== "Started") return yield* Effect.dieMessage(`first event ${started._tag}`)
  const socket = yield* dialFakePeer({ host: "127.0.0.1", port: started.port }, { infoHash: info.infoHash, reserved: makeReserved({ extensions: true, v2: true }) })
  const handshake = yield* socket.handshake
  const next = yield* messageReader(socket)
  /** The next hash message, skipping the greeting. */
  const nextHashMessage: Effect.Effect<Message> = Effect.flatMap(next, (m) =>
    Option.isNone(m) ? Effect.dieMessage("the seeder closed") : m.value._tag === "Hashes" || m.value._tag === "HashReject" ? Effect.succeed(m.value) : nextHashMessage)
  return { socket, handshake, nextHashMessage }
})

describe("seed: BEP 52 hash requests", () => {
  it.scopedLive("answers a piece layer request with hashes that prove out, and rejects what it does not keep", () =>
    Effect.gen(function* () {
      const { handshake, nextHashMessage, socket } = yield* seedAndDial
      expect(supportsV2(handshake.reserved)).toBe(true)
      const [request] = pieceLayerRequests(rootA, a.length, pieceLength)
      const leaves: HashRange = { ...request!, baseLayer: 0, length: 2, proofLayers: 0 }
      const unknown: HashRange = { ...request!, piecesRoot: new Uint8Array(32).fill(9) }
      yield* socket.send([Msg.hashRequest(request!), Msg.hashRequest(leaves), Msg.hashRequest(unknown)])
      const answer = yield* nextHashMessage
      if (answer._tag !== "Hashes") return expect.fail(`expected Hashes, got ${answer._tag}`)
      const layer = Either.getOrThrow(verifyAnswer(request!, answer.hashes, treeHeight(a.length)))
      expect(layer.slice(0, 20)).toEqual(info.v2!.pieces.slice(0, 20).map((p) => p.hash))
      expect(yield* nextHashMessage).toEqual(Msg.hashReject(leaves))
      expect(yield* nextHashMessage).toEqual(Msg.hashReject(unknown))
    }).pipe(Effect.provide(SeedLayer)))

  it.scopedLive("stops answering one peer past its budget: the rest are rejected", () =>
    Effect.gen(function* () {
      const { nextHashMessage, socket } = yield* seedAndDial
      const [request] = pieceLayerRequests(rootA, a.length, pieceLength)
      // 32 hashes and no uncle: the run spans the file's whole (32-wide) piece layer.
      const asked = Math.ceil(hashBudget(info) / request!.length) + 10
      yield* socket.send(Array.from({ length: asked }, () => Msg.hashRequest(request!)))
      const answers: Array<Message["_tag"]> = []
      for (let i = 0; i < asked; i++) answers.push((yield* nextHashMessage)._tag)
      const served = answers.filter((t) => t === "Hashes").length
      expect(served * request!.length).toBeLessThanOrEqual(hashBudget(info))
      expect(served).toBeGreaterThan(0)
      expect(answers.slice(served).every((t) => t === "HashReject")).toBe(true)
    }).pipe(Effect.provide(SeedLayer)))
})
