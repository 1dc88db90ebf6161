import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Effect, Either, Exit, Fiber, Option, Scope, Stream, TestClock } from "effect"
import { makeMemoryUdpNetwork } from "../../src/services/MemoryUdpNetwork.js"
import { type Datagram, receive, Udp } from "../../src/services/Udp.js"

const alice = "127.0.0.2"
const bob = "127.0.0.3"
const isKrpc = (bytes: Uint8Array) => bytes[0] === 0x64 // "d"
const notKrpc = (bytes: Uint8Array) => !isKrpc(bytes)

/** Collects what a subscriber gets, with the virtual time of each arrival. */
const collect = () => {
  const got: Array<{ readonly datagram: Datagram; readonly at: number }> = []
  return { got, record: (clock: Clock.Clock) => (datagram: Datagram) => got.push({ datagram, at: clock.unsafeCurrentTimeMillis() }) }
}

describe("Udp.Live (loopback)", () => {
  it.live("routes each datagram to the first subscriber whose filter takes it, with the sender's address", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const udp = yield* Udp
        const a = yield* udp.bind({ host: "127.0.0.1", port: 0 })
        const b = yield* udp.bind({ host: "127.0.0.1", port: 0 })
        const krpc = yield* Effect.fork(Stream.runCollect(Stream.take(receive(b, isKrpc), 2)))
        const other = yield* Effect.fork(Stream.runCollect(Stream.take(receive(b, notKrpc), 1)))
        yield* Effect.sleep("10 millis")
        for (const text of ["d1:ae", "\x01utp", "d1:be"]) a.send(new TextEncoder().encode(text), { host: "127.0.0.1", port: b.port })
        const krpcGot = Chunk.toArray(yield* Fiber.join(krpc).pipe(Effect.timeout("5 seconds")))
        const otherGot = Chunk.toArray(yield* Fiber.join(other).pipe(Effect.timeout("5 seconds")))
        expect(krpcGot.map((d) => new TextDecoder().decode(d.bytes)).sort()).toEqual(["d1:ae", "d1:be"])
        expect(new TextDecoder().decode(otherGot[0]!.bytes)).toBe("\x01utp")
        expect(otherGot[0]!.from).toEqual({ host: "127.0.0.1", port: a.port })
      })
    ).pipe(Effect.provide(Udp.Live)))

  it.live("a taken port is a ListenError naming it; a send after close is lost, not thrown", () =>
    Effect.gen(function* () {
      const udp = yield* Udp
      const a = yield* Effect.scoped(
        Effect.gen(function* () {
          const a = yield* udp.bind({ host: "127.0.0.1", port: 0 })
          const taken = yield* Effect.either(udp.bind({ host: "127.0.0.1", port: a.port }))
          expect(Either.isLeft(taken) && taken.left.message).toContain(`127.0.0.1:${a.port}`)
          return a
        })
      )
      a.send(Uint8Array.of(1), { host: "127.0.0.1", port: 9 })
    }).pipe(Effect.provide(Udp.Live)))

  it.live("datagrams sent just before the socket closes still leave (a uTP RESET on the way out)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const udp = yield* Udp
        const b = yield* udp.bind({ host: "127.0.0.1", port: 0 })
        const got = yield* Effect.fork(Stream.runCollect(Stream.take(receive(b, () => true), 3)))
        yield* Effect.sleep("10 millis")
        yield* Effect.scoped(
          Effect.map(udp.bind({ host: "127.0.0.1", port: 0 }), (a) => {
            for (const n of [1, 2, 3]) a.send(Uint8Array.of(n), { host: "127.0.0.1", port: b.port })
          })
        )
        const datagrams = Chunk.toArray(yield* Fiber.join(got).pipe(Effect.timeout("5 seconds")))
        expect(datagrams.map((d) => d.bytes[0]).sort()).toEqual([1, 2, 3])
      })
    ).pipe(Effect.provide(Udp.Live)))
})

