import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import {
  blockSize,
  decodeHandshake,
  encodeHandshake,
  encodeMessage,
  encodeFrames,
  encodeMessages,
  FrameDecoder,
  handshakeLength,
  makeReserved,
  maxFrameLength,
  Message,
  supportsExtensions,
  supportsFast,
  supportsV2,
  WireError
} from "../../src/domain/Wire.js"
import { uncleCount } from "../../src/domain/HashRequest.js"

const u32 = fc.integer({ min: 0, max: 0xffffffff })
const bytes = (maxLength: number) => fc.uint8Array({ maxLength })
const knownIds = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 20, 21, 22, 23])

const hashRangeArb = fc.record({
  piecesRoot: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  baseLayer: u32,
  index: u32,
  length: fc.integer({ min: 0, max: 13 }).map((k) => 2 ** k),
  proofLayers: fc.integer({ min: 0, max: 20 })
})

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.constantFrom<Message>(
    Message.keepAlive,
    Message.choke,
    Message.unchoke,
    Message.interested,
    Message.notInterested,
    Message.haveAll,
    Message.haveNone
  ),
  u32.map(Message.have),
  bytes(40).map(Message.bitfield),
  fc.tuple(u32, u32, u32).map(([i, b, l]) => Message.request(i, b, l)),
  fc.tuple(u32, u32, bytes(300)).map(([i, b, block]) => Message.piece(i, b, block)),
  fc.tuple(u32, u32, u32).map(([i, b, l]) => Message.cancel(i, b, l)),
  fc.integer({ min: 0, max: 65535 }).map(Message.port),
  u32.map(Message.suggestPiece),
  fc.tuple(u32, u32, u32).map(([i, b, l]) => Message.rejectRequest(i, b, l)),
  u32.map(Message.allowedFast),
  hashRangeArb.map(Message.hashRequest),
  hashRangeArb.map(Message.hashReject),
  hashRangeArb.map((r) => Message.hashes(r, new Uint8Array(32 * (r.length + uncleCount(r.length, r.proofLayers))).fill(7))),
  fc.tuple(fc.integer({ min: 0, max: 255 }), bytes(300)).map(([id, p]) => Message.extended(id, p)),
  fc.tuple(fc.integer({ min: 0, max: 255 }).filter((id) => !knownIds.has(id)), bytes(50)).map(([id, p]) =>
    Message.unknown(id, p)
  )
)

const big = 1 << 20

/** Feeds the chunks in order; the messages of all of them, or the first error. */
const decodeAll = (decoder: FrameDecoder, chunks: ReadonlyArray<Uint8Array>): Either.Either<Array<Message>, WireError> => {
  const out: Array<Message> = []
  for (const c of chunks) {
    const r = decoder.push(c)
    if (Either.isLeft(r)) return Either.left(r.left)
    out.push(...r.right)
  }
  return Either.right(out)
}

const splitAt = (b: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y)
  const parts: Array<Uint8Array> = []
  let prev = 0
  for (const p of points) {
    parts.push(b.subarray(prev, p))
    prev = p
  }
  parts.push(b.subarray(prev))
  return parts
}

const expectRule = (r: Either.Either<unknown, WireError>, pattern: RegExp) => {
  expect(Either.isLeft(r)).toBe(true)
  if (Either.isLeft(r)) {
    expect(r.left).toBeInstanceOf(WireError)
    expect(r.left.rule).toMatch(pattern)
    expect(r.left.message).toMatch(/^wire protocol violation: /)
  }
}

const frame = (...body: Array<number>) => {
  const n = body.length
  return Uint8Array.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, ...body])
}

