import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Layer, TestClock } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { formatPeer } from "../../src/domain/Peer.js"
import { percentEncodeBytes } from "../../src/domain/TrackerResponse.js"
import { Tracker } from "../../src/services/Tracker.js"
import {
  makeTrackerServer,
  parseAnnounceQuery,
  percentDecode,
  TrackerServer,
  type TrackerServerInfo
} from "../../src/services/TrackerServer.js"

const bytes = (...values: ReadonlyArray<number>) => new Uint8Array(values)
const filled = (value: number) => new Uint8Array(20).fill(value)
/** A 20-byte peer id whose last byte tells peers apart. */
const peerId = (n: number) => Uint8Array.from({ length: 20 }, (_, i) => (i === 19 ? n : 0x41 + i))

interface Announce {
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
  readonly port: number
  readonly left?: number
  /** Raw extra query text, e.g. `compact=0&numwant=3`. */
  readonly extra?: string
}

const query = (a: Announce) =>
  [
    `info_hash=${percentEncodeBytes(a.infoHash)}`,
    `peer_id=${percentEncodeBytes(a.peerId)}`,
    `port=${a.port}`,
    "uploaded=0",
    "downloaded=0",
    ...(a.left !== undefined ? [`left=${a.left}`] : []),
    ...(a.extra !== undefined ? [a.extra] : [])
  ].join("&")

/** GET with a hand-built query (no URLSearchParams anywhere); the status and the decoded body. */
const get = (url: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(url)
    const body = Either.getOrThrow(Bencode.decode(new Uint8Array(yield* response.arrayBuffer)))
    if (!Bencode.isDict(body)) throw new Error("not a dictionary")
    return { status: response.status, body }
  })

const announceRaw = (server: TrackerServerInfo, a: Announce) => Effect.map(get(`${server.url}?${query(a)}`), (r) => r.body)

const num = (d: Bencode.BencodeDict, key: string) => Number(Bencode.get(d, key) as bigint)
const failure = (d: Bencode.BencodeDict) => Bencode.toText(Bencode.get(d, "failure reason") as Uint8Array)

/** Compact peers as `ip:port` strings, decoded by hand. */
const compact4 = (b: Uint8Array) => {
  const out: Array<string> = []
  for (let i = 0; i < b.length; i += 6) out.push(`${b[i]}.${b[i + 1]}.${b[i + 2]}.${b[i + 3]}:${(b[i + 4]! << 8) | b[i + 5]!}`)
  return out.sort()
}

const peersOf = (d: Bencode.BencodeDict) => compact4(Bencode.get(d, "peers") as Uint8Array)

const Client = Layer.mergeAll(Tracker.Live, NodeHttpClient.layerUndici).pipe(Layer.provideMerge(NodeHttpClient.layerUndici))

describe("query decoding", () => {
  it("percentDecode gives back every byte value, escapes in either case, and rejects broken escapes", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    expect(percentDecode(percentEncodeBytes(all))).toEqual(all)
    expect(percentDecode("%ff%FFa-")).toEqual(bytes(255, 255, 0x61, 0x2d))
    for (const broken of ["%", "%4", "%zz", "%g0", "a%"]) expect(percentDecode(broken)).toBeUndefined()
  })

  it.prop("percentDecode inverts percentEncodeBytes", [fc.uint8Array({ maxLength: 64 })], ([b]) => {
    expect(percentDecode(percentEncodeBytes(b))).toEqual(b)
  })

  it("parseAnnounceQuery: defaults, caps and failures", () => {
    const q = Either.getOrThrow(parseAnnounceQuery(query({ infoHash: filled(0xff), peerId: peerId(1), port: 6881 })))
    expect(q).toMatchObject({ port: 6881, left: undefined, event: undefined, compact: true, numWant: 50, ip: undefined })
    expect(q.infoHash).toEqual(filled(0xff))
    const r = Either.getOrThrow(
      parseAnnounceQuery(`${query({ infoHash: filled(1), peerId: peerId(1), port: 1, left: 0 })}&compact=0&numwant=1000&event=stopped&ip=10.0.0.1`)
    )
    expect(r).toMatchObject({ left: 0, compact: false, numWant: 200, event: "stopped", ip: "10.0.0.1" })
    const reason = (text: string) => Either.getOrThrowWith(Either.flip(parseAnnounceQuery(text)), () => new Error(text)).detail
    const id = `peer_id=${percentEncodeBytes(peerId(1))}`
    expect(reason(`${id}&port=1`)).toBe("missing info_hash")
    expect(reason(`info_hash=${percentEncodeBytes(new Uint8Array(19))}&${id}&port=1`)).toMatch(/^malformed info_hash/)
    expect(reason(`info_hash=%zz${percentEncodeBytes(new Uint8Array(19))}&${id}&port=1`)).toMatch(/^malformed info_hash/)
    expect(reason(`info_hash=${percentEncodeBytes(filled(1))}&port=1`)).toBe("missing peer_id")
    expect(reason(`info_hash=${percentEncodeBytes(filled(1))}&${id}`)).toBe("missing port")
    for (const port of ["0", "65536", "x", "-1", "1.5"]) {
      expect(reason(`info_hash=${percentEncodeBytes(filled(1))}&${id}&port=${port}`)).toMatch(/^malformed port/)
    }
    expect(reason(`info_hash=${percentEncodeBytes(filled(1))}&${id}&port=1&left=-1`)).toMatch(/^malformed left/)
  })
})

