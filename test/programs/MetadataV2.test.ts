/**
 * A v2 magnet's info dict comes without its piece layers: fetchMetadata asks the peer for them by
 * hash request and keeps only answers that hash up to each file's pieces root. Fake peers on
 * loopback serve the metadata and answer honestly, with tampered hashes, or with a hash reject.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { makeHashServer } from "../../src/domain/PieceLayers.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { type Message, Message as Msg, supportsV2 } from "../../src/domain/Wire.js"
import { fetchMetadata, type MetadataOptions } from "../../src/programs/Metadata.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Tracker, TrackerError } from "../../src/services/Tracker.js"
import { makeFakeMetadataPeer } from "../support/FakeMetadataPeer.js"
import { payloadBytes, v2Torrent } from "../support/torrent.js"

const options: MetadataOptions = { peerId: Uint8Array.from(Buffer.from("-EB0010-v2v2v2v2v2v2", "latin1")), port: 6881, peerTimeout: "5 seconds", concurrency: 1 }

const pieceLength = 16384
/** 20 and 3 pieces: the first file's layer spans a 32-wide tree, the second a 4-wide one. */
const data = [payloadBytes(20 * pieceLength - 100, 1), payloadBytes(2 * pieceLength + 5, 2)]
const built = v2Torrent([["a.bin", data[0]!], ["b.bin", data[1]!]], pieceLength)
const info = built.metainfo.info
const serve = makeHashServer(info)

const honest = (r: Parameters<typeof serve>[0]): Message => Either.match(serve(r), { onLeft: () => Msg.hashReject(r), onRight: (h) => Msg.hashes(r, h) })
const tampered = (r: Parameters<typeof serve>[0]): Message => {
  const answer = honest(r)
  if (answer._tag !== "Hashes") return answer
  const hashes = Uint8Array.from(answer.hashes)
  hashes[5]! ^= 1
  return Msg.hashes(r, hashes)
}

const noTracker = Layer.succeed(
  Tracker,
  Tracker.of({
    announce: (url) => Effect.fail(new TrackerError({ url, reason: "Unsupported", detail: "no tracker in this test" })),
    tiers: () => Effect.die("no tracker in this test")
  })
)
const live = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, Layer.merge(PeerWire.Tcp, noTracker))

const link = (peers: ReadonlyArray<PeerAddress>) => ({ infoHash: info.infoHash, infoHashV2: info.v2!.infoHash, trackers: [], peers })

describe("fetchMetadata of a v2 magnet link", () => {
  it.live("fetches the piece layers from the peer, as the .torrent has them", () =>
    live(Effect.gen(function* () {
      const peer = yield* makeFakeMetadataPeer({ metadata: info.raw, answerHashes: honest })
      const fetched = yield* fetchMetadata(link([peer.address]), options)
      expect(fetched.info.v2?.pieces).toEqual(info.v2?.pieces)
      expect(fetched.info.pieceHashes).toEqual([])
      const [handshake] = yield* peer.handshakes
      expect(supportsV2(handshake!.reserved)).toBe(true)
      const asked = peer.received()[0]!.filter((m) => m._tag === "HashRequest")
      expect(asked.map((m) => m._tag === "HashRequest" && [m.index, m.length, m.proofLayers])).toEqual([[0, 32, 4], [0, 4, 1]])
    }).pipe(Effect.scoped)))

  it.live("drops a peer whose hashes do not prove out, and takes them from the next", () =>
    live(Effect.gen(function* () {
      const liar = yield* makeFakeMetadataPeer({ metadata: info.raw, answerHashes: tampered })
      const good = yield* makeFakeMetadataPeer({ metadata: info.raw, answerHashes: honest })
      const fetched = yield* fetchMetadata(link([liar.address, good.address]), options)
      expect(fetched.peer).toEqual(good.address)
      expect(fetched.info.v2?.pieces).toEqual(info.v2?.pieces)
    }).pipe(Effect.scoped)))

  it.live("fails with each peer's reason when none gives the layers: tampered hashes, a hash reject, none at all", () =>
    live(Effect.gen(function* () {
      const liar = yield* makeFakeMetadataPeer({ metadata: info.raw, answerHashes: tampered })
      const refuser = yield* makeFakeMetadataPeer({ metadata: info.raw, answerHashes: Msg.hashReject })
      const mute = yield* makeFakeMetadataPeer({ metadata: info.raw })
      const error = yield* Effect.flip(fetchMetadata(link([liar.address, refuser.address, mute.address]), { ...options, peerTimeout: "1 second" }))
      expect(error.failures.map((f) => f.reason)).toEqual(["BadHashes", "Rejected", "Timeout"])
      expect(error.failures[0]!.message).toMatch(/do not hash up to the file's pieces root/)
    }).pipe(Effect.scoped)))
})