describe("handshake", () => {
  it.prop("round trips", [bytes(8).filter((b) => b.length === 8), fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.uint8Array({ minLength: 20, maxLength: 20 })], ([reserved, infoHash, peerId]) => {
    const encoded = encodeHandshake({ reserved, infoHash, peerId })
    expect(encoded.length).toBe(handshakeLength)
    expect(encoded[0]).toBe(19)
    expect(Buffer.from(encoded.subarray(1, 20)).toString("latin1")).toBe("BitTorrent protocol")
    expect(decodeHandshake(encoded)).toEqual(Either.right({ reserved, infoHash, peerId }))
  })

  it("rejects a short buffer, a wrong length byte and a wrong protocol name", () => {
    const good = encodeHandshake({ reserved: new Uint8Array(8), infoHash: new Uint8Array(20), peerId: new Uint8Array(20) })
    expectRule(decodeHandshake(good.subarray(0, 67)), /68 bytes, got 67/)
    const mse = Uint8Array.from(good)
    mse[0] = 0xa7
    expectRule(decodeHandshake(mse), /start with byte 19, got 167/)
    const renamed = Uint8Array.from(good)
    renamed[5] = 0x21
    expectRule(decodeHandshake(renamed), /protocol name/)
  })

  it("reserved bits: extension protocol is byte 5 bit 0x10, Fast is byte 7 bit 0x04", () => {
    expect([...makeReserved({ extensions: true })]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0])
    expect([...makeReserved({ fast: true })]).toEqual([0, 0, 0, 0, 0, 0, 0, 0x04])
    expect([...makeReserved({})]).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
    const both = makeReserved({ extensions: true, fast: true })
    expect(supportsExtensions(both) && supportsFast(both)).toBe(true)
    // aria2 and Transmission send 0000000000100004
    const aria2 = Uint8Array.from(Buffer.from("0000000000100004", "hex"))
    expect(supportsExtensions(aria2)).toBe(true)
    expect(supportsFast(aria2)).toBe(true)
    expect(supportsExtensions(new Uint8Array(8)) || supportsFast(new Uint8Array(8))).toBe(false)
    // BEP 52's v2 bit shares byte 7 with Fast
    expect([...makeReserved({ extensions: true, fast: true, v2: true })]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0x14])
    expect(supportsV2(makeReserved({ v2: true })) && !supportsV2(both)).toBe(true)
  })
})

describe("messages", () => {
  it.prop("every message round trips through encodeMessage and the decoder", [messageArb], ([m]) => {
    expect(decodeAll(new FrameDecoder(big), [encodeMessage(m)])).toEqual(Either.right([m]))
  })

  it.prop(
    "a batch encoded as one buffer decodes to the same messages, however it is cut",
    [fc.array(messageArb, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 20 })],
    ([ms, cuts]) => {
      const wire = encodeMessages(ms)
      expect(wire).toEqual(Uint8Array.from(Buffer.concat(ms.map(encodeMessage))))
      expect(decodeAll(new FrameDecoder(big), splitAt(wire, cuts))).toEqual(Either.right(ms))
    }
  )

  it.prop(
    "a batch as frames is the same bytes, with every block the very array given (not a copy)",
    [fc.array(messageArb, { maxLength: 30 })],
    ([ms]) => {
      const frames = encodeFrames(ms)
      expect(Uint8Array.from(Buffer.concat(frames))).toEqual(encodeMessages(ms))
      const blocks = ms.flatMap((m) => (m._tag === "Piece" ? [m.block] : []))
      expect(blocks.every((block) => frames.includes(block))).toBe(true)
    }
  )

  it("has the BEP 3 byte layout", () => {
    expect([...encodeMessage(Message.keepAlive)]).toEqual([0, 0, 0, 0])
    expect([...encodeMessage(Message.interested)]).toEqual([0, 0, 0, 1, 2])
    expect([...encodeMessage(Message.have(0x01020304))]).toEqual([0, 0, 0, 5, 4, 1, 2, 3, 4])
    expect([...encodeMessage(Message.request(1, 0x4000, 0x4000))]).toEqual([
      0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0
    ])
    expect([...encodeMessage(Message.port(6881))]).toEqual([0, 0, 0, 3, 9, 0x1a, 0xe1])
    expect([...encodeMessage(Message.extended(0, Uint8Array.of(100, 101)))]).toEqual([0, 0, 0, 4, 20, 0, 100, 101])
    expect([...encodeMessage(Message.haveAll)]).toEqual([0, 0, 0, 1, 0x0e])
  })
})

