import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Schedule, TestClock } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Bencode from "../../src/domain/Bencode.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { type AnnounceRequest, Tracker, type TrackerError, type TrackerOptions } from "../../src/services/Tracker.js"
import { compactPeers, fakeHttpTracker, fakeUdpTracker, queryParams, rawQueryBytes } from "../support/FakeTracker.js"
import { advanceWhenAsleep, waitUntil } from "../support/realTime.js"

const trackerLayer = (options: TrackerOptions = {}) => Tracker.layer(options).pipe(Layer.provide(NodeHttpClient.layerUndici))
const TrackerLive = trackerLayer()

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

const request: AnnounceRequest = {
  infoHash: Uint8Array.from({ length: 20 }, (_, i) => 0xff - i),
  peerId: ascii("-EB0010-%&?= +/\u00ff\u0080\u0000\u0001x"),
  port: 6881,
  uploaded: 0,
  downloaded: 0,
  left: 92063
}

const peersA: ReadonlyArray<PeerAddress> = [
  { host: "127.0.0.1", port: 51413 },
  { host: "10.1.2.3", port: 6881 }
]

const okBody = (peers: ReadonlyArray<PeerAddress> = peersA, extra: Record<string, Bencode.Bencode> = {}) => ({
  body: Bencode.encode(Bencode.dict({ interval: 900n, peers: compactPeers(peers), ...extra }))
})

const announceError = (url: string) =>
  Effect.flatMap(Tracker, (t) => t.announce(url, request)).pipe(Effect.flip)

