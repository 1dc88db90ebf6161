import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { uncleCount } from "../../src/domain/HashRequest.js"
import { encodeMessage, FrameDecoder, type Message, Message as Msg, WireError } from "../../src/domain/Wire.js"

const root = fc.uint8Array({ minLength: 32, maxLength: 32 })
const range = fc.record({
  piecesRoot: root,
  baseLayer: fc.integer({ min: 0, max: 40 }),
  index: fc.nat(),
  length: fc.integer({ min: 0, max: 13 }).map((k) => 2 ** k),
  proofLayers: fc.integer({ min: 0, max: 30 })
})

const decode = (bytes: Uint8Array): Either.Either<ReadonlyArray<Message>, WireError> => new FrameDecoder(1 << 20).push(bytes)

/** A frame of message `id` with `payload`, bypassing the encoder (for malformed ones). */
const frame = (id: number, payload: Uint8Array) => {
  const out = new Uint8Array(5 + payload.length)
  new DataView(out.buffer).setUint32(0, 1 + payload.length)
  out[4] = id
  out.set(payload, 5)
  return out
}

const expectViolation = (bytes: Uint8Array, pattern: RegExp) => {
  const r = decode(bytes)
  expect(Either.isLeft(r)).toBe(true)
  if (Either.isLeft(r)) expect(r.left.rule).toMatch(pattern)
}

describe("BEP 52 hash messages", () => {
  it("are ids 21, 22 and 23 with a 48-byte header: root, base layer, index, length, proof layers (big-endian)", () => {
    const r = { piecesRoot: new Uint8Array(32).fill(0xab), baseLayer: 2, index: 512, length: 4, proofLayers: 3 }
    const bytes = encodeMessage(Msg.hashRequest(r))
    expect(bytes.length).toBe(4 + 1 + 48)
    expect([...bytes.subarray(0, 5)]).toEqual([0, 0, 0, 49, 21])
    expect([...bytes.subarray(37)]).toEqual([0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 0, 4, 0, 0, 0, 3])
    expect(encodeMessage(Msg.hashReject(r))[4]).toBe(23)
    // 4 base hashes and 3 - log2(4) + 1 = 2 uncles
    expect(uncleCount(4, 3)).toBe(2)
    const hashes = encodeMessage(Msg.hashes(r, new Uint8Array(6 * 32)))
    expect([hashes[4], hashes.length]).toEqual([22, 4 + 1 + 48 + 6 * 32])
  })

  it.prop("each round trips through the decoder", [range.chain((r) => fc.tuple(
    fc.constant(r),
    fc.constantFrom("HashRequest", "HashReject", "Hashes"),
    fc.uint8Array({ minLength: 32 * (r.length + uncleCount(r.length, r.proofLayers)), maxLength: 32 * (r.length + uncleCount(r.length, r.proofLayers)) })
  ))], ([[r, tag, hashes]]) => {
    const m: Message = tag === "Hashes" ? Msg.hashes(r, hashes) : tag === "HashRequest" ? Msg.hashRequest(r) : Msg.hashReject(r)
    expect(decode(encodeMessage(m))).toEqual(Either.right([m]))
  })

  it.prop("a request or reject of any other payload size is a violation", [fc.constantFrom(21, 23), fc.integer({ min: 0, max: 100 }).filter((n) => n !== 48)], ([id, size]) => {
    expectViolation(frame(id, new Uint8Array(size)), /payload/)
  })

  it.prop("a length that is not a power of two (or zero) is a violation", [fc.constantFrom(21, 22, 23), fc.nat().filter((n) => n === 0 || (n & (n - 1)) !== 0)], ([id, length]) => {
    const payload = new Uint8Array(48)
    new DataView(payload.buffer).setUint32(40, length)
    expectViolation(frame(id, payload), /not a power of two/)
  })

  it.prop("a hashes answer with more or fewer hashes than its range needs is a violation", [range, fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0)], ([r, delta]) => {
    const count = r.length + uncleCount(r.length, r.proofLayers) + delta
    fc.pre(count >= 0)
    const good = encodeMessage(Msg.hashes(r, new Uint8Array(32 * (r.length + uncleCount(r.length, r.proofLayers)))))
    const payload = new Uint8Array(48 + 32 * count)
    payload.set(good.subarray(5, 5 + 48))
    expectViolation(frame(22, payload), /hashes message carries/)
  })

  it.prop("a hashes answer whose list is not whole hashes is a violation", [fc.integer({ min: 1, max: 31 })], ([odd]) => {
    const payload = new Uint8Array(48 + 64 + odd)
    new DataView(payload.buffer).setUint32(40, 2)
    expectViolation(frame(22, payload), /hashes message carries/)
  })
})
