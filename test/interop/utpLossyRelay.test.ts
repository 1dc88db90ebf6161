/**
 * uTP under loss and delay in real time (issue 11): through a UDP relay the test starts itself,
 * which drops 1% of datagrams, delays each by 20 ms and holds 5% of them 15 ms longer (so they
 * arrive out of order), 32 MiB go from one of our uTP transports to another with the exact bytes.
 * Beside it, the same through a TCP relay that delays 20 ms each way (TCP's baseline; a TCP
 * relay cannot drop). The throughputs are logged for the report; nothing is asserted about speed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, type Scope, Stream } from "effect"
import { equalBytes } from "../../src/domain/Bytes.js"
import { type Duplex, Transport } from "../../src/services/Transport.js"
import { Udp } from "../../src/services/Udp.js"
import { Utp, utpStats } from "../../src/services/Utp.js"
import { patternBytes, readBytes, writeAll } from "../support/duplexTransfer.js"
import { delayingTcpRelay } from "../support/DelayingTcpRelay.js"
import { lossyUdpRelay } from "../support/LossyUdpRelay.js"

const sizeMib = Number(process.env["UTP_RELAY_MIB"] ?? 32)
/** The share of datagrams the relay drops (UTP_RELAY_LOSS=0: delay and reordering alone). */
const loss = Number(process.env["UTP_RELAY_LOSS"] ?? 0.01)

const utpTransport = Effect.map(
  Layer.build(Utp.layer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provide(Udp.Live))),
  (context) => Context.get(context, Transport)
)

const payload = patternBytes(sizeMib * 1024 * 1024, 41)

/** Sends the payload over the dialled duplex to the first accepted one; what arrived and how long it took. */
const transfer = <E>(dial: Effect.Effect<Duplex, E, Scope.Scope>, accepted: Stream.Stream<Duplex>) =>
  Effect.gen(function* () {
    const received = yield* Effect.fork(
      Effect.flatMap(Stream.runHead(accepted).pipe(Effect.flatMap(Effect.orDie)), (d) => readBytes(d, payload.length))
    )
    const start = Date.now()
    const duplex = yield* dial
    yield* writeAll(duplex, payload)
    const got = yield* Fiber.join(received)
    return { got, seconds: (Date.now() - start) / 1000, duplex }
  })

describe("uTP through a lossy, delaying, reordering UDP relay (real time)", () => {
  it.live(`${sizeMib} MiB arrive exactly through ${loss * 100}% loss, 20 ms delay and reordering`, () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sender = yield* utpTransport
        const receiver = yield* utpTransport
        const listening = yield* receiver.listen({ host: "127.0.0.1", port: 0 })
        const relay = yield* lossyUdpRelay({
          target: { host: "127.0.0.1", port: listening.port },
          loss,
          delayMs: 20,
          reorder: 0.05,
          reorderMs: 15
        })
        const { got, seconds, duplex } = yield* transfer(sender.dial(relay.address), listening.connections)
        expect(got.length).toBe(sizeMib * 1024 * 1024)
        expect(equalBytes(got, payload)).toBe(true)
        const { dropped, forwarded } = relay.counts()
        if (loss > 0) expect(dropped).toBeGreaterThan(0)
        console.log(
          `uTP through the lossy relay: ${sizeMib} MiB in ${seconds.toFixed(1)} s (${(sizeMib / seconds).toFixed(2)} MiB/s); ` +
            `relay forwarded ${forwarded}, dropped ${dropped}; sender ${JSON.stringify(utpStats(duplex))}`
        )
      })
    ).pipe(Effect.timeout("280 seconds")))

  it.live(`TCP baseline: ${sizeMib} MiB through a TCP relay delaying 20 ms each way`, () =>
    Effect.scoped(
      Effect.gen(function* () {
        const tcp = yield* Transport
        const listening = yield* tcp.listen({ host: "127.0.0.1", port: 0 })
        const relay = yield* delayingTcpRelay({ host: "127.0.0.1", port: listening.port }, 20)
        const { got, seconds } = yield* transfer(tcp.dial(relay), listening.connections)
        expect(equalBytes(got, payload)).toBe(true)
        console.log(`TCP through the delaying relay: ${sizeMib} MiB in ${seconds.toFixed(1)} s (${(sizeMib / seconds).toFixed(2)} MiB/s)`)
      })
    ).pipe(Effect.provide(Transport.Tcp), Effect.timeout("280 seconds")))
})
