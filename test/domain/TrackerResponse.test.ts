import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import {
  type AnnounceRequest,
  announceUrl,
  decodeUdpResponse,
  encodeUdpAnnounce,
  encodeUdpConnect,
  formatIpv6,
  parseHttpResponse,
  parseUdpUrl,
  percentEncodeBytes,
  type TrackerBodyError,
  udpTransactionId
} from "../../src/domain/TrackerResponse.js"
import { fixturesDir } from "../support/cli.js"
import { compactPeers, rawQueryBytes } from "../support/FakeTracker.js"

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
const body = (entries: Record<string, Bencode.Bencode | undefined>) => Bencode.encode(Bencode.dict(entries))
const parsed = (bytes: Uint8Array) => Either.getOrThrow(parseHttpResponse(bytes))
const parseError = (bytes: Uint8Array): TrackerBodyError =>
  Either.getOrThrowWith(Either.flip(parseHttpResponse(bytes)), () => new Error("parsed"))

const request: AnnounceRequest = {
  infoHash: Uint8Array.from({ length: 20 }, (_, i) => i * 13),
  peerId: ascii("-EB0010-abcdefghijkl"),
  port: 6881,
  uploaded: 1,
  downloaded: 2,
  left: 92063
}

describe("percentEncodeBytes", () => {
  it("keeps exactly the unreserved characters and writes every other byte as %XX", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    const encoded = percentEncodeBytes(all)
    expect(rawQueryBytes(`x=${encoded}`, "x")).toEqual(all)
    const kept = [...all].filter((b) => /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)))
    expect(encoded.replace(/%[0-9A-F]{2}/g, "")).toBe(String.fromCharCode(...kept))
    expect(encoded.match(/%/g)?.length).toBe(256 - kept.length)
  })

  it.prop("round-trips any 20 bytes", [fc.uint8Array({ minLength: 20, maxLength: 20 })], ([bytes]) => {
    expect(rawQueryBytes(`h=${percentEncodeBytes(bytes)}`, "h")).toEqual(bytes)
  })
})

describe("announceUrl", () => {
  it("builds the query by hand with compact=1, optional numwant and event", () => {
    const url = announceUrl("http://t.example/announce", { ...request, numWant: 50, event: "started" })
    const [base, query] = url.split("?")
    expect(base).toBe("http://t.example/announce")
    expect(query!.split("&").map((p) => p.split("=")[0])).toEqual([
      "info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "compact", "numwant", "event"
    ])
    expect(query).toContain("&port=6881&uploaded=1&downloaded=2&left=92063&compact=1&numwant=50&event=started")
    expect(rawQueryBytes(query!, "info_hash")).toEqual(request.infoHash)
    expect(rawQueryBytes(query!, "peer_id")).toEqual(request.peerId)
    expect(announceUrl("http://t/a", request)).not.toMatch(/numwant|event/)
  })

  it("appends to an announce URL that already has a query", () => {
    expect(announceUrl("http://t/a?passkey=xyz", request)).toMatch(/^http:\/\/t\/a\?passkey=xyz&info_hash=/)
    expect(announceUrl("http://t/a?", request)).toMatch(/^http:\/\/t\/a\?info_hash=/)
    expect(announceUrl("http://t/a?k=1&", request)).toMatch(/^http:\/\/t\/a\?k=1&info_hash=/)
  })
})

