import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import { equalBytes } from "../../src/domain/Bytes.js"
import { MemoryNetwork, type MemoryNetworkOptions } from "../../src/services/MemoryNetwork.js"
import { PeerError, type Duplex } from "../../src/services/Transport.js"

const alice = "127.0.0.2"
const bob = "127.0.0.3"
const port = 6881
const MiB = 1024 * 1024

/** A network, alice dialled to bob's listener: both ends of the connection, and the virtual time it took. */
const connected = (options: MemoryNetworkOptions) =>
  Effect.gen(function* () {
    const network = yield* MemoryNetwork.make(options)
    const listening = yield* network.host(bob).listen({ host: bob, port })
    const start = yield* Clock.currentTimeMillis
    const dialling = yield* Effect.fork(Effect.zip(network.host(alice).dial({ host: bob, port }), Clock.currentTimeMillis))
    yield* TestClock.adjust("1 second")
    const [client, at] = yield* Fiber.join(dialling)
    const server = Option.getOrThrow(yield* Stream.runHead(listening.connections))
    return { network, client, server, took: at - start }
  })

/** Reads `total` bytes off `duplex` in its 'readable' callbacks; completes with them and the virtual time of the last one. */
const receive = (duplex: Duplex, total: number) =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const done = yield* Deferred.make<{ readonly bytes: Uint8Array; readonly at: number }>()
    const bytes = new Uint8Array(total)
    let got = 0
    const onReadable = () => {
      for (let chunk = duplex.read(); chunk !== null; chunk = duplex.read()) {
        bytes.set(chunk, got)
        got += chunk.length
      }
      if (got === total) {
        duplex.off("readable", onReadable)
        Deferred.unsafeDone(done, Exit.succeed({ bytes, at: clock.unsafeCurrentTimeMillis() }))
      }
    }
    duplex.on("readable", onReadable)
    onReadable()
    return done
  })

const pattern = (length: number) => Uint8Array.from({ length }, (_, i) => (i * 31 + (i >> 8)) & 0xff)

