import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import * as Krpc from "../../src/domain/Krpc.js"

const id = fc.uint8Array({ minLength: 20, maxLength: 20 })
const transaction = fc.uint8Array({ minLength: 1, maxLength: 4 })
const ipv4Peer = fc.record({
  host: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join(".")),
  port: fc.integer({ min: 1, max: 65535 })
})
const node = fc.record({ id, address: ipv4Peer })

const query: fc.Arbitrary<Krpc.KrpcQuery> = fc.oneof(
  id.map((id) => ({ method: "ping" as const, id })),
  fc.record({ id, target: id }).map((q) => ({ method: "find_node" as const, ...q })),
  fc.record({ id, infoHash: id }).map((q) => ({ method: "get_peers" as const, ...q })),
  fc.record({
    id,
    infoHash: id,
    port: fc.integer({ min: 1, max: 65535 }),
    token: fc.uint8Array({ minLength: 1, maxLength: 20 }),
    impliedPort: fc.boolean()
  }).map((q) => ({ method: "announce_peer" as const, ...q }))
)

const response: fc.Arbitrary<Krpc.KrpcResponse> = fc.record(
  {
    id,
    nodes: fc.array(node, { maxLength: Krpc.maxNodes }),
    values: fc.array(ipv4Peer, { maxLength: Krpc.maxValues }),
    token: fc.uint8Array({ minLength: 1, maxLength: 20 })
  },
  { requiredKeys: ["id"] }
)

const message: fc.Arbitrary<Krpc.KrpcMessage> = fc.oneof(
  fc.record({ transaction, query }).map((m) => ({ _tag: "Query" as const, ...m })),
  fc.record({ transaction, response }).map((m) => ({ _tag: "Response" as const, ...m })),
  fc.record({ transaction, code: fc.constantFrom(201, 202, 203, 204), text: fc.string({ maxLength: 40 }) })
    .map((m) => ({ _tag: "Error" as const, ...m }))
)

const decodeErr = (bytes: Uint8Array): Krpc.KrpcError =>
  Either.getOrThrowWith(Either.flip(Krpc.decodeMessage(bytes)), () => new Error("decoded"))

const b = (text: string) => new TextEncoder().encode(text)
const id20 = "a".repeat(20)

describe("Krpc", () => {
  it("round-trips every message it encodes", () =>
    fc.assert(fc.property(message, (m) => {
      const bytes = Krpc.encodeMessage(m)
      // Mostly within one datagram; the bound is what the decoder checks first.
      fc.pre(bytes.length <= Krpc.maxPacketBytes)
      expect(Krpc.decodeMessage(bytes)).toEqual(Either.right(m))
    })))

  it("encodes a ping as BEP 5 shows it", () => {
    const ping = Krpc.encodeMessage({ _tag: "Query", transaction: b("aa"), query: { method: "ping", id: b("abcdefghij0123456789") } })
    expect(new TextDecoder().decode(ping)).toBe("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
  })

  it("compact node info is 26 bytes a node and round-trips", () =>
    fc.assert(fc.property(fc.array(node, { maxLength: 16 }), (nodes) => {
      const bytes = Krpc.encodeNodes(nodes)
      expect(bytes.length).toBe(26 * nodes.length)
      expect(Krpc.decodeNodes(bytes, 16)).toEqual(Either.right(nodes))
    })))

  it("rejects whatever is not a KRPC message with a typed error, never a throw", () =>
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const decoded = Krpc.decodeMessage(bytes)
      if (Either.isLeft(decoded)) expect(decoded.left).toBeInstanceOf(Krpc.KrpcError)
    })))

  it("survives every truncation and bit flip of a valid message", () =>
    fc.assert(fc.property(message, fc.nat(), fc.nat(255), (m, at, flip) => {
      const bytes = Krpc.encodeMessage(m)
      const cut = bytes.subarray(0, at % bytes.length)
      expect(Either.isLeft(Krpc.decodeMessage(cut))).toBe(true)
      const flipped = bytes.slice()
      flipped[at % bytes.length] ^= flip
      const decoded = Krpc.decodeMessage(flipped)
      if (Either.isLeft(decoded)) expect(decoded.left._tag).toBe("KrpcError")
    })))

  it.each([
    ["d1:t2:aa1:y1:qe", "MissingField"],
    ["d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", "BadField"],
    [`d1:ad2:id20:${id20}e1:q4:nope1:t2:aa1:y1:qe`, "UnknownMethod"],
    [`d1:ad2:id20:${id20}9:info_hash20:${id20}4:porti0e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe`, "BadField"],
    [`d1:rd2:id20:${id20}5:nodes3:abce1:t2:aa1:y1:re`, "BadField"],
    ["d1:t2:aa1:y1:xe", "BadField"],
    ["li1ee", "NotAMessage"],
    ["d1:t", "Bencode"]
  ])("rejects %s as %s", (text, reason) => expect(decodeErr(b(text)).reason).toBe(reason))

  it("keeps the transaction of a bad query, so the error reply can name it", () => {
    const e = decodeErr(b(`d1:ad2:id20:${id20}e1:q4:nope1:t2:xy1:y1:qe`))
    expect(e.transaction).toEqual(b("xy"))
  })

  it("rejects huge packets, too many values and too many nodes as TooLarge", () => {
    expect(decodeErr(new Uint8Array(Krpc.maxPacketBytes + 1).fill(0x64)).reason).toBe("TooLarge")
    const values = Array.from({ length: Krpc.maxValues + 1 }, () => new Uint8Array(6))
    const tooMany = Bencode.encode(Bencode.dict({ t: b("aa"), y: b("r"), r: Bencode.dict({ id: b(id20), values }) }))
    expect(decodeErr(tooMany).reason).toBe("TooLarge")
    const nodes = new Uint8Array(26 * (Krpc.maxNodes + 1))
    const tooManyNodes = Bencode.encode(Bencode.dict({ t: b("aa"), y: b("r"), r: Bencode.dict({ id: b(id20), nodes }) }))
    expect(decodeErr(tooManyNodes).reason).toBe("TooLarge")
  })

  it("accepts announce_peer with implied_port and no usable port", () => {
    const bytes = b(`d1:ad2:id20:${id20}12:implied_porti1e9:info_hash20:${id20}5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe`)
    const m = Either.getOrThrow(Krpc.decodeMessage(bytes))
    expect(m._tag === "Query" && m.query.method === "announce_peer" && m.query.impliedPort).toBe(true)
  })
})