describe("parseHttpResponse", () => {
  it("reads the challenge's canned compact response", () => {
    const fixture = new Uint8Array(readFileSync(path.join(fixturesDir, "tester-tracker-responses/response.txt")))
    const r = parsed(fixture)
    expect(r.interval).toBe(1800)
    expect(r.minInterval).toBe(1800)
    expect(r.complete).toBe(8)
    expect(r.incomplete).toBe(1)
    expect(r.peers.length).toBe(9)
    expect(r.peers[0]).toEqual({ host: "188.119.61.177", port: 6881 })
    expect(r.peers[8]).toEqual({ host: "216.195.129.27", port: 60000 })
  })

  it("reads dictionary peers (IPv4, IPv6 and host names as given)", () => {
    const r = parsed(body({
      interval: 60n,
      peers: [
        Bencode.dict({ ip: ascii("10.0.0.1"), "peer id": new Uint8Array(20), port: 51413n }),
        Bencode.dict({ ip: ascii("2001:db8::1"), port: 6881n }),
        Bencode.dict({ ip: ascii("peer.example"), port: 1n })
      ]
    }))
    expect(r.peers).toEqual([
      { host: "10.0.0.1", port: 51413 },
      { host: "2001:db8::1", port: 6881 },
      { host: "peer.example", port: 1 }
    ])
    expect(r.interval).toBe(60)
  })

  it("reads peers6 (18 bytes each) after the IPv4 peers", () => {
    const six = new Uint8Array(36)
    six.set([0x20, 0x01, 0x0d, 0xb8], 0)
    six[15] = 1
    six.set([0x1a, 0xe1], 16) // 6881
    six[18 + 15] = 1 // ::1
    six.set([0xc3, 0x50], 34) // 50000
    const r = parsed(body({ interval: 900n, peers: compactPeers([{ host: "127.0.0.1", port: 1 }]), peers6: six }))
    expect(r.peers).toEqual([
      { host: "127.0.0.1", port: 1 },
      { host: "2001:db8::1", port: 6881 },
      { host: "::1", port: 50000 }
    ])
  })

  it("drops port-0 and duplicate peers, in either list form", () => {
    const peers = compactPeers([
      { host: "1.2.3.4", port: 80 },
      { host: "1.2.3.4", port: 0 },
      { host: "1.2.3.4", port: 80 },
      { host: "1.2.3.4", port: 81 }
    ])
    expect(parsed(body({ interval: 1n, peers })).peers).toEqual([{ host: "1.2.3.4", port: 80 }, { host: "1.2.3.4", port: 81 }])
    const dicts = [Bencode.dict({ ip: ascii("::1"), port: 0n }), Bencode.dict({ ip: ascii("::1"), port: 5n }), Bencode.dict({ ip: ascii("::1"), port: 5n })]
    expect(parsed(body({ interval: 1n, peers: dicts })).peers).toEqual([{ host: "::1", port: 5 }])
  })

  it("returns the warning message and tolerates an empty or missing peer list", () => {
    const r = parsed(body({ interval: 30n, "warning message": ascii("slow down") }))
    expect(r).toEqual({ peers: [], interval: 30, warning: "slow down" })
    expect(parsed(body({ peers: new Uint8Array(0) })).interval).toBe(1800)
  })

  it("turns a failure reason into a Failure with the tracker's text", () => {
    const e = parseError(body({ "failure reason": ascii("unregistered torrent"), interval: 5n }))
    expect(e.reason).toBe("Failure")
    expect(e.detail).toBe("unregistered torrent")
  })

  it("rejects garbage and truncated bodies as Malformed, naming the offset", () => {
    const garbage = parseError(ascii("<html>502 Bad Gateway</html>"))
    expect(garbage.reason).toBe("Malformed")
    expect(garbage.detail).toMatch(/at byte 0/)
    const full = body({ interval: 1800n, peers: compactPeers([{ host: "1.2.3.4", port: 5 }, { host: "5.6.7.8", port: 9 }]) })
    const truncated = parseError(full.subarray(0, full.length - 4))
    expect(truncated.reason).toBe("Malformed")
    expect(truncated.detail).toMatch(/at byte \d+/)
    expect(parseError(ascii("li1ee")).detail).toMatch(/not a bencoded dictionary/)
    expect(parseError(ascii("")).reason).toBe("Malformed")
  })

  it("rejects compact lists of the wrong size and bad field types", () => {
    expect(parseError(body({ interval: 1n, peers: new Uint8Array(7) })).detail).toMatch(/not a multiple of 6/)
    expect(parseError(body({ interval: 1n, peers6: new Uint8Array(6) })).detail).toMatch(/not a multiple of 18/)
    expect(parseError(body({ interval: ascii("soon") })).detail).toMatch(/'interval'/)
    expect(parseError(body({ peers: [ascii("x")] })).detail).toMatch(/peer 0/)
  })
})

