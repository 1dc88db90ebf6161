import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { concatBytes, equalBytes } from "../../src/domain/Bytes.js"
import { seededRandom } from "../../src/domain/SeededRandom.js"
import { parseDatagram, UtpConnection, type UtpHost } from "../../src/domain/UtpConnection.js"
import { decodePacket, PacketType, seqAdd } from "../../src/domain/UtpPacket.js"
import { Either } from "effect"

interface WireOptions {
  readonly seed: number
  readonly loss: number
  /** One way, microseconds; each datagram gets up to `jitter` more (so they reorder). */
  readonly latency: number
  readonly jitter: number
  readonly initialSeqs: readonly [number, number]
  /** Drops chosen datagrams besides the random loss. */
  readonly drop?: (bytes: Uint8Array, from: Side) => boolean
  readonly receiveWindow?: number
}

type Side = "dialler" | "acceptor"

/**
 * Two connections over a simulated wire, in virtual time and without any runtime: the dialler
 * writes `data`, the acceptor reads it. `runUntil` moves time on until its condition holds (or
 * the limit passes).
 */
const makeWire = (data: Uint8Array, o: WireOptions) => {
  const random = seededRandom(o.seed)
  let now = 0
  const inFlight: Array<{ readonly at: number; readonly to: Side; readonly bytes: Uint8Array }> = []
  const owing = new Set<UtpConnection>()
  const read: Array<Uint8Array> = []
  let readBytes = 0
  const conns: { dialler?: UtpConnection; acceptor?: UtpConnection } = {}
  let written = 0
  const pump = () => {
    const c = conns.dialler!
    while (written < data.length && c.unsentBytes + c.flightBytes < 128 * 1024) {
      const part = data.subarray(written, written + 10_000)
      written += part.length
      c.write(part)
    }
  }
  const host = (side: Side): UtpHost => ({
    nowMicros: () => now,
    transmit: (bytes) => {
      if (random() < o.loss || o.drop?.(bytes, side) === true) return
      const to: Side = side === "dialler" ? "acceptor" : "dialler"
      // 2% arrive twice
      for (let copies = random() < 0.02 ? 2 : 1; copies > 0; copies--) {
        inFlight.push({ at: now + o.latency + Math.floor(random() * o.jitter), to, bytes: bytes.slice() })
      }
    },
    connected: pump,
    readable: () => {
      for (let b = conns.acceptor?.read(); b != null; b = conns.acceptor?.read()) {
        read.push(b)
        readBytes += b.length
      }
    },
    writable: () => side === "dialler" && pump(),
    ackLater: () => owing.add(conns[side]!),
    closed: () => {},
    finished: () => {}
  })
  conns.dialler = UtpConnection.connect(host("dialler"), 4000, o.initialSeqs[0], { receiveWindow: o.receiveWindow ?? 64 * 1024 })
  let nextTick = 50_000
  const runUntil = (done: () => boolean, limitMicros = 600_000_000) => {
  while (!done() && now < limitMicros) {
    inFlight.sort((a, b) => a.at - b.at)
    const next = inFlight[0]
    if (next === undefined || next.at > nextTick) {
      now = nextTick
      nextTick += 50_000
      conns.dialler!.tick()
      conns.acceptor?.tick()
      continue
    }
    inFlight.shift()
    now = next.at
    const p = parseDatagram(next.bytes)!
    if (next.to === "acceptor" && conns.acceptor === undefined) {
      if (p.type === PacketType.Syn) conns.acceptor = UtpConnection.accept(host("acceptor"), p, o.initialSeqs[1], { receiveWindow: o.receiveWindow ?? 64 * 1024 })
      continue
    }
    conns[next.to]!.receive(p)
    for (const c of owing) c.flushAck()
    owing.clear()
  }
  }
  return { runUntil, conns, got: () => concatBytes(read), allRead: () => readBytes >= data.length, now: () => now }
}

/** Runs a transfer to its end; what was read and the two connections. */
const simulate = (data: Uint8Array, o: WireOptions) => {
  const wire = makeWire(data, o)
  wire.runUntil(wire.allRead)
  return { got: wire.got(), dialler: wire.conns.dialler!, acceptor: wire.conns.acceptor! }
}

const payload = (length: number, seed: number) => {
  const random = seededRandom(seed)
  return Uint8Array.from({ length }, () => Math.floor(random() * 256))
}

