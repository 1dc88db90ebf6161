import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { formatPeer, type PeerAddress } from "../../src/domain/Peer.js"
import {
  decodePex,
  encodePex,
  isEmptyPex,
  maxPexAdded,
  maxPexDecoded,
  type PexError,
  type PexMessage,
  type PexPeers,
  PexFlag,
  pexDiff,
  pexHints,
  pexPeers
} from "../../src/domain/Pex.js"
import { formatIpv6 } from "../../src/domain/TrackerResponse.js"

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))
const leftOf = <A>(e: Either.Either<A, PexError>): PexError => {
  if (Either.isRight(e)) throw new Error(`expected a failure, got ${JSON.stringify(e.right)}`)
  return e.left
}
const rightOf = <A>(e: Either.Either<A, PexError>): A => {
  if (Either.isLeft(e)) throw new Error(`expected a success, got ${e.left.message}`)
  return e.right
}

const ipv4Arb = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join("."))
const ipv6Arb = fc.uint8Array({ minLength: 16, maxLength: 16 })
  // IPv4-mapped addresses travel as IPv4: they do not round-trip as IPv6 text.
  .filter((b) => !(b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff))
  .map((b) => formatIpv6(b))
const addressArb: fc.Arbitrary<PeerAddress> = fc.record({ host: fc.oneof(ipv4Arb, ipv6Arb), port: fc.integer({ min: 1, max: 65535 }) })
const peerArb = fc.record({ address: addressArb, flags: fc.nat(255) })
const uniquePeers = (maxLength: number) => fc.uniqueArray(peerArb, { selector: (p) => formatPeer(p.address), maxLength })

/** The order the codec gives back: IPv4 entries before IPv6 ones. */
const byFamily = <A>(items: ReadonlyArray<A>, address: (a: A) => PeerAddress) => [
  ...items.filter((a) => !address(a).host.includes(":")),
  ...items.filter((a) => address(a).host.includes(":"))
]

describe("ut_pex codec", () => {
  it.prop("round-trips added (with flags) and dropped, IPv4 and IPv6", [uniquePeers(60), fc.array(addressArb, { maxLength: 60 })], ([added, dropped]) => {
    const decoded = rightOf(decodePex(encodePex({ added, dropped })))
    expect(decoded.added).toEqual(byFamily(added, (p) => p.address))
    expect(decoded.dropped).toEqual(byFamily(dropped, (a) => a))
  })

  it("decodes a libtorrent-style message and ignores keys it does not know", () => {
    const m = rightOf(decodePex(bytes("d5:added12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x507:added.f2:\x12\x00" +
      "7:dropped6:\x7f\x00\x00\x03\x1a\xe29:somethingi7ee")))
    expect(m).toEqual({
      added: [
        { address: { host: "127.0.0.1", port: 6881 }, flags: PexFlag.Seed | PexFlag.Reachable },
        { address: { host: "10.0.0.2", port: 80 }, flags: 0 }
      ],
      dropped: [{ host: "127.0.0.3", port: 6882 }]
    })
  })

  it("takes a message without added.f as peers without flags, and an empty dictionary as nothing", () => {
    expect(rightOf(decodePex(bytes("d5:added6:\x7f\x00\x00\x01\x1a\xe1e"))).added).toEqual([{ address: { host: "127.0.0.1", port: 6881 }, flags: 0 }])
    expect(isEmptyPex(rightOf(decodePex(bytes("de"))))).toBe(true)
  })

  it("drops entries with port 0", () => {
    expect(rightOf(decodePex(bytes("d5:added6:\x7f\x00\x00\x01\x00\x00e"))).added).toEqual([])
  })

  it.each([
    { name: "a compact list of 5 bytes", payload: "d5:added5:\x7f\x00\x00\x01\x1ae", reason: "BadLength" },
    { name: "dropped6 of 17 bytes", payload: `d8:dropped617:${"\x00".repeat(17)}e`, reason: "BadLength" },
    { name: "added.f shorter than added", payload: "d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.f0:e", reason: "BadLength" },
    { name: "added as an integer", payload: "d5:addedi1ee", reason: "Malformed" },
    { name: "added.f as a list", payload: "d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.fleee", reason: "Malformed" },
    { name: "a list", payload: "le", reason: "Malformed" },
    { name: "not bencode", payload: "d5:added", reason: "Malformed" }
  ])("rejects $name ($reason)", ({ payload, reason }) => {
    expect(leftOf(decodePex(bytes(payload))).reason).toBe(reason)
  })

  it.prop("never throws on arbitrary bytes", [fc.uint8Array({ maxLength: 64 })], ([b]) => {
    const r = decodePex(b)
    if (Either.isLeft(r)) expect(["Malformed", "BadLength"]).toContain(r.left.reason)
  })

  it("reads at most maxPexDecoded entries of a list", () => {
    const many = new Uint8Array(6 * (maxPexDecoded + 100)).map((_, i) => (i % 6 === 5 ? 1 : i % 6 === 0 ? 10 : 0))
    const payload = Bencode.encode(Bencode.dict({ added: many }))
    expect(rightOf(decodePex(payload)).added.length).toBe(maxPexDecoded)
  })
})