describe("formatIpv6", () => {
  it("writes RFC 5952 text", () => {
    const bytes = (groups: ReadonlyArray<number>) => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]))
    expect(formatIpv6(bytes([0, 0, 0, 0, 0, 0, 0, 0]))).toBe("::")
    expect(formatIpv6(bytes([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe("2001:db8::1:0:0:1")
    expect(formatIpv6(bytes([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]))).toBe("2001:db8:0:1:1:1:1:1")
    expect(formatIpv6(bytes([1, 0, 0, 0, 0, 0, 0, 0]))).toBe("1::")
  })

  it.prop("matches the WHATWG URL serialiser", [fc.uint8Array({ minLength: 16, maxLength: 16 })], ([bytes]) => {
    const text = formatIpv6(bytes)
    // IPv4-mapped forms are written by URL as hex too, so every address compares.
    expect(new URL(`http://[${text}]/`).hostname).toBe(`[${text}]`)
  })
})

describe("UDP packets", () => {
  it("parses udp:// URLs", () => {
    expect(parseUdpUrl("udp://tracker.example:6969/announce")).toEqual({ host: "tracker.example", port: 6969, urlData: "/announce" })
    expect(parseUdpUrl("udp://[::1]:80")).toEqual({ host: "::1", port: 80, urlData: "" })
    expect(parseUdpUrl("udp://1.2.3.4:1/a?b=c")).toEqual({ host: "1.2.3.4", port: 1, urlData: "/a?b=c" })
    expect(parseUdpUrl("udp://no-port/announce")).toBeUndefined()
    expect(parseUdpUrl("http://x:1/")).toBeUndefined()
  })

  it("encodes a connect request", () => {
    expect(Buffer.from(encodeUdpConnect(0xdeadbeef)).toString("hex")).toBe("0000041727101980" + "00000000" + "deadbeef")
  })

  it("encodes an announce request field by field, then BEP 41 URL data", () => {
    const packet = encodeUdpAnnounce({
      connectionId: 0x0102030405060708n,
      transactionId: 0xfffffffe,
      key: 77,
      request: { ...request, uploaded: 3, downloaded: 2 ** 40, left: 5, event: "started" },
      urlData: "/announce"
    })
    const view = new DataView(packet.buffer)
    expect(view.getBigUint64(0)).toBe(0x0102030405060708n)
    expect(view.getUint32(8)).toBe(1)
    expect(view.getUint32(12)).toBe(0xfffffffe)
    expect(packet.subarray(16, 36)).toEqual(request.infoHash)
    expect(packet.subarray(36, 56)).toEqual(request.peerId)
    expect(view.getBigUint64(56)).toBe(2n ** 40n)
    expect(view.getBigUint64(64)).toBe(5n)
    expect(view.getBigUint64(72)).toBe(3n)
    expect(view.getUint32(80)).toBe(2) // started
    expect(view.getUint32(84)).toBe(0)
    expect(view.getUint32(88)).toBe(77)
    expect(view.getInt32(92)).toBe(-1)
    expect(view.getUint16(96)).toBe(6881)
    expect([...packet.subarray(98)]).toEqual([2, 9, ...ascii("/announce"), 0])
    const plain = encodeUdpAnnounce({ connectionId: 1n, transactionId: 1, key: 1, request: { ...request, numWant: 30, event: "stopped" }, urlData: "" })
    expect(plain.length).toBe(98)
    expect(new DataView(plain.buffer).getUint32(80)).toBe(3)
    expect(new DataView(plain.buffer).getInt32(92)).toBe(30)
  })

  it("splits URL data longer than 255 bytes into several options", () => {
    const long = `/${"a".repeat(299)}`
    const packet = encodeUdpAnnounce({ connectionId: 1n, transactionId: 1, key: 1, request, urlData: long })
    expect(packet.length).toBe(98 + 2 + 255 + 2 + 45 + 1)
    expect([packet[98], packet[99], packet[98 + 2 + 255], packet[98 + 2 + 255 + 1], packet.at(-1)]).toEqual([2, 255, 2, 45, 0])
  })

  const response = (action: number, transactionId: number, rest: ReadonlyArray<number>) => {
    const out = new Uint8Array(8 + rest.length)
    new DataView(out.buffer).setUint32(0, action)
    new DataView(out.buffer).setUint32(4, transactionId)
    out.set(rest, 8)
    return out
  }

  it("decodes connect, announce and error responses", () => {
    const connect = response(0, 7, [0, 0, 0, 0, 0, 0, 1, 2])
    expect(udpTransactionId(connect)).toBe(7)
    expect(Either.getOrThrow(decodeUdpResponse(connect, 4))).toEqual({ _tag: "Connect", transactionId: 7, connectionId: 0x102n })
    const announce = response(1, 9, [0, 0, 7, 8, 0, 0, 0, 2, 0, 0, 0, 3, ...compactPeers([{ host: "127.0.0.1", port: 6881 }]), 1, 2, 3])
    expect(Either.getOrThrow(decodeUdpResponse(announce, 4))).toEqual({
      _tag: "Announce",
      transactionId: 9,
      response: { peers: [{ host: "127.0.0.1", port: 6881 }], interval: 1800, incomplete: 2, complete: 3 }
    })
    const error = response(3, 1, [...ascii("torrent not registered")])
    expect(Either.getOrThrow(decodeUdpResponse(error, 4))).toEqual({ _tag: "Error", transactionId: 1, message: "torrent not registered" })
  })

  it("decodes 18-byte peers from an IPv6 tracker", () => {
    const peer = new Uint8Array(18)
    peer[15] = 1
    peer[17] = 80
    const announce = response(1, 1, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, ...peer])
    const r = Either.getOrThrow(decodeUdpResponse(announce, 6))
    expect(r._tag === "Announce" && r.response.peers).toEqual([{ host: "::1", port: 80 }])
  })

  it("rejects short and unknown packets", () => {
    expect(udpTransactionId(new Uint8Array(7))).toBeUndefined()
    expect(Either.isLeft(decodeUdpResponse(new Uint8Array(7), 4))).toBe(true)
    expect(Either.isLeft(decodeUdpResponse(response(0, 1, [1, 2]), 4))).toBe(true)
    expect(Either.isLeft(decodeUdpResponse(response(1, 1, [0, 0]), 4))).toBe(true)
    expect(Either.isLeft(decodeUdpResponse(response(9, 1, []), 4))).toBe(true)
  })
})