describe("Udp binds of one port (the DHT and uTP on the listen port)", () => {
  it.live("share one socket, each protocol taking its datagrams, until the last binder lets go", () =>
    Effect.gen(function* () {
      const udp = yield* Udp
      const port = yield* Effect.scoped(Effect.map(udp.bind({ host: "127.0.0.1", port: 0 }), (s) => s.port))
      const sender = yield* udp.bind({ host: "127.0.0.1", port: 0 })
      const to = { host: "127.0.0.1", port }
      const dhtScope = yield* Scope.make()
      const dht = yield* udp.bind(to).pipe(Scope.extend(dhtScope))
      const utp = yield* udp.bind(to)
      expect(dht.port).toBe(port)
      const krpc = yield* Effect.fork(Stream.runHead(receive(dht, isKrpc)).pipe(Scope.extend(dhtScope)))
      const other = yield* Effect.fork(Effect.scoped(Stream.runHead(receive(utp, notKrpc))))
      yield* Effect.sleep("10 millis")
      sender.send(new TextEncoder().encode("d1:ae"), to)
      sender.send(Uint8Array.of(0x41, 0), to)
      const gotKrpc = yield* Fiber.join(krpc).pipe(Effect.timeout("5 seconds"))
      const gotOther = yield* Fiber.join(other).pipe(Effect.timeout("5 seconds"))
      expect(Option.getOrThrow(gotKrpc).bytes[0]).toBe(0x64)
      expect(Option.getOrThrow(gotOther).bytes[0]).toBe(0x41)
      // One binder gone: the socket stays for the other (a fresh bind elsewhere would fail).
      yield* Scope.close(dhtScope, Exit.void)
      const stillThere = yield* Effect.fork(Effect.scoped(Stream.runHead(receive(utp, () => true))))
      yield* Effect.sleep("10 millis")
      sender.send(Uint8Array.of(0x41, 1), to)
      expect(Option.getOrThrow(yield* Fiber.join(stillThere).pipe(Effect.timeout("5 seconds"))).bytes[1]).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(Udp.Live)))
})

describe("MemoryUdpNetwork (TestClock)", () => {
  it.scoped("a datagram arrives one latency after it is sent, from the sender's address and port", () =>
    Effect.gen(function* () {
      const network = yield* makeMemoryUdpNetwork({ link: { latency: "30 millis" } })
      const a = yield* network.host(alice).bind({ host: alice, port: 0 })
      const b = yield* network.host(bob).bind({ host: bob, port: 6881 })
      const { got, record } = collect()
      yield* b.subscribe(() => true, record(yield* Effect.clock))
      a.send(Uint8Array.of(7), { host: bob, port: 6881 })
      yield* TestClock.adjust("29 millis")
      expect(got).toHaveLength(0)
      yield* TestClock.adjust("1 millis")
      expect(got.map((g) => [g.at, g.datagram.from, [...g.datagram.bytes]])).toEqual([[30, { host: alice, port: a.port }, [7]]])
    }))

  it.scoped("a bandwidth bottleneck spaces datagrams out and drops what would wait longer than the queue", () =>
    Effect.gen(function* () {
      // 1000 bytes a second: a 100-byte datagram takes 100 ms on the link; the fifth would wait 400 ms.
      const network = yield* makeMemoryUdpNetwork({ link: { bandwidth: 1000, queue: "350 millis" } })
      const a = yield* network.host(alice).bind({ host: alice, port: 0 })
      const b = yield* network.host(bob).bind({ host: bob, port: 1 })
      const { got, record } = collect()
      yield* b.subscribe(() => true, record(yield* Effect.clock))
      for (let i = 0; i < 5; i++) a.send(new Uint8Array(100).fill(i), { host: bob, port: 1 })
      yield* TestClock.adjust("1 second")
      expect(got.map((g) => [g.at, g.datagram.bytes[0]])).toEqual([[100, 0], [200, 1], [300, 2], [400, 3]])
      expect(network.counts()).toEqual({ delivered: 4, dropped: 1 })
    }))

  it.scoped("loss and jitter repeat exactly with the same seed; a host that is down neither sends nor receives", () =>
    Effect.gen(function* () {
      const run = (seed: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const network = yield* makeMemoryUdpNetwork({ seed, link: { latency: "10 millis", jitter: "20 millis", loss: 0.3 } })
            const a = yield* network.host(alice).bind({ host: alice, port: 0 })
            const b = yield* network.host(bob).bind({ host: bob, port: 1 })
            const { got, record } = collect()
            yield* b.subscribe(() => true, record(yield* Effect.clock))
            for (let i = 0; i < 100; i++) a.send(Uint8Array.of(i), { host: bob, port: 1 })
            yield* TestClock.adjust("1 second")
            yield* network.disconnect(bob)
            a.send(Uint8Array.of(200), { host: bob, port: 1 })
            yield* TestClock.adjust("1 second")
            return { order: got.map((g) => g.datagram.bytes[0]), counts: network.counts() }
          })
        )
      const first = yield* run(7)
      expect(yield* run(7)).toEqual(first)
      expect(first.counts.delivered + first.counts.dropped).toBe(101)
      expect(first.counts.delivered).toBeGreaterThan(50)
      expect(first.counts.delivered).toBeLessThan(90)
      expect(first.order).not.toEqual([...first.order].sort((x, y) => x! - y!))
      expect(first.order).not.toContain(200)
    }))
})
