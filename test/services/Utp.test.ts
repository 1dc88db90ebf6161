import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Context, Effect, Either, Fiber, Layer, Option, Stream, TestClock } from "effect"
import { equalBytes, toHex } from "../../src/domain/Bytes.js"
import { decodePacket, encodePacket, isUtpDatagram, PacketType } from "../../src/domain/UtpPacket.js"
import { Message } from "../../src/domain/Wire.js"
import { makeMemoryUdpNetwork, type UdpLinkOptions } from "../../src/services/MemoryUdpNetwork.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Transport } from "../../src/services/Transport.js"
import { Udp } from "../../src/services/Udp.js"
import { Utp, utpStats } from "../../src/services/Utp.js"
import { patternBytes, readBytes, runVirtually, writeAll } from "../support/duplexTransfer.js"

const alice = "127.0.0.2"
const bob = "127.0.0.3"

/** Two uTP transports on a simulated link: bob listens on 6881, alice dials from an ephemeral port. */
const pair = (link: UdpLinkOptions, seed = 1) =>
  Effect.gen(function* () {
    const network = yield* makeMemoryUdpNetwork({ link, seed })
    const aliceUtp = yield* Utp.make(yield* network.host(alice).bind({ host: alice, port: 0 }))
    const bobUtp = yield* Utp.make(yield* network.host(bob).bind({ host: bob, port: 6881 }))
    const listening = yield* bobUtp.listen({ host: bob, port: 6881 })
    return { network, aliceUtp, bobUtp, listening }
  })

/** Alice sends `data` to bob; what bob read, and the virtual milliseconds it took. */
const transfer = (link: UdpLinkOptions, data: Uint8Array, limitMillis: number, seed = 1) =>
  Effect.gen(function* () {
    const { aliceUtp, listening, network } = yield* pair(link, seed)
    const received = yield* Effect.fork(
      Effect.scoped(
        Effect.gen(function* () {
          const duplex = yield* Stream.runHead(listening.connections).pipe(Effect.flatMap(Effect.orDie))
          return yield* readBytes(duplex, data.length)
        })
      )
    )
    // The sender stays connected until interrupted: closing drops unsent bytes, as TCP's destroy does.
    const sent = yield* Effect.fork(
      Effect.scoped(Effect.flatMap(aliceUtp.dial({ host: bob, port: 6881 }), (duplex) => Effect.zipRight(writeAll(duplex, data), Effect.never)))
    )
    const start = Date.now()
    const got = yield* runVirtually(received, limitMillis)
    yield* Fiber.interrupt(sent)
    return { got, wallMillis: Date.now() - start, counts: network.counts() }
  })

describe("Utp on MemoryUdpNetwork (TestClock)", () => {
  it.scoped("moves 4 MiB with the exact bytes over a clean 5 ms link", () =>
    Effect.gen(function* () {
      const data = patternBytes(4 * 1024 * 1024)
      const { got } = yield* transfer({ latency: "5 millis" }, data, 60_000)
      expect(got.length).toBe(data.length)
      expect(equalBytes(got, data)).toBe(true)
    }))

  it.scoped("moves 2 MiB exactly through 1% loss, 20 ms delay and reordering jitter", () =>
    Effect.gen(function* () {
      const data = patternBytes(2 * 1024 * 1024, 7)
      const { got, counts } = yield* transfer({ latency: "20 millis", jitter: "10 millis", loss: 0.01 }, data, 300_000)
      expect(counts.dropped).toBeGreaterThan(0)
      expect(got.length).toBe(data.length)
      expect(equalBytes(got, data)).toBe(true)
    }))

  it.scoped("a dial to a uTP socket that does not listen is refused; to a port with no socket it times out", () =>
    Effect.gen(function* () {
      const { aliceUtp, network } = yield* pair({ latency: "5 millis" })
      yield* Utp.make(yield* network.host(bob).bind({ host: bob, port: 7000 }))
      const refused = yield* Effect.fork(Effect.flip(Effect.scoped(aliceUtp.dial({ host: bob, port: 7000 }))))
      expect((yield* runVirtually(refused, 10_000)).reason).toBe("ConnectionRefused")
      const unanswered = yield* Effect.fork(Effect.flip(Effect.scoped(aliceUtp.dial({ host: bob, port: 7001 }, { timeout: "3 seconds" }))))
      expect((yield* runVirtually(unanswered, 10_000)).reason).toBe("ConnectTimeout")
    }))

  it.scoped("a packet of no connection gets a RESET to each id the peer may know it by, numbered as libtorrent accepts", () =>
    Effect.gen(function* () {
      const { network } = yield* pair({ latency: "5 millis" })
      const raw = yield* network.host(alice).bind({ host: alice, port: 7100 })
      const got: Array<{ type: PacketType; connectionId: number; seqNr: number; ackNr: number }> = []
      yield* raw.subscribe(isUtpDatagram, (d) => {
        const p = Either.getOrThrow(decodePacket(d.bytes))
        got.push({ type: p.type, connectionId: p.connectionId, seqNr: p.seqNr, ackNr: p.ackNr })
      })
      // A FIN of a connection bob's socket never had (a process before it on this port, say).
      raw.send(encodePacket({ type: PacketType.Fin, connectionId: 500, timestampMicros: 1, timestampDifferenceMicros: 0, windowSize: 0, seqNr: 900, ackNr: 40, payload: new Uint8Array(0) }), { host: bob, port: 6881 })
      yield* TestClock.adjust("100 millis")
      expect(got).toEqual([
        { type: PacketType.Reset, connectionId: 501, seqNr: 40, ackNr: 899 },
        { type: PacketType.Reset, connectionId: 499, seqNr: 40, ackNr: 899 }
      ])
    }))
})

