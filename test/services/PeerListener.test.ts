import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import { ListenError, PeerListener } from "../../src/services/PeerListener.js"

const listen = (port = 0) => Effect.flatMap(PeerListener, (l) => l.listen({ host: "127.0.0.1", port }))

/** A client socket destroyed with the scope; resolves once connected. */
const dial = (port: number) =>
  Effect.acquireRelease(
    Effect.async<net.Socket, Error>((resume) => {
      const s = net.connect({ host: "127.0.0.1", port })
      s.once("connect", () => resume(Effect.succeed(s)))
      s.once("error", (e) => resume(Effect.fail(e)))
    }),
    (s) => Effect.sync(() => s.destroy())
  )

/** The bytes a paused socket has, read the way PeerWire reads (socket.read on 'readable'). */
const readSome = (socket: net.Socket) =>
  Effect.async<Buffer>((resume) => {
    const take = () => {
      const chunk: Buffer | null = socket.read()
      if (chunk === null) return false
      socket.off("readable", onReadable)
      resume(Effect.succeed(chunk))
      return true
    }
    const onReadable = () => void take()
    socket.on("readable", onReadable)
    take()
  })

describe("PeerListener", () => {
  it.scopedLive("accepts connections on a free port and hands out paused sockets with their data", () =>
    Effect.gen(function* () {
      const listening = yield* listen()
      expect(listening.port).toBeGreaterThan(0)
      expect(listening.host).toBe("127.0.0.1")
      const client = yield* dial(listening.port)
      client.write("hello")
      const socket = Option.getOrThrow(yield* Stream.runHead(listening.connections))
      expect(socket.remotePort).toBe(client.localPort)
      expect(socket.readableHighWaterMark).toBe(1024 * 1024)
      expect((yield* readSome(socket)).toString()).toBe("hello")
      socket.destroy()
    }).pipe(Effect.provide(PeerListener.Live)))

  it.scopedLive("stops listening when its scope closes", () =>
    Effect.gen(function* () {
      const port = yield* Effect.scoped(Effect.map(listen(), (l) => l.port))
      const refused = yield* Effect.flip(Effect.scoped(dial(port)))
      expect((refused as NodeJS.ErrnoException).code).toBe("ECONNREFUSED")
    }).pipe(Effect.provide(PeerListener.Live)))

  it.scopedLive("fails with a ListenError naming the address when the port is taken", () =>
    Effect.gen(function* () {
      const taken = yield* listen()
      const e = yield* Effect.flip(Effect.scoped(listen(taken.port)))
      expect(e).toBeInstanceOf(ListenError)
      expect(e.message).toBe(`cannot listen on 127.0.0.1:${taken.port}: the port is in use`)
    }).pipe(Effect.provide(PeerListener.Live)))
})
