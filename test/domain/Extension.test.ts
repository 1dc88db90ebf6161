import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { createHash } from "node:crypto"
import * as Bencode from "../../src/domain/Bencode.js"
import { sha256 } from "../../src/domain/Merkle.js"
import { toHex } from "../../src/domain/Bytes.js"
import { formatIpv6 } from "../../src/domain/TrackerResponse.js"
import {
  compactIp,
  decodeExtendedHandshake,
  decodeMetadataMessage,
  encodeExtendedHandshake,
  encodeMetadataMessage,
  type ExtendedHandshake,
  type ExtensionError,
  MetadataAssembler,
  maxMetadataSize,
  metadataFetchHandshake,
  metadataPieceSize,
  ourUtPexId,
  peerExtensionId,
  peerUtMetadataId,
  utPexName
} from "../../src/domain/Extension.js"

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1")
const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))
const sha1 = (b: Uint8Array) => new Uint8Array(createHash("sha1").update(b).digest())

const leftOf = <A>(e: Either.Either<A, ExtensionError>): ExtensionError => {
  if (Either.isRight(e)) throw new Error(`expected a failure, got ${JSON.stringify(e.right)}`)
  return e.left
}
const rightOf = <A>(e: Either.Either<A, { readonly message: string }>): A => {
  if (Either.isLeft(e)) throw new Error(`expected a success, got ${e.left.message}`)
  return e.right
}

/** A decoder's failures: each named payload is Malformed, and arbitrary bytes never make it throw. */
const malformedCases = (
  decode: (payload: Uint8Array) => Either.Either<unknown, ExtensionError>,
  cases: ReadonlyArray<{ readonly name: string; readonly payload: string }>
) => {
  it.each(cases)("rejects $name as Malformed", ({ payload }) => {
    expect(leftOf(decode(bytes(payload))).reason).toBe("Malformed")
  })

  it.prop("never throws on arbitrary bytes", [fc.uint8Array({ maxLength: 64 })], ([b]) => {
    const r = decode(b)
    if (Either.isLeft(r)) expect(r.left.reason).toBe("Malformed")
  })
}

const handshakeArb: fc.Arbitrary<ExtendedHandshake> = fc.record(
  {
    m: fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 255 })), {
      selector: ([name]) => name,
      maxLength: 5
    }).map((entries) => new Map(entries)),
    metadataSize: fc.nat(),
    v: fc.string({ maxLength: 20 }),
    p: fc.integer({ min: 0, max: 65535 }),
    reqq: fc.nat(),
    yourip: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }))
  },
  { requiredKeys: ["m"] }
)

describe("extension handshake", () => {
  it("our metadata handshake is exactly d1:md11:ut_metadatai1eee", () => {
    expect(latin1(encodeExtendedHandshake(metadataFetchHandshake))).toBe("d1:md11:ut_metadatai1eee")
  })

  it("decodes a real aria2 handshake and ignores keys it does not know", () => {
    const h = rightOf(decodeExtendedHandshake(bytes("d1:md11:ut_metadatai9e6:ut_pexi0ee13:metadata_sizei1234e1:pi6881e4:reqqi250e1:v12:aria2/1.36.06:yourip4:\x7f\x00\x00\x01e")))
    expect(h).toEqual({
      m: new Map([["ut_metadata", 9], ["ut_pex", 0]]),
      metadataSize: 1234,
      p: 6881,
      reqq: 250,
      v: "aria2/1.36.0",
      yourip: new Uint8Array([127, 0, 0, 1])
    })
    expect(peerUtMetadataId(h)).toBe(9)
    expect(peerExtensionId(h, utPexName)).toBeUndefined() // offered with id 0: disabled
  })

  it("encodes a full handshake with every field, ut_pex under our reserved id", () => {
    const h: ExtendedHandshake = {
      m: new Map([["ut_metadata", 1], [utPexName, ourUtPexId]]),
      metadataSize: 5,
      v: "eb",
      p: 6881,
      reqq: 250,
      yourip: new Uint8Array([10, 0, 0, 2])
    }
    expect(latin1(encodeExtendedHandshake(h))).toBe(
      "d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei5e1:pi6881e4:reqqi250e1:v2:eb6:yourip4:\x0a\x00\x00\x02e"
    )
  })

  it.prop(
    "ignores a yourip that is not a 4 or 16 byte string",
    [handshakeArb, fc.oneof(fc.uint8Array({ maxLength: 20 }).filter((b) => b.length !== 4 && b.length !== 16).map((b) => b as Bencode.Bencode), fc.nat().map(Bencode.int))],
    ([h, yourip]) => {
      const { yourip: _, ...rest } = h
      const known = rightOf(Bencode.decode(encodeExtendedHandshake(rest))) as Bencode.BencodeDict
      const withBad = Bencode.encode(new Map([...known, ...Bencode.dict({ yourip })]))
      expect(rightOf(decodeExtendedHandshake(withBad))).toEqual(rest)
    }
  )

  it("an empty or missing m offers nothing; id 0 means disabled", () => {
    expect(peerUtMetadataId(rightOf(decodeExtendedHandshake(bytes("d1:mdee"))))).toBeUndefined()
    expect(peerUtMetadataId(rightOf(decodeExtendedHandshake(bytes("de"))))).toBeUndefined()
    expect(peerUtMetadataId(rightOf(decodeExtendedHandshake(bytes("d1:md11:ut_metadatai0eee"))))).toBeUndefined()
  })

  it.prop("round-trips", [handshakeArb], ([h]) => {
    expect(rightOf(decodeExtendedHandshake(encodeExtendedHandshake(h)))).toEqual(h)
  })

  it.prop(
    "tolerates unknown keys of any type",
    [handshakeArb, fc.dictionary(fc.stringMatching(/^x_[a-z]{1,6}$/), fc.oneof(fc.nat().map(Bencode.int), fc.string().map(Bencode.text)))],
    ([h, extra]) => {
      const known = rightOf(Bencode.decode(encodeExtendedHandshake(h))) as Bencode.BencodeDict
      const withExtra = Bencode.encode(new Map([...known, ...Bencode.dict(extra)]))
      expect(rightOf(decodeExtendedHandshake(withExtra))).toEqual(h)
    }
  )

  malformedCases(decodeExtendedHandshake, [
    { name: "not bencode", payload: "d1:m" },
    { name: "not a dictionary", payload: "li1ee" },
    { name: "trailing bytes", payload: "d1:mdeexx" },
    { name: "m is a list", payload: "d1:mlee" },
    { name: "an id is a string", payload: "d1:md11:ut_metadata1:1ee" },
    { name: "an id above 255", payload: "d1:md11:ut_metadatai256eee" },
    { name: "a negative id", payload: "d1:md11:ut_metadatai-1eee" },
    { name: "a negative metadata_size", payload: "d1:mde13:metadata_sizei-5ee" },
    { name: "a string metadata_size", payload: "d1:mde13:metadata_size2:10e" },
    { name: "a port above 65535", payload: "d1:mde1:pi65536ee" },
    { name: "v is an integer", payload: "d1:mde1:vi1ee" }
  ])
})

