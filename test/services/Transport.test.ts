import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Option, Stream } from "effect"
import { type Duplex, type DuplexEvent, PeerError, Transport } from "../../src/services/Transport.js"

const MiB = 1024 * 1024
const tcp = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, Transport.Tcp)

const listen = (port = 0) => Effect.flatMap(Transport, (t) => t.listen({ host: "127.0.0.1", port }))
const dial = (port: number) => Effect.flatMap(Transport, (t) => t.dial({ host: "127.0.0.1", port }))

/** Resolves at the duplex's next `event`, or after `millis` (false then). */
const next = (duplex: Duplex, event: DuplexEvent, millis: number) =>
  Effect.async<boolean>((resume) => {
    const timer = setTimeout(() => done(false), millis)
    const onEvent = () => done(true)
    const done = (happened: boolean) => {
      clearTimeout(timer)
      duplex.off(event, onEvent)
      resume(Effect.succeed(happened))
    }
    duplex.on(event, onEvent)
    return Effect.sync(() => done(false))
  })

/** Reads until `total` bytes have come (or the end), in 'readable' callbacks. */
const readAll = (duplex: Duplex, total: number) =>
  Effect.gen(function* () {
    const chunks: Array<Uint8Array> = []
    let got = 0
    for (let i = 0; got < total && !duplex.readEnded && i < 1000; i++) {
      for (let chunk = duplex.read(); chunk !== null; chunk = duplex.read()) {
        chunks.push(chunk)
        got += chunk.length
      }
      if (got < total) yield* next(duplex, "readable", 1000)
    }
    return Buffer.concat(chunks)
  })

describe("Transport.Tcp", () => {
  it.scopedLive("listens on port 0, gives the bound port, and carries bytes both ways as plain Uint8Array views", () =>
    tcp(Effect.gen(function* () {
      const listening = yield* listen()
      expect(listening.port).toBeGreaterThan(0)
      expect(listening.host).toBe("127.0.0.1")
      const client = yield* dial(listening.port)
      expect(client.remote).toEqual({ host: "127.0.0.1", port: listening.port })
      const server = Option.getOrThrow(yield* Stream.runHead(listening.connections))
      expect(server.remote.host).toBe("127.0.0.1")
      client.write(Buffer.from("hello"))
      const got = yield* readAll(server, 5)
      expect(got.toString()).toBe("hello")
      server.write(Buffer.from("back"))
      const chunk = (yield* Effect.zipRight(next(client, "readable", 1000), Effect.sync(() => client.read())))!
      expect(Object.getPrototypeOf(chunk)).toBe(Uint8Array.prototype)
      expect(Buffer.from(chunk).toString()).toBe("back")
    })))

  it.scopedLive("a dialled connection reads into one reused buffer: views in the callback, and while nobody reads, one read held and no more", () =>
    tcp(Effect.gen(function* () {
      const listening = yield* listen()
      const client = yield* dial(listening.port)
      expect(client.transientReads).toBe(true)
      const server = Option.getOrThrow(yield* Stream.runHead(listening.connections))
      const payload = Uint8Array.from({ length: 8 * MiB }, (_, i) => (i * 7 + (i >> 11)) & 0xff)
      // Nobody reads for a while: the socket holds one read and stops reading.
      server.write(payload)
      yield* Effect.sleep("300 millis")
      expect(client.readableLength).toBeGreaterThan(0)
      expect(client.readableLength).toBeLessThanOrEqual(256 * 1024)
      // Then a reader in the callbacks, copying what it takes (the view is reused afterwards).
      const got = new Uint8Array(payload.length)
      let at = 0
      const take = () => {
        for (let chunk = client.read(); chunk !== null; chunk = client.read()) {
          got.set(chunk, at)
          at += chunk.length
        }
      }
      client.on("readable", take)
      take()
      for (let i = 0; i < 200 && at < payload.length; i++) yield* Effect.sleep("20 millis")
      client.off("readable", take)
      expect(at).toBe(payload.length)
      expect(Buffer.compare(Buffer.from(got), Buffer.from(payload))).toBe(0)
      // A sized read takes exactly that many bytes and keeps the rest of the read.
      server.write(Uint8Array.of(1, 2, 3, 4, 5))
      yield* next(client, "readable", 1000)
      yield* Effect.sleep("20 millis")
      expect([...client.read(2)!]).toEqual([1, 2])
      expect([...client.read()!]).toEqual([3, 4, 5])
    })))

  it.scopedLive("fails a dial to a closed port with ConnectionRefused, and stops listening when its scope closes", () =>
    tcp(Effect.gen(function* () {
      const port = yield* Effect.scoped(Effect.map(listen(), (l) => l.port))
      const e = yield* Effect.flip(Effect.scoped(dial(port)))
      expect(e).toBeInstanceOf(PeerError)
      expect(e.message).toBe(`peer 127.0.0.1:${port}: connection refused`)
    })))

  it.scopedLive("fails with a ListenError naming the address when the port is in use", () =>
    tcp(Effect.gen(function* () {
      const taken = yield* listen()
      const e = yield* Effect.flip(Effect.scoped(listen(taken.port)))
      expect(e.message).toBe(`cannot listen on 127.0.0.1:${taken.port}: the port is in use`)
    })))

  it.scopedLive("backpressure: writes buffer up to 1 MiB, and an unread connection throttles its sender", () =>
    tcp(Effect.gen(function* () {
      const listening = yield* listen()
      const client = yield* dial(listening.port)
      const server = Option.getOrThrow(yield* Stream.runHead(listening.connections))
      server.on("readable", () => {}) // read-ahead starts, but nobody takes the bytes
      const chunk = new Uint8Array(16 * 1024)
      let accepted = 0
      while (client.write(chunk)) accepted += chunk.length
      // node accepts a full 1 MiB write buffer before it asks to wait
      expect(accepted).toBeGreaterThanOrEqual(MiB - chunk.length)
      for (let round = 0; round < 50 && (yield* next(client, "drain", 100)); round++) {
        while (client.write(chunk)) accepted += chunk.length
      }
      expect(client.needsDrain).toBe(true)
      // kernel buffers on loopback hold a few MiB; an unbounded reader would take everything
      expect(accepted).toBeLessThan(32 * MiB)
      expect(server.readableLength).toBeLessThanOrEqual(MiB + 64 * 1024)
      // reading lets the sender go on
      const drained = yield* Effect.fork(next(client, "drain", 2000))
      yield* readAll(server, 2 * MiB)
      expect(yield* Fiber.join(drained)).toBe(true)
    })))
})