describe("MemoryNetwork (TestClock)", () => {
  it.scoped("a dial takes a round trip of the link's latency; bytes arrive one latency after they leave", () =>
    Effect.gen(function* () {
      const { client, server, took } = yield* connected({ link: { latency: "50 millis" } })
      expect(took).toBe(100)
      expect(server.remote.host).toBe(alice)
      expect(client.remote).toEqual({ host: bob, port })
      const arrived = yield* receive(server, 5)
      const sent = yield* Clock.currentTimeMillis
      client.write(Uint8Array.of(1, 2, 3, 4, 5))
      yield* TestClock.adjust("49 millis")
      expect(server.readableLength).toBe(0)
      yield* TestClock.adjust("1 millis")
      const { at, bytes } = yield* Deferred.await(arrived)
      expect(at - sent).toBe(50)
      expect([...bytes]).toEqual([1, 2, 3, 4, 5])
    }))

  it.scoped("a clock a rounding error short of a whole millisecond (after a jittered sleep) still delivers", () =>
    Effect.gen(function* () {
      const { client, server } = yield* connected({})
      // Less than a nanosecond before 2000 ms: the segment's arrival is 2000, and a sleep for the
      // difference would be a sleep for nothing.
      yield* TestClock.setTime(2000 - 2.2737367544323206e-13)
      const arrived = yield* receive(server, 3)
      client.write(Uint8Array.of(7, 8, 9))
      yield* TestClock.adjust("2 millis")
      const { at, bytes } = yield* Deferred.await(arrived)
      expect(at).toBeGreaterThanOrEqual(2000)
      expect(at).toBeLessThanOrEqual(2001)
      expect([...bytes]).toEqual([7, 8, 9])
    }))

  it.scoped("a 1 MiB transfer at 1 MiB/s takes one second of virtual time", () =>
    Effect.gen(function* () {
      const { client, server } = yield* connected({ link: { bandwidth: MiB } })
      const data = pattern(MiB)
      const arrived = yield* receive(server, MiB)
      const start = yield* Clock.currentTimeMillis
      client.write(data)
      yield* TestClock.adjust("990 millis")
      expect(yield* Deferred.isDone(arrived)).toBe(false)
      yield* TestClock.adjust("1 second")
      const { at, bytes } = yield* Deferred.await(arrived)
      expect(at - start).toBe(1000)
      expect(equalBytes(bytes, data)).toBe(true) // (toEqual on MiBs of bytes takes seconds)
    }))

  it.scoped("loss delays a transfer but never corrupts or reorders it, the same way for the same seed", () =>
    Effect.gen(function* () {
      const data = pattern(512 * 1024)
      const transfer = (loss: number) =>
        Effect.gen(function* () {
          const { client, server } = yield* connected({ link: { latency: "20 millis", loss }, seed: 7 })
          const arrived = yield* receive(server, data.length)
          const start = yield* Clock.currentTimeMillis
          client.write(data)
          yield* TestClock.adjust("5 seconds")
          const { at, bytes } = yield* Deferred.await(arrived)
          expect(equalBytes(bytes, data)).toBe(true)
          return at - start
        })
      const clean = yield* transfer(0)
      const lossy = yield* transfer(0.2)
      expect(clean).toBe(20)
      // a lost segment comes max(200 ms, 2 x latency) late and holds up the rest
      expect(lossy).toBeGreaterThanOrEqual(clean + 200)
      expect(yield* transfer(0.2)).toBe(lossy)
    }))

  it.scoped("refuses a dial to a port nothing listens on after a round trip, and times out on an unknown host", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make({ link: { latency: "30 millis" } })
      network.host(bob)
      const refused = yield* Effect.fork(Effect.flip(network.host(alice).dial({ host: bob, port })))
      yield* TestClock.adjust("59 millis")
      expect(refused.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const e = yield* Fiber.join(refused)
      expect(e).toBeInstanceOf(PeerError)
      expect(e.message).toBe(`peer ${bob}:${port}: connection refused`)
      const unknown = yield* Effect.fork(Effect.flip(network.host(alice).dial({ host: "127.0.0.9", port }, { timeout: "2 seconds" })))
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(unknown)).reason).toBe("ConnectTimeout")
    }))

  it.scoped("listening on a port in use fails with 'the port is in use'; port 0 gives a free port", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make()
      const host = network.host(bob)
      yield* host.listen({ host: bob, port })
      const e = yield* Effect.flip(host.listen({ host: bob, port }))
      expect(e.message).toBe(`cannot listen on ${bob}:${port}: the port is in use`)
      const any = yield* host.listen({ host: "0.0.0.0", port: 0 })
      expect(any.port).toBeGreaterThan(0)
      expect(any.port).not.toBe(port)
    }))

  it.scoped("flow control: an unread receiver buffers at most its window, and write() asks the sender to wait", () =>
    Effect.gen(function* () {
      const window = 256 * 1024
      const highWaterMark = 128 * 1024
      const { client, server } = yield* connected({ window, highWaterMark, link: { latency: "5 millis" } })
      const chunk = new Uint8Array(16 * 1024)
      let accepted = 0
      let drains = 0
      client.on("drain", () => drains++)
      const writeUntilFull = () => {
        while (client.write(chunk)) accepted += chunk.length
        accepted += chunk.length
      }
      for (let round = 0; round < 4; round++) {
        writeUntilFull()
        yield* TestClock.adjust("1 second")
      }
      expect(server.readableLength).toBe(window)
      expect(client.needsDrain).toBe(true)
      expect(accepted).toBeLessThanOrEqual(window + highWaterMark + chunk.length)
      // reading opens the window: the sender drains
      while (server.read() !== null) {}
      yield* TestClock.adjust("1 second")
      expect(drains).toBeGreaterThan(0)
    }))

  it.scoped("a host that goes down closes both ends of its connections, and dials to it time out", () =>
    Effect.gen(function* () {
      const { network, client, server } = yield* connected({ link: { latency: "40 millis" } })
      const closed: Array<string> = []
      client.on("close", () => closed.push("alice"))
      server.on("close", () => closed.push("bob"))
      yield* network.disconnect(alice)
      yield* TestClock.adjust("39 millis")
      expect(closed).toEqual(["alice"])
      yield* TestClock.adjust("1 millis")
      expect(closed).toEqual(["alice", "bob"])
      expect(server.readEnded && client.readEnded && server.closed && client.closed).toBe(true)
      const again = yield* Effect.fork(Effect.flip(network.host(bob).dial({ host: alice, port }, { timeout: "1 second" })))
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(again)).reason).toBe("ConnectTimeout")
    }))
})