describe("compactIp", () => {
  it.prop("gives an IPv4 address's 4 bytes", [fc.uint8Array({ minLength: 4, maxLength: 4 })], ([b]) => {
    expect(compactIp(b.join("."))).toEqual(b)
    expect(compactIp(`::ffff:${b.join(".")}`)).toEqual(b)
  })

  it.prop("gives an IPv6 address's 16 bytes", [fc.uint8Array({ minLength: 16, maxLength: 16 })], ([b]) => {
    expect(compactIp(formatIpv6(b))).toEqual(b)
  })

  it("reads the :: shorthand", () => {
    expect(compactIp("::1")).toEqual(new Uint8Array([...Array(15).fill(0), 1]))
    expect(compactIp("2001:db8::8:1")).toEqual(new Uint8Array([0x20, 1, 0xd, 0xb8, ...Array(8).fill(0), 0, 8, 0, 1]))
  })

  it.each(["", "localhost", "1.2.3", "1.2.3.256", "fe80::1%eth0", "::g"])("is undefined for %j", (host) => {
    expect(compactIp(host)).toBeUndefined()
  })
})

describe("ut_metadata messages", () => {
  it("encodes the BEP 9 examples byte for byte", () => {
    expect(latin1(encodeMetadataMessage({ _tag: "Request", piece: 0 }))).toBe("d8:msg_typei0e5:piecei0ee")
    expect(latin1(encodeMetadataMessage({ _tag: "Reject", piece: 0 }))).toBe("d8:msg_typei2e5:piecei0ee")
    expect(latin1(encodeMetadataMessage({ _tag: "Data", piece: 0, totalSize: 3425, data: bytes("xyz") }))).toBe(
      "d8:msg_typei1e5:piecei0e10:total_sizei3425eexyz"
    )
  })

  it("reads the raw bytes after a data message's dictionary, even when they look like bencode", () => {
    const m = rightOf(decodeMetadataMessage(bytes("d8:msg_typei1e5:piecei2e10:total_sizei40000eed3:fooi1ee")))
    expect(m).toMatchObject({ _tag: "Data", piece: 2, totalSize: 40000 })
    expect(m._tag === "Data" && latin1(m.data)).toBe("d3:fooi1ee")
  })

  const messageArb = fc.oneof(
    fc.nat().map((piece) => ({ _tag: "Request" as const, piece })),
    fc.nat().map((piece) => ({ _tag: "Reject" as const, piece })),
    fc.record({ _tag: fc.constant("Data" as const), piece: fc.nat(), totalSize: fc.nat(), data: fc.uint8Array({ maxLength: metadataPieceSize }) })
  )

  it.prop("round-trips", [messageArb], ([m]) => {
    expect(rightOf(decodeMetadataMessage(encodeMetadataMessage(m)))).toEqual(m)
  })

  it("gives an unknown msg_type as Unknown (BEP 9: ignore it)", () => {
    expect(rightOf(decodeMetadataMessage(bytes("d8:msg_typei7e5:piecei0ee")))).toEqual({ _tag: "Unknown", msgType: 7 })
  })

  malformedCases(decodeMetadataMessage, [
    { name: "not bencode", payload: "d8:msg_type" },
    { name: "a list", payload: "le" },
    { name: "no msg_type", payload: "d5:piecei0ee" },
    { name: "no piece", payload: "d8:msg_typei0ee" },
    { name: "a negative piece", payload: "d8:msg_typei0e5:piecei-1ee" },
    { name: "a data message without total_size", payload: "d8:msg_typei1e5:piecei0eexyz" },
    { name: "a request with trailing bytes", payload: "d8:msg_typei0e5:piecei0eex" },
    { name: "a reject with trailing bytes", payload: "d8:msg_typei2e5:piecei0eex" }
  ])
})

