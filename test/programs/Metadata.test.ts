/**
 * Fetching metadata from fake peers over real loopback sockets: the strict message order, metadata
 * of several pieces, peers that lie (wrong hash, absurd size, reject) and the tracker's part.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Stream } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { toHex } from "../../src/domain/Bytes.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { type Message, Message as Msg } from "../../src/domain/Wire.js"
import {
  exchangeExtensionHandshake,
  fetchMetadata,
  magnetHandshake,
  MetadataError,
  type MetadataOptions,
  MetadataPeerError
} from "../../src/programs/Metadata.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { type AnnounceRequest, Tracker, TrackerError } from "../../src/services/Tracker.js"
import { fakePeerId, makeFakePeer } from "../support/FakePeer.js"
import { extensionReserved, makeFakeMetadataPeer } from "../support/FakeMetadataPeer.js"
import { payloadBytes, sha1, singleFileInfo } from "../support/torrent.js"

const ourId = Uint8Array.from(Buffer.from("-EB0010-abcdefghijkl", "latin1"))
const options: MetadataOptions = { peerId: ourId, port: 6881, peerTimeout: "5 seconds" }

/** A small info dict (one metadata piece). */
const smallInfo = Bencode.encode(singleFileInfo("small.bin", payloadBytes(100_000), 32768))
/** 2000 piece hashes: 40 KB of metadata, three ut_metadata pieces (the last one short). */
const bigInfo = Bencode.encode(
  Bencode.dict({
    length: Bencode.int(2000 * 16384),
    name: Bencode.text("big.bin"),
    "piece length": Bencode.int(16384),
    pieces: payloadBytes(2000 * 20, 7)
  })
)

const noTracker = Layer.succeed(
  Tracker,
  Tracker.of({
    announce: (url) => Effect.fail(new TrackerError({ url, reason: "Unsupported", detail: "no tracker in this test" })),
    tiers: () => Effect.die("no tracker in this test")
  })
)

/** A tracker that lists `peers` and records every announce. */
const stubTracker = (peers: ReadonlyArray<PeerAddress>, seen: Array<{ tiers: unknown; request: AnnounceRequest }>) =>
  Layer.succeed(
    Tracker,
    Tracker.of({
      announce: () => Effect.die("tiers only"),
      tiers: (tiers) =>
        Effect.succeed({
          announce: (request) =>
            Effect.sync(() => {
              seen.push({ tiers, request })
              return { peers, interval: 60, url: tiers[0]![0]! }
            })
        })
    })
  )

const live = <A, E, R>(self: Effect.Effect<A, E, R>, tracker: Layer.Layer<Tracker> = noTracker) =>
  Effect.provide(self, Layer.merge(PeerWire.Tcp, tracker))

const link = (infoBytes: Uint8Array, peers: ReadonlyArray<PeerAddress>, trackers: ReadonlyArray<string> = []) => ({
  infoHash: sha1(infoBytes),
  trackers,
  peers
})

/** An extended message as the fake saw it: id and its leading dictionary. */
const extended = (m: Message | undefined) => {
  if (m?._tag !== "Extended") return m?._tag
  const d = Bencode.decodePrefix(m.payload, 0)
  return { id: m.id, dict: Either.isRight(d) ? Bencode.toJson(d.right.value) : "malformed" }
}

const failures = (e: MetadataError) => e.failures.map((f) => ({ peer: f.peer, reason: f.reason }))

const key = (a: PeerAddress) => `${a.host}:${a.port}`