describe("HTTP announce", () => {
  it.scoped("reads compact peers and sends the full query", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHttpTracker(okBody(peersA, { complete: 4n, incomplete: 1n, "min interval": 60n }))
      const tracker = yield* Tracker
      const r = yield* tracker.announce(fake.url, { ...request, uploaded: 5, downloaded: 7, event: "started", numWant: 40 })
      expect(r).toEqual({ peers: peersA, interval: 900, minInterval: 60, complete: 4, incomplete: 1 })
      const q = queryParams(fake.queries[0]!)
      expect([...q.keys()]).toEqual(["info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "compact", "numwant", "event"])
      expect([q.get("port"), q.get("uploaded"), q.get("downloaded"), q.get("left"), q.get("compact"), q.get("numwant"), q.get("event")])
        .toEqual(["6881", "5", "7", "92063", "1", "40", "started"])
      expect(rawQueryBytes(fake.queries[0]!, "info_hash")).toEqual(request.infoHash)
      expect(rawQueryBytes(fake.queries[0]!, "peer_id")).toEqual(request.peerId)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("carries every one of the 256 byte values of info_hash and peer_id intact", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHttpTracker(okBody())
      const tracker = yield* Tracker
      const chunks = Array.from({ length: 13 }, (_, k) => Uint8Array.from({ length: 20 }, (_, i) => (20 * k + i) % 256))
      for (const [k, chunk] of chunks.entries()) {
        yield* tracker.announce(fake.url, { ...request, infoHash: chunk, peerId: chunks[12 - k]! })
      }
      const seen = new Set<number>()
      for (const [k, query] of fake.queries.entries()) {
        expect(rawQueryBytes(query, "info_hash")).toEqual(chunks[k])
        expect(rawQueryBytes(query, "peer_id")).toEqual(chunks[12 - k])
        for (const b of rawQueryBytes(query, "info_hash")!) seen.add(b)
      }
      expect(fake.queries.length).toBe(13)
      expect(seen.size).toBe(256)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("appends to an announce URL that already has a query", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHttpTracker(okBody())
      const tracker = yield* Tracker
      yield* tracker.announce(`${fake.url}?passkey=s3cr3t`, request)
      expect(fake.queries[0]).toMatch(/^passkey=s3cr3t&info_hash=/)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("reads dictionary peers and peers6", () =>
    Effect.gen(function* () {
      const six = new Uint8Array(18)
      six[15] = 1
      six[17] = 99
      const fake = yield* fakeHttpTracker((query) => ({
        body: Bencode.encode(
          query.includes("numwant")
            ? Bencode.dict({ interval: 5n, peers6: six })
            : Bencode.dict({ interval: 5n, peers: [Bencode.dict({ ip: ascii("192.168.9.9"), port: 7000n })] })
        )
      }))
      const tracker = yield* Tracker
      expect((yield* tracker.announce(fake.url, request)).peers).toEqual([{ host: "192.168.9.9", port: 7000 }])
      expect((yield* tracker.announce(fake.url, { ...request, numWant: 1 })).peers).toEqual([{ host: "::1", port: 99 }])
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("returns and logs a warning message", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => {
        logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      }))
      const fake = yield* fakeHttpTracker(okBody(peersA, { "warning message": ascii("upgrade your client") }))
      const r = yield* Effect.flatMap(Tracker, (t) => t.announce(fake.url, request)).pipe(Effect.provide(capture))
      expect(r.warning).toBe("upgrade your client")
      expect(r.peers).toEqual(peersA)
      expect(logs).toEqual([`WARN tracker ${fake.url} warns: upgrade your client`])
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("a failure reason is a Failure carrying the tracker's text", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ "failure reason": ascii("torrent not registered") })) })
      const e = yield* announceError(fake.url)
      expect([e._tag, e.reason, e.detail, e.url]).toEqual(["TrackerError", "Failure", "torrent not registered", fake.url])
      expect(e.message).toBe(`tracker ${fake.url} refused the announce: torrent not registered`)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("garbage and truncated bodies are Malformed, naming the offset", () =>
    Effect.gen(function* () {
      const full = okBody().body
      const garbage = yield* fakeHttpTracker({ body: ascii("<html>oops</html>") })
      const truncated = yield* fakeHttpTracker({ body: full.subarray(0, full.length - 3) })
      const e1 = yield* announceError(garbage.url)
      const e2 = yield* announceError(truncated.url)
      expect([e1.reason, e2.reason]).toEqual(["Malformed", "Malformed"])
      expect(e1.detail).toMatch(/at byte 0/)
      expect(e2.detail).toMatch(/at byte \d+/)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("HTTP 500 is HttpStatus (with the failure reason when the body has one)", () =>
    Effect.gen(function* () {
      const plain = yield* fakeHttpTracker({ status: 500, body: ascii("Internal Server Error") })
      const said = yield* fakeHttpTracker({ status: 400, body: Bencode.encode(Bencode.dict({ "failure reason": ascii("bad info_hash") })) })
      const e1 = yield* announceError(plain.url)
      const e2 = yield* announceError(said.url)
      expect([e1.reason, e1.detail]).toEqual(["HttpStatus", "HTTP 500"])
      expect([e2.reason, e2.detail]).toEqual(["HttpStatus", "HTTP 400: bad info_hash"])
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("connection refused is Unreachable", () =>
    Effect.gen(function* () {
      const port = yield* Effect.async<number>((resume) => {
        const server = Http.createServer().listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo
          server.close(() => resume(Effect.succeed(port)))
        })
      })
      const e = yield* announceError(`http://127.0.0.1:${port}/announce`)
      expect(e.reason).toBe("Unreachable")
      expect(e.detail).toMatch(/ECONNREFUSED/)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("a tracker that never answers times out after httpTimeout (TestClock)", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHttpTracker("hang")
      const fiber = yield* Effect.fork(announceError(fake.url))
      yield* waitUntil(() => fake.queries.length === 1, "the request")
      yield* advanceWhenAsleep("14 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 seconds")
      const e = yield* Fiber.join(fiber)
      expect([e.reason, e.detail]).toEqual(["Timeout", "no answer within 15s"])
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("unknown schemes and bad udp URLs are Unsupported", () =>
    Effect.gen(function* () {
      const e1 = yield* announceError("wss://tracker.example/announce")
      const e2 = yield* announceError("udp://no-port.example/announce")
      expect([e1.reason, e1.detail]).toEqual(["Unsupported", "unknown scheme 'wss'"])
      expect(e2.reason).toBe("Unsupported")
    }).pipe(Effect.provide(TrackerLive)))
})

describe("UDP announce (BEP 15)", () => {
  const peers: ReadonlyArray<PeerAddress> = [{ host: "127.0.0.1", port: 7001 }, { host: "127.0.0.2", port: 7002 }]

  it.scoped("connects, then announces with the connection id, and reads the peers", () =>
    Effect.gen(function* () {
      const fake = yield* fakeUdpTracker({ peers, interval: 120 })
      const tracker = yield* Tracker
      const r = yield* tracker.announce(fake.url, { ...request, event: "completed" })
      expect(r).toEqual({ peers, interval: 120, incomplete: 3, complete: 5 })
      expect(fake.received.map((d) => d.action)).toEqual([0, 1])
      const announce = fake.received[1]!
      const view = new DataView(announce.bytes.buffer, announce.bytes.byteOffset)
      expect(announce.connectionId).not.toBe(0x41727101980n)
      expect(announce.bytes.subarray(16, 36)).toEqual(request.infoHash)
      expect(announce.bytes.subarray(36, 56)).toEqual(request.peerId)
      expect([view.getBigUint64(64), view.getUint32(80), view.getInt32(92), view.getUint16(96)]).toEqual([92063n, 1, -1, 6881])
      expect(Buffer.from(announce.bytes.subarray(98)).toString("latin1")).toBe("\x02\x09/announce\x00")
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("retransmits on 15 * 2^n s: a tracker that drops the first 2 packets still answers", () =>
    Effect.gen(function* () {
      const fake = yield* fakeUdpTracker({ peers, dropFirst: 2 })
      const fiber = yield* Effect.fork(Effect.flatMap(Tracker, (t) => t.announce(fake.url, request)))
      yield* advanceWhenAsleep("15 seconds")
      yield* waitUntil(() => fake.received.length === 2, "the first retransmission")
      yield* advanceWhenAsleep("30 seconds")
      const r = yield* Fiber.join(fiber)
      expect(r.peers).toEqual(peers)
      expect(fake.received.map((d) => [d.action, d.dropped])).toEqual([[0, true], [0, true], [0, false], [1, false]])
      expect(yield* TestClock.currentTimeMillis).toBe(45_000)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("times out when the retransmission schedule ends", () =>
    Effect.gen(function* () {
      const fake = yield* fakeUdpTracker({ dropFirst: 1000 })
      const fiber = yield* Effect.fork(announceError(fake.url))
      yield* advanceWhenAsleep("1 seconds")
      yield* advanceWhenAsleep("1 seconds")
      const e = yield* Fiber.join(fiber)
      expect([e.reason, e.detail]).toEqual(["Timeout", "no connect response after 3 attempt(s)"])
      expect(fake.received.length).toBe(3)
    }).pipe(Effect.provide(trackerLayer({ udpRetransmit: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2))) }))))

  it.scoped("an error reply (action 3) is a Failure with the tracker's message", () =>
    Effect.gen(function* () {
      const fake = yield* fakeUdpTracker({ error: "info_hash not found" })
      const e = yield* announceError(fake.url)
      expect([e.reason, e.detail]).toEqual(["Failure", "info_hash not found"])
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("ignores replies with a wrong transaction id", () =>
    Effect.gen(function* () {
      const fake = yield* fakeUdpTracker({ peers, wrongTransactionFirst: true, decoyPeers: [{ host: "6.6.6.6", port: 666 }] })
      const tracker = yield* Tracker
      expect((yield* tracker.announce(fake.url, request)).peers).toEqual(peers)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("reuses the connection id for 60 s, then connects again", () =>
    Effect.gen(function* () {
      const fake = yield* fakeUdpTracker({ peers })
      const tracker = yield* Tracker
      yield* tracker.announce(fake.url, request)
      yield* TestClock.adjust("59 seconds")
      yield* tracker.announce(fake.url, request)
      expect(fake.received.map((d) => d.action)).toEqual([0, 1, 1])
      yield* TestClock.adjust("2 seconds")
      yield* tracker.announce(fake.url, request)
      expect(fake.received.map((d) => d.action)).toEqual([0, 1, 1, 0, 1])
      expect(fake.received[4]!.connectionId).not.toBe(fake.received[1]!.connectionId)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("after an error reply, connects afresh", () =>
    Effect.gen(function* () {
      const fake = yield* fakeUdpTracker({ peers })
      const tracker = yield* Tracker
      yield* tracker.announce(fake.url, request)
      fake.forgetConnections()
      const e = yield* Effect.flip(tracker.announce(fake.url, request))
      expect(e.detail).toBe("unknown connection id")
      expect((yield* tracker.announce(fake.url, request)).peers).toEqual(peers)
      expect(fake.received.map((d) => d.action)).toEqual([0, 1, 1, 0, 1])
    }).pipe(Effect.provide(TrackerLive)))

  it.live("a closed port is Unreachable", () =>
    Effect.gen(function* () {
      const closed = yield* Effect.scoped(Effect.map(fakeUdpTracker(), (f) => f.url))
      const e = yield* announceError(closed)
      expect(e.reason).toBe("Unreachable")
      expect(e.detail).toMatch(/ECONNREFUSED/)
    }).pipe(Effect.provide(trackerLayer({ udpRetransmit: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(5))) }))))
})

describe("tiers (BEP 12)", () => {
  const failing = (status = 500) => fakeHttpTracker({ status, body: ascii("down") })

  it.scoped("falls back to the next tier, and fails with the last error when all fail", () =>
    Effect.gen(function* () {
      const down = yield* failing()
      const refusing = yield* fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ "failure reason": ascii("nope") })) })
      const good = yield* fakeHttpTracker(okBody())
      const tracker = yield* Tracker
      const ok = yield* Effect.flatMap(tracker.tiers([[down.url], [good.url]]), (t) => t.announce(request))
      expect([ok.url, ok.peers]).toEqual([good.url, peersA])
      const e: TrackerError = yield* Effect.flip(Effect.flatMap(tracker.tiers([[down.url], [refusing.url]]), (t) => t.announce(request)))
      expect([e.url, e.reason, e.detail]).toEqual([refusing.url, "Failure", "nope"])
      const none = yield* Effect.flip(Effect.flatMap(tracker.tiers([]), (t) => t.announce(request)))
      expect(none.message).toBe("no tracker to announce to")
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("moves a tracker that answered to the front of its tier", () =>
    Effect.gen(function* () {
      const down = yield* failing()
      const good = yield* fakeHttpTracker(okBody())
      const tracker = yield* Tracker
      const tiers = yield* tracker.tiers([[down.url, good.url]])
      expect((yield* tiers.announce(request)).url).toBe(good.url)
      const downHits = down.queries.length // 0 or 1: the shuffle decides who goes first
      expect((yield* tiers.announce(request)).url).toBe(good.url)
      expect((yield* tiers.announce(request)).url).toBe(good.url)
      expect(down.queries.length).toBe(downHits)
      expect(good.queries.length).toBe(3)
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("tries the trackers of a tier in (shuffled) order until one answers", () =>
    Effect.gen(function* () {
      const downs = [yield* failing(), yield* failing(), yield* failing()]
      const good = yield* fakeHttpTracker(okBody())
      const tracker = yield* Tracker
      const tier = [...downs.map((d) => d.url), good.url]
      // Whatever the shuffle, every tracker before the good one was asked once, none after it.
      for (let run = 0; run < 5; run++) {
        downs.forEach((d) => (d.queries as Array<string>).splice(0))
        const r = yield* Effect.flatMap(tracker.tiers([tier]), (t) => t.announce(request))
        expect(r.url).toBe(good.url)
        expect(downs.every((d) => d.queries.length <= 1)).toBe(true)
      }
    }).pipe(Effect.provide(TrackerLive)))

  it.scoped("skips unsupported schemes and mixes UDP and HTTP trackers", () =>
    Effect.gen(function* () {
      const udp = yield* fakeUdpTracker({ peers: [{ host: "127.0.0.9", port: 9 }] })
      const tracker = yield* Tracker
      const r = yield* Effect.flatMap(tracker.tiers([["wss://tracker.example/announce"], [udp.url]]), (t) => t.announce(request))
      expect([r.url, r.peers]).toEqual([udp.url, [{ host: "127.0.0.9", port: 9 }]])
    }).pipe(Effect.provide(TrackerLive)))
})