describe("MetadataAssembler", () => {
  const piecesOf = (metadata: Uint8Array) => {
    const out = []
    for (let at = 0, piece = 0; at < metadata.length; at += metadataPieceSize, piece++) {
      out.push({ _tag: "Data" as const, piece, totalSize: metadata.length, data: metadata.subarray(at, at + metadataPieceSize) })
    }
    return out
  }

  it.each([0, -1, maxMetadataSize + 1, 2 ** 40, Number.NaN, 1.5])("refuses a metadata size of %s before allocating", (size) => {
    expect(leftOf(MetadataAssembler.make(new Uint8Array(20), size)).reason).toBe("MetadataSize")
  })

  it("accepts exactly the limit", () => {
    expect(rightOf(MetadataAssembler.make(new Uint8Array(20), maxMetadataSize)).pieceCount).toBe(maxMetadataSize / metadataPieceSize)
  })

  it.prop(
    "reassembles pieces arriving in any order, repeats included, and checks the SHA-1",
    [fc.uint8Array({ minLength: 1, maxLength: 5 * metadataPieceSize + 7 }).chain((metadata) =>
      fc.tuple(fc.constant(metadata), fc.shuffledSubarray(piecesOf(metadata), { minLength: piecesOf(metadata).length }), fc.nat())
    )],
    ([[metadata, order, repeat]]) => {
      const a = rightOf(MetadataAssembler.make(sha1(metadata), metadata.length))
      expect(a.pieceCount).toBe(Math.ceil(metadata.length / metadataPieceSize))
      const results = order.flatMap((m, i) => {
        const r = [rightOf(a.add(m))]
        // A piece seen again before the end is ignored.
        if (i === repeat % order.length && i < order.length - 1) r.push(rightOf(a.add(m)))
        return r
      })
      expect(results.slice(0, -1).every((r) => r === undefined)).toBe(true)
      expect(results.at(-1)).toEqual(metadata)
      expect(a.isComplete).toBe(true)
      expect(a.missing()).toEqual([])
    }
  )

  it("takes the metadata of a v2 torrent, whose swarm id is its SHA-256 cut to 20 bytes", () => {
    const metadata = new Uint8Array(20000).fill(9)
    const a = rightOf(MetadataAssembler.make(sha256(metadata).subarray(0, 20), metadata.length))
    const [first, second] = piecesOf(metadata)
    expect(rightOf(a.add(first!))).toBeUndefined()
    expect(rightOf(a.add(second!))).toEqual(metadata)
  })

  it("names both hashes when the metadata does not hash to the info hash", () => {
    const metadata = new Uint8Array(20000).fill(7)
    const expected = new Uint8Array(20).fill(0xab)
    const a = rightOf(MetadataAssembler.make(expected, metadata.length))
    const [first, second] = piecesOf(metadata)
    expect(rightOf(a.add(first!))).toBeUndefined()
    expect(a.missing()).toEqual([1])
    const e = leftOf(a.add(second!))
    expect(e).toMatchObject({ reason: "HashMismatch", expected: toHex(expected), actual: toHex(sha1(metadata)) })
    expect(e.message).toBe(`metadata hash mismatch: expected ${toHex(expected)}, got ${toHex(sha1(metadata))}`)
  })

  it.each([
    { name: "a short middle piece", piece: 0, size: metadataPieceSize - 1, totalSize: 40000 },
    { name: "a long last piece", piece: 2, size: 40000 - 2 * metadataPieceSize + 1, totalSize: 40000 },
    { name: "a piece past the end", piece: 3, size: 10, totalSize: 40000 },
    { name: "another total_size", piece: 0, size: metadataPieceSize, totalSize: 40001 }
  ])("rejects $name", ({ piece, size, totalSize }) => {
    const a = rightOf(MetadataAssembler.make(new Uint8Array(20), 40000))
    expect(leftOf(a.add({ _tag: "Data", piece, totalSize, data: new Uint8Array(size) })).reason).toBe("BadPiece")
  })
})