describe("fetchMetadata", () => {
  it.scopedLive("observes the strict order: our extension handshake first, then the request, nothing else", () =>
    live(
      Effect.gen(function* () {
        const peer = yield* makeFakeMetadataPeer({ metadata: smallInfo, utMetadataId: 7, bitfield: Uint8Array.of(0xff) })
        const fetched = yield* fetchMetadata(link(smallInfo, [peer.address]), options)
        expect(toHex(fetched.info.infoHash)).toBe(toHex(sha1(smallInfo)))
        expect(fetched.info.name).toBe("small.bin")
        expect(fetched.peer).toEqual(peer.address)
        // our handshake went alone, with exactly the extension bit
        expect(peer.bytesBeforeAnswer()).toEqual([68])
        expect([...(yield* peer.handshakes)[0]!.reserved]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0])
        const sent = peer.received()[0]!
        expect(sent.map(extended)).toEqual([
          { id: 0, dict: '{"m":{"ut_metadata":1}}' },
          { id: 7, dict: '{"msg_type":0,"piece":0}' }
        ])
      })
    ))

  it.scopedLive("fetches metadata of several 16 KiB pieces and hands back a swarm for the download", () =>
    live(
      Effect.gen(function* () {
        const peer = yield* makeFakeMetadataPeer({ metadata: bigInfo })
        const fetched = yield* fetchMetadata(link(bigInfo, [peer.address]), options)
        expect(fetched.info.pieceCount).toBe(2000)
        expect(fetched.info.raw).toEqual(bigInfo)
        expect(peer.received()[0]!.slice(1).map(extended)).toEqual(
          [0, 1, 2].map((piece) => ({ id: 3, dict: `{"msg_type":0,"piece":${piece}}` }))
        )
        expect(fetched.peers).toEqual([peer.address])
        expect(fetched.trackers).toEqual([])
      })
    ))

  it.scopedLive("moves on from a peer whose metadata has the wrong hash to one that serves it right", () =>
    live(
      Effect.gen(function* () {
        const liar = yield* makeFakeMetadataPeer({ metadata: Bencode.encode(singleFileInfo("evil.bin", payloadBytes(100_000), 32768)) })
        const good = yield* makeFakeMetadataPeer({ metadata: smallInfo })
        const fetched = yield* fetchMetadata(link(smallInfo, [liar.address, good.address]), { ...options, concurrency: 1 })
        expect(yield* liar.connections).toBe(1)
        expect(fetched.peer).toEqual(good.address)
        expect(fetched.info.name).toBe("small.bin")
      })
    ))

  it.scopedLive("drops a peer announcing an absurd metadata_size without requesting anything from it", () =>
    live(
      Effect.gen(function* () {
        const absurd = yield* makeFakeMetadataPeer({ metadata: smallInfo, metadataSize: 2 ** 40 })
        const good = yield* makeFakeMetadataPeer({ metadata: smallInfo })
        const fetched = yield* fetchMetadata(link(smallInfo, [absurd.address, good.address]), { ...options, concurrency: 1 })
        expect(fetched.peer).toEqual(good.address)
        expect(absurd.received()[0]!.map(extended)).toEqual([{ id: 0, dict: '{"m":{"ut_metadata":1}}' }])
      })
    ))

  it.scopedLive("fails with every peer's reason when none serves the metadata", () =>
    live(
      Effect.gen(function* () {
        const wrong = yield* makeFakeMetadataPeer({ metadata: bigInfo })
        const absurd = yield* makeFakeMetadataPeer({ metadata: smallInfo, metadataSize: 0 })
        const rejecting = yield* makeFakeMetadataPeer({ metadata: smallInfo, reject: true })
        const noMetadata = yield* makeFakeMetadataPeer({ metadata: smallInfo, extensionHandshake: Bencode.encode(Bencode.dict({ m: Bencode.dict({}) })) })
        const noExtensions = yield* makeFakeMetadataPeer({ metadata: smallInfo, reserved: new Uint8Array(8) })
        const malformed = yield* makeFakeMetadataPeer({ metadata: smallInfo, extensionHandshake: Bencode.text("d1:m") })
        const peers = [wrong, absurd, rejecting, noMetadata, noExtensions, malformed].map((p) => p.address)
        const e = yield* Effect.flip(fetchMetadata(link(smallInfo, peers), options))
        expect(e).toBeInstanceOf(MetadataError)
        expect(e.reason).toBe("AllPeersFailed")
        expect(failures(e)).toEqual([
          { peer: key(peers[0]!), reason: "HashMismatch" },
          { peer: key(peers[1]!), reason: "MetadataSize" },
          { peer: key(peers[2]!), reason: "Rejected" },
          { peer: key(peers[3]!), reason: "NoMetadata" },
          { peer: key(peers[4]!), reason: "NoExtensions" },
          { peer: key(peers[5]!), reason: "Malformed" }
        ])
        expect(e.failures[0]!.message).toBe(
          `peer ${key(peers[0]!)}: metadata hash mismatch: expected ${toHex(sha1(smallInfo))}, got ${toHex(sha1(bigInfo))}`
        )
        expect(e.message).toMatch(new RegExp(`^no peer of ${toHex(sha1(smallInfo))} answered: peer .*; and 3 more$`))
        // a peer without the extension bit is sent nothing at all
        expect(noExtensions.received()[0] ?? []).toEqual([])
      })
    ))

  it.scopedLive("bounds a silent peer by peerTimeout and reports a refused one", () =>
    live(
      Effect.gen(function* () {
        const silent = yield* makeFakeMetadataPeer({ metadata: smallInfo, silent: true })
        const refused = yield* Effect.scoped(makeFakePeer()).pipe(Effect.map((p) => p.address))
        const e = yield* Effect.flip(fetchMetadata(link(smallInfo, [silent.address, refused]), { ...options, peerTimeout: "300 millis" }))
        expect(failures(e)).toEqual([
          { peer: key(silent.address), reason: "Timeout" },
          { peer: key(refused), reason: "Connection" }
        ])
        expect(e.failures[1]!.message).toBe(`peer ${key(refused)}: connection refused`)
      })
    ))

  it.scopedLive("dials a peer that dropped the connection before the handshake once more with redialDropped, a refused one never", () =>
    live(
      Effect.gen(function* () {
        // Plaintext only: with "allow" the drop of the plain handshake is first retried with MSE.
        const plain = { ...options, encryption: "disable" as const }
        const once = yield* makeFakeMetadataPeer({ metadata: smallInfo, dropFirst: 1 })
        const e = yield* Effect.flip(fetchMetadata(link(smallInfo, [once.address]), plain))
        expect(failures(e)).toEqual([{ peer: key(once.address), reason: "Connection" }])
        expect(yield* once.connections).toBe(1)
        const twice = yield* makeFakeMetadataPeer({ metadata: smallInfo, dropFirst: 1 })
        const fetched = yield* fetchMetadata(link(smallInfo, [twice.address]), { ...plain, redialDropped: true })
        expect(fetched.peer).toEqual(twice.address)
        expect(yield* twice.connections).toBe(2)
        const refused = yield* Effect.scoped(makeFakePeer()).pipe(Effect.map((p) => p.address))
        const r = yield* Effect.flip(fetchMetadata(link(smallInfo, [refused]), { ...plain, redialDropped: true }))
        expect(r.failures[0]!.message).toBe(`peer ${key(refused)}: connection refused`)
      })
    ))

  it.scopedLive("does not take itself for a peer", () =>
    live(
      Effect.gen(function* () {
        const self = yield* makeFakeMetadataPeer({ metadata: smallInfo, peerId: ourId })
        const e = yield* Effect.flip(fetchMetadata(link(smallInfo, [self.address]), options))
        expect(failures(e)).toEqual([{ peer: key(self.address), reason: "Self" }])
      })
    ))

  it.scopedLive("announces with left=1 and dials the tracker's peers after the link's", () => {
    const seen: Array<{ tiers: unknown; request: AnnounceRequest }> = []
    return Effect.gen(function* () {
      const peer = yield* makeFakeMetadataPeer({ metadata: smallInfo })
      const other = { host: "127.0.0.1", port: 1 }
      const trackers = ["http://127.0.0.1:9/announce", "udp://127.0.0.1:9/announce"]
      const fetched = yield* live(
        fetchMetadata(link(smallInfo, [peer.address], trackers), options),
        stubTracker([peer.address, other], seen)
      )
      expect(seen).toHaveLength(1)
      expect(seen[0]!.tiers).toEqual([[trackers[0]], [trackers[1]]])
      expect(seen[0]!.request).toMatchObject({ left: 1, uploaded: 0, downloaded: 0, port: 6881, peerId: ourId, infoHash: sha1(smallInfo) })
      expect(fetched.trackers).toEqual([[trackers[0]], [trackers[1]]])
      expect(fetched.peers).toEqual([peer.address, other])
    })
  })

  it.scopedLive("fails with NoPeers, naming the tracker's error, when nobody is known", () =>
    live(
      Effect.gen(function* () {
        const failing = Layer.succeed(
          Tracker,
          Tracker.of({
            announce: () => Effect.die("tiers only"),
            tiers: () =>
              Effect.succeed({
                announce: () => Effect.fail(new TrackerError({ url: "http://t/announce", reason: "Failure", detail: "unregistered torrent" }))
              })
          })
        )
        const e = yield* Effect.flip(live(fetchMetadata(link(smallInfo, [], ["http://t/announce"]), options), failing))
        expect(e.reason).toBe("NoPeers")
        expect(e.message).toBe(
          `no peers for ${toHex(sha1(smallInfo))} (tracker http://t/announce refused the announce: unregistered torrent)`
        )
      })
    ))
})