layer(Client)("TrackerServer over real HTTP", (it) => {
  it.scoped("our Tracker client announces to it: peers find each other, never themselves; seeders get leechers only", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer({ interval: 30 })
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/announce`)
      const tracker = yield* Tracker
      const request = (id: number, port: number, left: number) =>
        ({ infoHash: filled(7), peerId: peerId(id), port, uploaded: 0, downloaded: 0, left })
      const a = yield* tracker.announce(server.url, { ...request(1, 7001, 100), event: "started" })
      expect(a).toMatchObject({ peers: [], interval: 30, complete: 0, incomplete: 1 })
      const b = yield* tracker.announce(server.url, request(2, 7002, 0))
      expect(b).toMatchObject({ peers: [{ host: "127.0.0.1", port: 7001 }], complete: 1, incomplete: 1 })
      const again = yield* tracker.announce(server.url, request(1, 7001, 50))
      expect(again.peers).toEqual([{ host: "127.0.0.1", port: 7002 }])
      const c = yield* tracker.announce(server.url, request(3, 7003, 0))
      expect(c).toMatchObject({ peers: [{ host: "127.0.0.1", port: 7001 }], complete: 2, incomplete: 1 })
      // The same peer id from another port is still the announcer.
      const moved = yield* tracker.announce(server.url, request(1, 7004, 50))
      expect(moved.peers.map(formatPeer).sort()).toEqual(["127.0.0.1:7002", "127.0.0.1:7003"])
      const refused = yield* Effect.flip(tracker.announce(server.url, request(1, 0, 0)))
      expect(refused).toMatchObject({ _tag: "TrackerError", reason: "Failure" })
      expect(refused.message).toMatch(/malformed port/)
    }))

  it.scoped("binary info hashes covering all 256 byte values round trip (announce and scrape)", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer()
      const hashes = Array.from({ length: 13 }, (_, h) => Uint8Array.from({ length: 20 }, (_, i) => (h * 20 + i) % 256))
      for (const [h, infoHash] of hashes.entries()) {
        yield* announceRaw(server, { infoHash, peerId: peerId(1), port: 9000 + h, left: 5 })
      }
      for (const [h, infoHash] of hashes.entries()) {
        const seen = yield* announceRaw(server, { infoHash, peerId: peerId(2), port: 9999, left: 5 })
        expect(peersOf(seen)).toEqual([`127.0.0.1:${9000 + h}`])
      }
      // Lowercase escapes name the same swarm.
      const lower = query({ infoHash: hashes[12]!, peerId: peerId(3), port: 9998, left: 1 }).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())
      expect(peersOf((yield* get(`${server.url}?${lower}`)).body)).toEqual(["127.0.0.1:9012", "127.0.0.1:9999"])
      const scrape = yield* get(`${server.scrapeUrl}?${hashes.map((h) => `info_hash=${percentEncodeBytes(h)}`).join("&")}`)
      const files = Bencode.get(scrape.body, "files") as Bencode.BencodeDict
      expect([...files.keys()].sort()).toEqual(hashes.map(Bencode.bytesToKey).sort())
      const last = files.get(Bencode.bytesToKey(hashes[12]!)) as Bencode.BencodeDict
      expect([num(last, "complete"), num(last, "incomplete"), num(last, "downloaded")]).toEqual([0, 3, 0])
    }))

  it.scoped("compact answers (peers, peers6) and dictionary answers (ip, peer id, port); the ip parameter", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer()
      const infoHash = filled(0xee)
      const binaryId = Uint8Array.from({ length: 20 }, (_, i) => 255 - i)
      yield* announceRaw(server, { infoHash, peerId: binaryId, port: 6001, left: 1 })
      yield* announceRaw(server, { infoHash, peerId: peerId(2), port: 6002, left: 1, extra: "ip=%3A%3A1" })
      yield* announceRaw(server, { infoHash, peerId: peerId(3), port: 6003, left: 1, extra: "ip=::ffff:10.0.0.1" })
      yield* announceRaw(server, { infoHash, peerId: peerId(4), port: 6004, left: 1, extra: "ip=not-an-ip" })

      const compact = yield* announceRaw(server, { infoHash, peerId: peerId(9), port: 6009, left: 1 })
      expect(peersOf(compact)).toEqual(["10.0.0.1:6003", "127.0.0.1:6001", "127.0.0.1:6004"])
      expect(Bencode.get(compact, "peers6")).toEqual(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 6002 >> 8, 6002 & 255))
      expect([num(compact, "complete"), num(compact, "incomplete"), num(compact, "interval")]).toEqual([0, 5, 60])

      const dictionary = yield* announceRaw(server, { infoHash, peerId: peerId(9), port: 6009, left: 1, extra: "compact=0" })
      const list = (Bencode.get(dictionary, "peers") as Bencode.BencodeList).map((p) => {
        const d = p as Bencode.BencodeDict
        return { ip: Bencode.toText(Bencode.get(d, "ip") as Uint8Array), port: num(d, "port"), id: Bencode.get(d, "peer id") }
      })
      expect(list.sort((x, y) => x.port - y.port)).toEqual([
        { ip: "127.0.0.1", port: 6001, id: binaryId },
        { ip: "::1", port: 6002, id: peerId(2) },
        { ip: "10.0.0.1", port: 6003, id: peerId(3) },
        { ip: "127.0.0.1", port: 6004, id: peerId(4) }
      ])
      expect(Bencode.get(dictionary, "peers6")).toBeUndefined()
    }))

  it.scoped("numwant: 50 by default, at most 200, 0 for none", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer()
      const infoHash = filled(3)
      yield* Effect.forEach(
        Array.from({ length: 205 }, (_, i) => i),
        (i) => announceRaw(server, { infoHash, peerId: peerId(i), port: 10_000 + i, left: 1 }),
        { concurrency: 8, discard: true }
      )
      const count = (extra?: string) =>
        Effect.map(
          announceRaw(server, { infoHash, peerId: filled(0x7a), port: 20_000, left: 1, ...(extra !== undefined ? { extra } : {}) }),
          (d) => new Set(peersOf(d)).size
        )
      expect(yield* count()).toBe(50)
      expect(yield* count("numwant=3")).toBe(3)
      expect(yield* count("numwant=1000")).toBe(200)
      expect(yield* count("numwant=0")).toBe(0)
      expect(yield* count("numwant=abc")).toBe(50)
    }))

  it.scoped("event=stopped removes the peer; event=completed counts as downloaded", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer()
      const infoHash = filled(4)
      yield* announceRaw(server, { infoHash, peerId: peerId(1), port: 7001, left: 10 })
      yield* announceRaw(server, { infoHash, peerId: peerId(2), port: 7002, left: 10 })
      const stopped = yield* announceRaw(server, { infoHash, peerId: peerId(1), port: 7001, left: 10, extra: "event=stopped" })
      expect(peersOf(stopped)).toEqual([])
      expect(num(stopped, "incomplete")).toBe(1)
      const done = yield* announceRaw(server, { infoHash, peerId: peerId(2), port: 7002, left: 0, extra: "event=completed" })
      expect([num(done, "complete"), num(done, "incomplete")]).toEqual([1, 0])
      expect(peersOf(done)).toEqual([])
      const files = Bencode.get((yield* get(server.scrapeUrl)).body, "files") as Bencode.BencodeDict
      expect(num(files.get(Bencode.bytesToKey(infoHash)) as Bencode.BencodeDict, "downloaded")).toBe(1)
    }))

  it.scoped("peers silent for two intervals expire: at once from answers, from memory at the next sweep (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer({ interval: 600 })
      const swarm = filled(5)
      const lonely = filled(6)
      yield* announceRaw(server, { infoHash: swarm, peerId: peerId(1), port: 7001, left: 10 })
      yield* announceRaw(server, { infoHash: lonely, peerId: peerId(1), port: 7001, left: 10 })
      const scraped = Effect.map(get(server.scrapeUrl), (r) => [...(Bencode.get(r.body, "files") as Bencode.BencodeDict).keys()])

      yield* TestClock.adjust("1199 seconds")
      const fresh = yield* announceRaw(server, { infoHash: swarm, peerId: peerId(2), port: 7002, left: 10 })
      expect(peersOf(fresh)).toEqual(["127.0.0.1:7001"])
      expect(yield* scraped).toHaveLength(2)

      yield* TestClock.adjust("1 second") // 1200 s: peer 1 is two intervals old, and the sweep at 1200 s runs
      const later = yield* announceRaw(server, { infoHash: swarm, peerId: peerId(2), port: 7002, left: 10 })
      expect(peersOf(later)).toEqual([])
      expect(num(later, "incomplete")).toBe(1)
      expect(yield* scraped).toEqual([Bencode.bytesToKey(swarm)])
    }))

  it.scoped("a short interval still keeps a silent peer ten minutes, as clients announce at most every five (TestClock)", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer({ interval: 5 })
      const swarm = filled(7)
      yield* announceRaw(server, { infoHash: swarm, peerId: peerId(1), port: 7001, left: 0 })
      yield* TestClock.adjust("599 seconds")
      const kept = yield* announceRaw(server, { infoHash: swarm, peerId: peerId(2), port: 7002, left: 10 })
      expect(peersOf(kept)).toEqual(["127.0.0.1:7001"])
      yield* TestClock.adjust("1 second")
      const later = yield* announceRaw(server, { infoHash: swarm, peerId: peerId(3), port: 7003, left: 10 })
      expect(peersOf(later)).toEqual(["127.0.0.1:7002"])
    }))

  it.scoped("bad requests get a bencoded failure reason with HTTP 200; unknown paths a 404", () =>
    Effect.gen(function* () {
      const server = yield* makeTrackerServer()
      const id = `peer_id=${percentEncodeBytes(peerId(1))}`
      const cases: ReadonlyArray<readonly [string, RegExp]> = [
        ["", /^missing info_hash$/],
        [`info_hash=abc&${id}&port=1`, /^malformed info_hash/],
        [`info_hash=${percentEncodeBytes(filled(1))}&${id}`, /^missing port$/],
        [`info_hash=${percentEncodeBytes(filled(1))}&${id}&port=70000`, /^malformed port/]
      ]
      for (const [q, reason] of cases) {
        const r = yield* get(`${server.url}?${q}`)
        expect(r.status).toBe(200)
        expect(failure(r.body)).toMatch(reason)
      }
      expect(failure((yield* get(`${server.scrapeUrl}?info_hash=%00`)).body)).toMatch(/^malformed info_hash/)
      const client = yield* HttpClient.HttpClient
      expect((yield* client.get(server.url.replace("/announce", "/nope"))).status).toBe(404)
    }))

  it.scoped("as a layer, and with typed errors for a busy port and a bad interval", () =>
    Effect.gen(function* () {
      // The layer's server lives while the effect it is provided to runs.
      const busy = yield* Effect.gen(function* () {
        const first = yield* TrackerServer
        expect(first.scrapeUrl).toBe(`http://127.0.0.1:${first.port}/scrape`)
        return yield* Effect.flip(makeTrackerServer({ port: first.port }))
      }).pipe(Effect.provide(TrackerServer.layer({ host: "127.0.0.1" })))
      expect(busy).toMatchObject({ _tag: "TrackerServerError", reason: "Listen" })
      expect(busy.message).toContain("the port is in use")
      const bad = yield* Effect.flip(makeTrackerServer({ interval: 0 }))
      expect(bad).toMatchObject({ reason: "InvalidOption" })
    }))
})