describe("Utp LEDBAT on a bottleneck (TestClock)", () => {
  it.scoped("keeps the queue near the 100 ms target instead of filling a 2 s bottleneck buffer", () =>
    Effect.gen(function* () {
      const bandwidth = 250_000
      const data = patternBytes(1024 * 1024, 3)
      const { aliceUtp, listening, network } = yield* pair({ latency: "10 millis", bandwidth, queue: "2 seconds" })
      const received = yield* Effect.fork(
        Effect.scoped(Effect.flatMap(Stream.runHead(listening.connections).pipe(Effect.flatMap(Effect.orDie)), (d) => readBytes(d, data.length)))
      )
      const delays: Array<number> = []
      yield* Effect.forkScoped(
        Effect.flatMap(aliceUtp.dial({ host: bob, port: 6881 }), (duplex) =>
          Effect.all([
            Effect.zipRight(writeAll(duplex, data), Effect.never),
            Effect.forever(Effect.zipRight(Effect.sleep("100 millis"), Effect.sync(() => delays.push(utpStats(duplex)!.queuingDelayMicros / 1000))))
          ], { concurrency: 2 }))
      )
      const got = yield* runVirtually(received, 60_000, 50)
      const elapsedSeconds = (yield* Clock.currentTimeMillis) / 1000
      expect(equalBytes(got, data)).toBe(true)
      // The link stays busy: close to the bottleneck's rate.
      expect(elapsedSeconds).toBeLessThan((1.25 * data.length) / bandwidth)
      // After the first second, the measured queuing delay stays around the target, far below the 2 s
      // the buffer would hold, and nothing is dropped.
      const settled = delays.slice(10)
      expect(settled.length).toBeGreaterThan(10)
      expect(Math.max(...settled)).toBeLessThan(200)
      expect(Math.min(...settled)).toBeGreaterThan(50)
      expect(network.counts().dropped).toBe(0)
    }))
})

describe("PeerWire over uTP (TestClock)", () => {
  const infoHash = Uint8Array.from({ length: 20 }, (_, i) => i + 1)
  const alicePeerId = new TextEncoder().encode("-EB0010-aliceaaaaaaa")
  const bobPeerId = new TextEncoder().encode("-EB0010-bobbbbbbbbbb")

  it.scoped("handshakes both ways and carries messages, the wire unaware of the transport", () =>
    Effect.gen(function* () {
      const { aliceUtp, bobUtp, listening } = yield* pair({ latency: "15 millis", jitter: "5 millis", loss: 0.05 }, 11)
      const wire = (transport: Transport["Type"]) => Effect.provide(PeerWire, PeerWire.Live.pipe(Layer.provide(Layer.succeed(Transport, transport))))
      const aliceWire = yield* wire(aliceUtp)
      const bobWire = yield* wire(bobUtp)
      const lookup = () => ({ peerId: bobPeerId, reserved: new Uint8Array(8), pieceCount: 16 })
      const accepted = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const duplex = yield* Stream.runHead(listening.connections).pipe(Effect.flatMap(Effect.orDie))
            const conn = yield* bobWire.accept(duplex, { lookup })
            yield* conn.send([Message.haveAll, Message.unchoke])
            return { peerId: conn.remote.peerId, first: yield* Stream.runHead(conn.messages) }
          })
        )
      )
      const dialled = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* aliceWire.connect({ host: bob, port: 6881 }, { infoHash, peerId: alicePeerId, pieceCount: 16 })
            yield* conn.send([Message.interested])
            const got = yield* Stream.runCollect(Stream.take(conn.messages, 2))
            return { peerId: conn.remote.peerId, got: Chunk.toArray(got) }
          })
        )
      )
      const bobSide = yield* runVirtually(accepted, 30_000)
      const aliceSide = yield* runVirtually(dialled, 30_000)
      expect(toHex(bobSide.peerId)).toBe(toHex(alicePeerId))
      expect(bobSide.first).toEqual(Option.some(Message.interested))
      expect(toHex(aliceSide.peerId)).toBe(toHex(bobPeerId))
      expect(aliceSide.got).toEqual([Message.haveAll, Message.unchoke])
    }))
})

describe("Utp.layer over Udp.Live (loopback)", () => {
  it.live("two transports on 127.0.0.1 exchange 8 MiB exactly, both ways at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sender = yield* Layer.build(Utp.layer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provide(Udp.Live)))
        const receiver = yield* Layer.build(Utp.layer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provide(Udp.Live)))
        const a = Context.get(sender, Transport)
        const b = Context.get(receiver, Transport)
        const listening = yield* b.listen({ host: "127.0.0.1", port: 0 })
        const forth = patternBytes(8 * 1024 * 1024, 5)
        const back = patternBytes(1024 * 1024, 6)
        const server = yield* Effect.fork(
          Effect.gen(function* () {
            const duplex = yield* Stream.runHead(listening.connections).pipe(Effect.flatMap(Effect.orDie))
            const [got] = yield* Effect.all([readBytes(duplex, forth.length), writeAll(duplex, back)], { concurrency: 2 })
            return got
          })
        )
        const duplex = yield* a.dial({ host: "127.0.0.1", port: listening.port })
        const [, gotBack] = yield* Effect.all([writeAll(duplex, forth), readBytes(duplex, back.length)], { concurrency: 2 })
        const gotForth = yield* Fiber.join(server)
        expect(equalBytes(gotForth, forth)).toBe(true)
        expect(equalBytes(gotBack, back)).toBe(true)
      })
    ).pipe(Effect.timeout("60 seconds")))
})