describe("magnetHandshake and exchangeExtensionHandshake", () => {
  it.scopedLive("gives the peer id and the peer's ut_metadata id", () =>
    live(
      Effect.gen(function* () {
        const peer = yield* makeFakeMetadataPeer({ metadata: smallInfo, utMetadataId: 42 })
        const h = yield* magnetHandshake(link(smallInfo, [peer.address]), options)
        expect(toHex(h.peerId)).toBe(toHex(fakePeerId))
        expect(h.metadataExtensionId).toBe(42)
        expect(h.extensions.metadataSize).toBe(smallInfo.length)
      })
    ))

  it.scopedLive("keeps the messages that arrive with the peer's extension handshake", () =>
    live(
      Effect.gen(function* () {
        const infoHash = sha1(smallInfo)
        const peer = yield* makeFakePeer({
          reserved: extensionReserved,
          // one write: bitfield, extension handshake and a have, most likely one TCP read for us
          handler: (c) =>
            Effect.zipRight(
              c.send([Msg.bitfield(Uint8Array.of(0x80)), Msg.extended(0, Bencode.text("d1:md11:ut_metadatai2eee")), Msg.have(5)]),
              Stream.runDrain(c.messages)
            )
        })
        const conn = yield* (yield* PeerWire).connect(peer.address, { infoHash, peerId: ourId, reserved: extensionReserved, pieceCount: 8 })
        const { handshake, messages } = yield* exchangeExtensionHandshake(conn)
        expect(handshake.m.get("ut_metadata")).toBe(2)
        expect(Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(messages, 1)))).toEqual([Msg.have(5)])
      })
    ))

  it.scopedLive("fails NoExtensions at once for a peer without the extension bit", () =>
    live(
      Effect.gen(function* () {
        const peer = yield* makeFakePeer()
        const conn = yield* (yield* PeerWire).connect(peer.address, {
          infoHash: sha1(smallInfo),
          peerId: ourId,
          reserved: extensionReserved,
          pieceCount: 8
        })
        const e = yield* Effect.flip(exchangeExtensionHandshake(conn))
        expect(e).toBeInstanceOf(MetadataPeerError)
        expect(e.reason).toBe("NoExtensions")
        expect(e.message).toBe(`peer ${key(peer.address)}: does not support the extension protocol (reserved bytes 0000000000000000)`)
      })
    ))
})
