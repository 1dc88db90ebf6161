/** Where both ends of a test run PeerWire: over TCP on 127.0.0.1, and over the memory network (live clock) between two hosts. */
import { type Context, Effect, Layer } from "effect"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Transport } from "../../src/services/Transport.js"

export const networks = [
  {
    name: "TCP",
    make: Effect.map(Effect.provide(Transport, Transport.Tcp), (tcp) => ({ server: tcp, client: tcp, host: "127.0.0.1" }))
  },
  {
    name: "the memory network",
    make: Effect.map(
      MemoryNetwork.make({ link: { latency: "1 millis", bandwidth: 256 * 1024 * 1024 } }),
      (network) => ({ server: network.host("127.0.0.2"), client: network.host("127.0.0.3"), host: "127.0.0.2" })
    )
  }
]

/** A PeerWire over that transport. */
export const wireOver = (transport: Context.Tag.Service<Transport>) =>
  Effect.provide(PeerWire, PeerWire.Live.pipe(Layer.provide(Layer.succeed(Transport, transport))))