const peersArb = (maxLength: number) => uniquePeers(maxLength).map((ps) => pexPeers(ps))
const keysOf = (addresses: ReadonlyArray<PeerAddress>) => addresses.map(formatPeer)

describe("pexDiff", () => {
  it.prop("never lists a peer both added and dropped, and adds at most 50", [peersArb(120), peersArb(120)], ([sent, connected]) => {
    const { message } = pexDiff(sent, connected)
    const dropped = new Set(keysOf(message.dropped))
    expect(message.added.length).toBeLessThanOrEqual(maxPexAdded)
    for (const p of message.added) expect(dropped.has(formatPeer(p.address))).toBe(false)
    for (const key of dropped) expect(connected.has(key)).toBe(false)
  })

  it.prop("repeated diffs reach the connected set, then say nothing", [peersArb(200), peersArb(200)], ([start, connected]) => {
    let sent: PexPeers = start
    let rounds = 0
    let last: PexMessage
    do {
      const diff = pexDiff(sent, connected)
      last = diff.message
      sent = diff.sent
      rounds++
    } while (!isEmptyPex(last) && rounds < 10)
    expect(isEmptyPex(last)).toBe(true)
    expect(new Map(sent)).toEqual(new Map(connected))
    // 50 added a message (the first also drops what is gone), then the empty one.
    expect(rounds).toBeLessThanOrEqual(Math.max(1, Math.ceil(connected.size / maxPexAdded)) + 1)
  })

  it("adds a peer again when its flags change (it became a seed)", () => {
    const a = { address: { host: "127.0.0.5", port: 6881 }, flags: 0 }
    const { message } = pexDiff(pexPeers([a]), pexPeers([{ ...a, flags: PexFlag.Seed }]))
    expect(message).toEqual({ added: [{ ...a, flags: PexFlag.Seed }], dropped: [] })
  })
})

describe("pexHints", () => {
  it("reads the encryption, seed and uTP bits of a libtorrent entry", () => {
    expect(pexHints(PexFlag.PrefersEncryption | PexFlag.Reachable)).toEqual({ encryption: true, utp: false, seed: false })
    expect(pexHints(PexFlag.Seed | PexFlag.SupportsUtp | PexFlag.SupportsHolepunch)).toEqual({ encryption: false, utp: true, seed: true })
    expect(pexHints(0)).toEqual({ encryption: false, utp: false, seed: false })
  })

  it.prop("each hint is its bit, whatever the other bits (unknown ones too)", [fc.nat(255)], ([flags]) => {
    expect(pexHints(flags)).toEqual({
      encryption: (flags & 0x01) !== 0,
      seed: (flags & 0x02) !== 0,
      utp: (flags & 0x04) !== 0
    })
    expect(pexHints(flags)).toEqual(pexHints(flags & ~(PexFlag.SupportsHolepunch | PexFlag.Reachable | 0xe0)))
  })

  it.prop("survives the codec: the hints of what is decoded are those of what was sent", [uniquePeers(60)], ([added]) => {
    const decoded = rightOf(decodePex(encodePex({ added, dropped: [] })))
    const sent = new Map(added.map((p) => [formatPeer(p.address), pexHints(p.flags)]))
    for (const p of decoded.added) expect(pexHints(p.flags)).toEqual(sent.get(formatPeer(p.address)))
  })
})
