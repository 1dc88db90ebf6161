import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import {
  decodePacket,
  encodePacket,
  headerLength,
  isUtpDatagram,
  type PacketType,
  seqAdd,
  seqBefore,
  seqDistance,
  type UtpPacket
} from "../../src/domain/UtpPacket.js"

const u16 = fc.integer({ min: 0, max: 0xffff })
const u32 = fc.integer({ min: 0, max: 0xffffffff })

const packetArb: fc.Arbitrary<UtpPacket> = fc
  .record({
    type: fc.constantFrom<PacketType>(0, 1, 2, 3, 4),
    connectionId: u16,
    timestampMicros: u32,
    timestampDifferenceMicros: u32,
    windowSize: u32,
    seqNr: u16,
    ackNr: u16,
    payload: fc.uint8Array({ maxLength: 1500 }),
    sackBytes: fc.option(fc.integer({ min: 1, max: 32 }), { nil: undefined }),
    sackSeed: fc.uint8Array({ minLength: 32, maxLength: 32 })
  })
  .map(({ sackBytes, sackSeed, ...p }) => (sackBytes === undefined ? p : { ...p, selectiveAck: sackSeed.slice(0, sackBytes) }))

const plain = (p: UtpPacket) => ({ ...p, payload: [...p.payload], selectiveAck: p.selectiveAck && [...p.selectiveAck] })

describe("UtpPacket", () => {
  it("round trips every packet, with and without a selective ack", () =>
    fc.assert(
      fc.property(packetArb, (p) => {
        const bytes = encodePacket(p)
        expect(isUtpDatagram(bytes)).toBe(true)
        const decoded = decodePacket(bytes)
        expect(Either.isRight(decoded) && plain(decoded.right)).toEqual(plain(p))
      })
    ))

  it("lays the header out as BEP 29 does: type and version in the first byte, big-endian fields", () => {
    const bytes = encodePacket({
      type: 4,
      connectionId: 0x1234,
      timestampMicros: 0x01020304,
      timestampDifferenceMicros: 0x05060708,
      windowSize: 0x090a0b0c,
      seqNr: 0xabcd,
      ackNr: 0x0102,
      payload: Uint8Array.of(0xee)
    })
    expect([...bytes]).toEqual([0x41, 0, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xab, 0xcd, 1, 2, 0xee])
  })

  it("skips unknown extensions and keeps the selective ack after them", () => {
    const base = encodePacket({
      type: 2, connectionId: 1, timestampMicros: 0, timestampDifferenceMicros: 0, windowSize: 0, seqNr: 1, ackNr: 2, payload: new Uint8Array(0)
    })
    // extension 2 (3 bytes), then selective ack (4 bytes), then 2 payload bytes
    const bytes = Uint8Array.from([...base.subarray(0, 20), 1, 3, 9, 9, 9, 0, 4, 0b101, 0, 0, 0, 7, 8])
    bytes[1] = 2
    const decoded = decodePacket(bytes)
    expect(Either.isRight(decoded) && [...decoded.right.selectiveAck!]).toEqual([5, 0, 0, 0])
    expect(Either.isRight(decoded) && [...decoded.right.payload]).toEqual([7, 8])
  })

  it("rejects short datagrams, other versions, unknown types and truncated or empty extensions", () => {
    const good = encodePacket({
      type: 0, connectionId: 1, timestampMicros: 0, timestampDifferenceMicros: 0, windowSize: 0, seqNr: 1, ackNr: 2,
      selectiveAck: new Uint8Array(4), payload: new Uint8Array(0)
    })
    const reason = (bytes: Uint8Array) => Either.match(decodePacket(bytes), { onLeft: (e) => e.reason, onRight: () => "ok" })
    expect(reason(good)).toBe("ok")
    expect(reason(good.subarray(0, 19))).toBe("TooShort")
    expect(reason(Uint8Array.from([0x02, ...good.subarray(1)]))).toBe("Version")
    expect(reason(Uint8Array.from([0x51, ...good.subarray(1)]))).toBe("Type")
    expect(reason(good.subarray(0, 25))).toBe("Extension")
    expect(reason(Uint8Array.from([...good.subarray(0, 21), 0]))).toBe("Extension")
    // libtorrent's short masks (1 to 3 bytes) are read, not rejected
    expect(reason(Uint8Array.from([...good.subarray(0, 21), 1, 0xff]))).toBe("ok")
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), (bytes) => {
        const decoded = decodePacket(bytes)
        // whatever it is, it decodes to a packet or a typed error, and only uTP-looking bytes decode
        if (Either.isRight(decoded)) expect(isUtpDatagram(bytes)).toBe(true)
        else expect(decoded.left._tag).toBe("UtpPacketError")
      })
    )
    expect(isUtpDatagram(new TextEncoder().encode("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe"))).toBe(false)
    expect(headerLength).toBe(20)
  })

  it("compares sequence numbers across the 16-bit wrap", () =>
    fc.assert(
      fc.property(u16, fc.integer({ min: 1, max: 0x7fff }), (a, n) => {
        const b = seqAdd(a, n)
        expect(seqDistance(b, a)).toBe(n)
        expect(seqDistance(a, b)).toBe(-n)
        expect(seqBefore(a, b)).toBe(true)
        expect(seqBefore(b, a)).toBe(false)
        expect(seqBefore(a, a)).toBe(false)
      })
    ))

  it("wraps 0xffff + 1 to 0", () => {
    expect(seqAdd(0xffff, 1)).toBe(0)
    expect(seqBefore(0xfffe, 3)).toBe(true)
  })
})
