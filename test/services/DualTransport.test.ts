import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Stream } from "effect"
import { dialPlan, makeDualTransport } from "../../src/services/DualTransport.js"
import { Transport } from "../../src/services/Transport.js"
import { Udp } from "../../src/services/Udp.js"
import { Utp, utpStats } from "../../src/services/Utp.js"

const host = "127.0.0.1"
const dual = Effect.gen(function* () {
  const tcp = yield* Effect.provide(Transport, Transport.Tcp)
  return yield* makeDualTransport(tcp, yield* Udp)
})
/** A free port for TCP and UDP both (the dual listener takes both). */
const freePort = Effect.flatMap(Udp, (udp) => Effect.scoped(Effect.map(udp.bind({ host, port: 0 }), (s) => s.port)))

describe("DualTransport (loopback)", () => {
  it.live("listens on TCP and uTP at one port, and dials TCP first", () =>
    Effect.gen(function* () {
      const transport = yield* dual
      const listening = yield* transport.listen({ host, port: yield* freePort })
      const overTcp = yield* transport.dial({ host, port: listening.port })
      expect(utpStats(overTcp)).toBeUndefined()
      const utp = yield* Utp.make(yield* (yield* Udp).bind({ host, port: 0 }))
      const overUtp = yield* utp.dial({ host, port: listening.port })
      expect(utpStats(overUtp)).toBeDefined()
      const accepted = yield* Stream.runCollect(Stream.take(listening.connections, 2)).pipe(Effect.timeout("5 seconds"))
      expect([...accepted].map((d) => utpStats(d) !== undefined).sort()).toEqual([false, true])
    }).pipe(Effect.scoped, Effect.provide(Udp.Live)))

  it.live("listening, falls back to uTP for a peer that refuses TCP, and reports TCP's refusal when neither answers", () =>
    Effect.gen(function* () {
      const transport = yield* dual
      yield* transport.listen({ host, port: yield* freePort })
      const port = yield* freePort
      const utpOnly = yield* Utp.make(yield* (yield* Udp).bind({ host, port }))
      const listening = yield* utpOnly.listen({ host, port })
      const duplex = yield* transport.dial({ host, port })
      expect(utpStats(duplex)).toBeDefined()
      expect(Option.isSome(yield* Stream.runHead(listening.connections).pipe(Effect.timeout("5 seconds")))).toBe(true)
      const nobody = yield* freePort
      const failed = yield* Effect.either(transport.dial({ host, port: nobody }, { timeout: "1 second" }))
      expect(Either.isLeft(failed) && failed.left.reason).toBe("ConnectionRefused")
    }).pipe(Effect.scoped, Effect.provide(Udp.Live)))

  it.live("not listening, dials TCP alone (no socket of its own)", () =>
    Effect.gen(function* () {
      const transport = yield* dual
      const port = yield* freePort
      yield* Effect.flatMap(Utp.make(yield* (yield* Udp).bind({ host, port })), (utp) => utp.listen({ host, port }))
      const failed = yield* Effect.either(transport.dial({ host, port }, { timeout: "1 second" }))
      expect(Either.isLeft(failed) && failed.left.reason).toBe("ConnectionRefused")
    }).pipe(Effect.scoped, Effect.provide(Udp.Live)))

  it.live("a peer that takes TCP and drops it before a byte (libtorrent with TCP off) is dialled over uTP next", () =>
    Effect.gen(function* () {
      const transport = yield* dual
      yield* transport.listen({ host, port: yield* freePort })
      const port = yield* freePort
      // the peer: TCP accepted and closed at once, uTP served
      const tcp = yield* Effect.provide(Transport, Transport.Tcp)
      const dropping = yield* tcp.listen({ host, port })
      yield* Effect.forkScoped(Stream.runForEach(dropping.connections, (d) => Effect.sync(() => d.destroy())))
      const utpOnly = yield* Utp.make(yield* (yield* Udp).bind({ host, port }))
      yield* utpOnly.listen({ host, port })
      const first = yield* transport.dial({ host, port })
      expect(utpStats(first)).toBeUndefined()
      yield* Effect.async<void>((resume) => first.on("close", () => resume(Effect.void))).pipe(Effect.timeout("5 seconds"))
      const second = yield* transport.dial({ host, port })
      expect(utpStats(second)).toBeDefined()
    }).pipe(Effect.scoped, Effect.provide(Udp.Live)))

  it.live("a peer told to speak uTP is dialled over uTP first; one told wrongly (TCP only) is reached over TCP after the uTP probe", () =>
    Effect.gen(function* () {
      const transport = yield* dual
      yield* transport.listen({ host, port: yield* freePort })
      const both = yield* dual
      const bothListening = yield* both.listen({ host, port: yield* freePort })
      const overUtp = yield* transport.dial({ host, port: bothListening.port }, { utpFirst: true })
      expect(utpStats(overUtp)).toBeDefined()
      const tcp = yield* Effect.provide(Transport, Transport.Tcp)
      const tcpOnly = yield* tcp.listen({ host, port: yield* freePort })
      const startedAt = Date.now()
      const overTcp = yield* transport.dial({ host, port: tcpOnly.port }, { utpFirst: true })
      expect(utpStats(overTcp)).toBeUndefined()
      // the uTP guess waits a round trip's probe, not the whole dial timeout
      expect(Date.now() - startedAt).toBeLessThan(4000)
      // what worked is remembered: the hint does not send it back to uTP
      const again = yield* transport.dial({ host, port: tcpOnly.port }, { utpFirst: true, timeout: "1 second" })
      expect(utpStats(again)).toBeUndefined()
    }).pipe(Effect.scoped, Effect.provide(Udp.Live)), 15_000)
})

describe("dialPlan", () => {
  it("what worked for the peer first; else uTP on a guess (dropped TCP, a uTP hint) as a probe; else the configured one", () => {
    expect(dialPlan("tcp", true, "tcp")).toEqual({ first: "tcp", probe: false })
    expect(dialPlan("utp", false, "tcp")).toEqual({ first: "utp", probe: false })
    expect(dialPlan("tcp-dropped", false, "tcp")).toEqual({ first: "utp", probe: true })
    expect(dialPlan(undefined, true, "tcp")).toEqual({ first: "utp", probe: true })
    expect(dialPlan(undefined, false, "tcp")).toEqual({ first: "tcp", probe: false })
    expect(dialPlan(undefined, true, "utp")).toEqual({ first: "utp", probe: false })
    expect(dialPlan(undefined, false, "utp")).toEqual({ first: "utp", probe: false })
  })
})