describe("UtpConnection (a simulated wire, no runtime)", () => {
  it("delivers every byte in order through loss, reordering, duplicates and sequence numbers that wrap", () =>
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 1 << 30 }),
          loss: fc.double({ min: 0, max: 0.2, noNaN: true }),
          latency: fc.integer({ min: 1000, max: 50_000 }),
          jitter: fc.integer({ min: 0, max: 30_000 }),
          // starts near the wrap on purpose: 0xffff - a few
          initialSeqs: fc.tuple(fc.integer({ min: 0xff00, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }))
        }),
        fc.integer({ min: 1, max: 300_000 }),
        (o, length) => {
          const data = payload(length, o.seed)
          const { got } = simulate(data, o)
          expect(got.length).toBe(data.length)
          expect(equalBytes(got, data)).toBe(true)
        }
      ),
      { numRuns: Number(process.env["UTP_RUNS"] ?? 40) }
    ))

  it("never has more in flight than the congestion window allows (plus one packet)", () => {
    const data = payload(500_000, 3)
    const { dialler, got } = simulate(data, { seed: 3, loss: 0.02, latency: 20_000, jitter: 5000, initialSeqs: [1, 2] })
    expect(got.length).toBe(data.length)
    expect(dialler.flightBytes).toBeLessThanOrEqual(dialler.congestionWindow + 1400)
    expect(dialler.retransmissions).toBeGreaterThan(0)
  })

  it("closing sends a FIN: the other side's read ends after the bytes, it closes too, and both finish", () => {
    const data = payload(50_000, 5)
    const wire = makeWire(data, { seed: 5, loss: 0.05, latency: 5000, jitter: 2000, initialSeqs: [7, 9] })
    wire.runUntil(wire.allRead)
    const { acceptor, dialler } = wire.conns
    dialler!.close()
    expect(acceptor!.readEnded).toBe(false)
    wire.runUntil(() => dialler!.state === "Closed" && acceptor!.state === "Closed")
    expect(acceptor!.readEnded).toBe(true)
    expect(acceptor!.localClosed).toBe(true)
    expect(dialler!.error).toBeUndefined()
    expect(equalBytes(wire.got(), data)).toBe(true)
  })

  it("the side that closed first acks the other's FIN before it forgets the connection", () => {
    const wire = makeWire(payload(1000, 8), { seed: 8, loss: 0, latency: 5000, jitter: 0, initialSeqs: [3, 4] })
    wire.runUntil(wire.allRead)
    const { acceptor, dialler } = wire.conns
    const closedAt = wire.now()
    dialler!.close()
    wire.runUntil(() => dialler!.state === "Closed" && acceptor!.state === "Closed")
    // Unacked, the acceptor's FIN (which acks the dialler's) would go out again until it timed out.
    expect(acceptor!.retransmissions).toBe(0)
    expect(wire.now() - closedAt).toBeLessThan(100_000)
  })

  it("a RESET right after our FIN carries the FIN's number (libtorrent ignores packets numbered past a FIN)", () => {
    const sent: Array<{ readonly type: PacketType; readonly seqNr: number }> = []
    const record = (bytes: Uint8Array, from: Side) => {
      const p = Either.getOrThrow(decodePacket(bytes))
      if (from === "dialler") sent.push({ type: p.type, seqNr: p.seqNr })
      return false
    }
    const wire = makeWire(payload(1000, 7), { seed: 7, loss: 0, latency: 5000, jitter: 0, initialSeqs: [1, 1], drop: record })
    wire.runUntil(wire.allRead)
    wire.conns.dialler!.close()
    wire.conns.dialler!.reset()
    const fin = sent.find((p) => p.type === PacketType.Fin)
    expect(fin).toBeDefined()
    expect(sent.at(-1)).toEqual({ type: PacketType.Reset, seqNr: fin!.seqNr })
  })

  it("a RESET ends the connection with a Reset error", () => {
    const wire = makeWire(payload(1000, 6), { seed: 6, loss: 0, latency: 5000, jitter: 0, initialSeqs: [1, 1] })
    wire.runUntil(wire.allRead)
    wire.conns.acceptor!.reset()
    wire.runUntil(() => wire.conns.dialler!.state === "Closed")
    expect(wire.conns.dialler!.error?.reason).toBe("Reset")
  })

  /** Drops the first `copies` transmissions of the dialler's DATA packets `seqs` (offsets from its initial seq). */
  const dropping = (initialSeq: number, seqs: ReadonlyArray<number>, copies: number) => {
    const seen = new Map<number, number>()
    const targets = new Set(seqs.map((n) => seqAdd(initialSeq, n)))
    return (bytes: Uint8Array, from: Side) => {
      const p = Either.getOrThrow(decodePacket(bytes))
      if (from !== "dialler" || p.type !== PacketType.Data || !targets.has(p.seqNr)) return false
      const n = (seen.get(p.seqNr) ?? 0) + 1
      seen.set(p.seqNr, n)
      return n <= copies
    }
  }

  it("a lost retransmission is found by the acks of later packets, not by the timer", () =>
    fc.assert(
      fc.property(fc.integer({ min: 30, max: 200 }), fc.integer({ min: 1, max: 0xffff }), (lostAt, initialSeq) => {
        const data = payload(600_000, lostAt)
        const { dialler, got } = simulate(data, {
          seed: 1, loss: 0, latency: 20_000, jitter: 0, initialSeqs: [initialSeq, 9],
          // room for the packets sent after the lost one (with 64 KiB the window shuts, and only the timer is left)
          receiveWindow: 1024 * 1024,
          drop: dropping(initialSeq, [lostAt], 2)
        })
        expect(equalBytes(got, data)).toBe(true)
        expect(dialler.retransmissions).toBe(2)
        expect(dialler.timeouts).toBe(0)
      }),
      { numRuns: 10 }
    ))

  it("losses within one window shrink it once, not once per lost packet", () =>
    fc.assert(
      fc.property(fc.integer({ min: 40, max: 150 }), fc.integer({ min: 2, max: 5 }), (lostAt, lostCount) => {
        const data = payload(400_000, lostAt)
        const lost = Array.from({ length: lostCount }, (_, i) => lostAt + 2 * i)
        const wire = makeWire(data, { seed: 1, loss: 0, latency: 20_000, jitter: 0, initialSeqs: [1, 9], receiveWindow: 1024 * 1024, drop: dropping(1, lost, 1) })
        const dialler = wire.conns.dialler!
        wire.runUntil(() => dialler.retransmissions === lostCount)
        expect(dialler.retransmissions).toBe(lostCount)
        expect(dialler.lossEvents).toBe(1)
        expect(dialler.timeouts).toBe(0)
        wire.runUntil(wire.allRead)
        expect(equalBytes(wire.got(), data)).toBe(true)
      }),
      { numRuns: 10 }
    ))
})
