/**
 * uTP under loss and delay in real time (issue 11): through a UDP relay the test starts itself,
 * which drops 1% of datagrams, delays each by 20 ms and holds 5% of them 15 ms longer (so they
 * arrive out of order), 32 MiB go from one of our uTP transports to another with the exact bytes.
 * The throughput is logged for the report; nothing is asserted about speed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import { equalBytes } from "../../src/domain/Bytes.js"
import { Transport } from "../../src/services/Transport.js"
import { Udp } from "../../src/services/Udp.js"
import { Utp, utpStats } from "../../src/services/Utp.js"
import { patternBytes, readBytes, writeAll } from "../support/duplexTransfer.js"
import { lossyUdpRelay } from "../support/LossyUdpRelay.js"

const sizeMib = Number(process.env["UTP_RELAY_MIB"] ?? 32)

const utpTransport = Effect.map(
  Layer.build(Utp.layer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provide(Udp.Live))),
  (context) => Context.get(context, Transport)
)

describe("uTP through a lossy, delaying, reordering UDP relay (real time)", () => {
  it.live(`${sizeMib} MiB arrive exactly through 1% loss, 20 ms delay and reordering`, () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sender = yield* utpTransport
        const receiver = yield* utpTransport
        const listening = yield* receiver.listen({ host: "127.0.0.1", port: 0 })
        const relay = yield* lossyUdpRelay({
          target: { host: "127.0.0.1", port: listening.port },
          loss: 0.01,
          delayMs: 20,
          reorder: 0.05,
          reorderMs: 15
        })
        const data = patternBytes(sizeMib * 1024 * 1024, 41)
        const received = yield* Effect.fork(
          Effect.flatMap(Stream.runHead(listening.connections).pipe(Effect.flatMap(Effect.orDie)), (d) => readBytes(d, data.length))
        )
        const start = Date.now()
        const duplex = yield* sender.dial(relay.address)
        yield* writeAll(duplex, data)
        const got = yield* Fiber.join(received)
        const seconds = (Date.now() - start) / 1000
        expect(got.length).toBe(data.length)
        expect(equalBytes(got, data)).toBe(true)
        const { dropped, forwarded } = relay.counts()
        expect(dropped).toBeGreaterThan(0)
        console.log(
          `uTP through the lossy relay: ${sizeMib} MiB in ${seconds.toFixed(1)} s (${(sizeMib / seconds).toFixed(2)} MiB/s); ` +
            `relay forwarded ${forwarded}, dropped ${dropped}; sender ${JSON.stringify(utpStats(duplex))}`
        )
      })
    ).pipe(Effect.timeout("280 seconds")))
})