describe("FrameDecoder", () => {
  const sample = encodeMessages([
    Message.bitfield(Uint8Array.of(0xff, 0x80)),
    Message.unchoke,
    Message.keepAlive,
    Message.piece(3, 16384, Uint8Array.from({ length: 100 }, (_, i) => i)),
    Message.have(7),
    Message.extended(1, Uint8Array.of(1, 2, 3)),
    Message.rejectRequest(1, 2, 3),
    Message.keepAlive
  ])
  const expected = decodeAll(new FrameDecoder(big), [sample])

  it("decodes the sample stream split at every byte offset", () => {
    expect(Either.isRight(expected) && expected.right.length).toBe(8)
    for (let cut = 0; cut <= sample.length; cut++) {
      expect(decodeAll(new FrameDecoder(big), [sample.subarray(0, cut), sample.subarray(cut)])).toEqual(expected)
    }
  })

  it("decodes the sample stream fed one byte at a time, and in every pair of cuts", () => {
    const oneByOne = Array.from(sample, (b) => Uint8Array.of(b))
    expect(decodeAll(new FrameDecoder(big), oneByOne)).toEqual(expected)
    for (let a = 0; a <= sample.length; a += 3) {
      for (let b = a; b <= sample.length; b += 7) {
        expect(decodeAll(new FrameDecoder(big), splitAt(sample, [a, b]))).toEqual(expected)
      }
    }
  })

  it("returns a block that lies within one chunk as a view of that chunk (no copy)", () => {
    const wire = encodeMessage(Message.piece(0, 0, new Uint8Array(1000).fill(7)))
    const r = new FrameDecoder(big).push(wire)
    expect(Either.isRight(r)).toBe(true)
    if (Either.isRight(r)) {
      const m = r.right[0]!
      expect(m._tag === "Piece" && m.block.buffer === wire.buffer).toBe(true)
    }
  })

  it("rejects an oversized length prefix before the body arrives, even split, and stays failed", () => {
    expectRule(new FrameDecoder(maxFrameLength(100)).push(Uint8Array.of(0xff, 0xff, 0xff, 0xf0)), /4294967280 bytes exceeds/)
    const d = new FrameDecoder(maxFrameLength(100))
    expect(d.push(Uint8Array.of(0xff, 0xff))).toEqual(Either.right([]))
    expectRule(d.push(Uint8Array.of(0xff, 0xf0)), /exceeds the limit/)
    expectRule(d.push(encodeMessage(Message.choke)), /exceeds the limit/)
  })

  it("rejects fixed-size messages of the wrong size", () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [frame(4, 0, 0, 7), /message id 4 has a 4-byte payload, got 3/],
      [frame(0, 1), /message id 0 has a 0-byte payload, got 1/],
      [frame(6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64), /message id 6 has a 12-byte payload, got 11/],
      [frame(8, ...new Array(13).fill(0)), /message id 8/],
      [frame(9, 1), /message id 9 has a 2-byte payload/],
      [frame(0x0e, 0), /message id 14/],
      [frame(0x11, 0, 0), /message id 17/],
      [frame(7, 0, 0, 0, 0, 0, 0, 0), /8-byte header, got 7/],
      [frame(20), /without an extended id/]
    ]
    for (const [bytes, rule] of cases) expectRule(new FrameDecoder(big).push(bytes), rule)
  })

  it("maxFrameLength admits a 16 KiB piece, the torrent's bitfield and a ut_metadata piece, and no more", () => {
    expect(maxFrameLength(1)).toBe(2 + blockSize + 1024)
    expect(maxFrameLength(8 * 100_000)).toBe(100_001)
    const limit = maxFrameLength(10)
    const block = encodeMessage(Message.piece(0, 0, new Uint8Array(blockSize)))
    expect(Either.isRight(new FrameDecoder(limit).push(block))).toBe(true)
    const meta = encodeMessage(Message.extended(3, new Uint8Array(blockSize + 1024)))
    expect(Either.isRight(new FrameDecoder(limit).push(meta))).toBe(true)
    const tooBig = encodeMessage(Message.extended(3, new Uint8Array(blockSize + 1025)))
    expectRule(new FrameDecoder(limit).push(tooBig), /exceeds the limit of 17410/)
    const bits = encodeMessage(Message.bitfield(new Uint8Array(100_000)))
    expect(Either.isRight(new FrameDecoder(maxFrameLength(800_000)).push(bits))).toBe(true)
  })
})
