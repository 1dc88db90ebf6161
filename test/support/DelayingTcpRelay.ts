/**
 * A TCP relay on loopback that delays every chunk by `delayMs` each way (TCP cannot lose or
 * reorder what it carries): the TCP baseline beside uTP through `LossyUdpRelay`.
 */
import * as net from "node:net"
import { Effect, type Scope } from "effect"
import type { PeerAddress } from "../../src/domain/Peer.js"

const forwardDelayed = (from: net.Socket, to: net.Socket, delayMs: number) => {
  from.on("data", (chunk) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk)
    }, delayMs)
  })
  from.on("close", () => setTimeout(() => to.destroy(), delayMs))
  from.on("error", () => {})
}

export const delayingTcpRelay = (target: PeerAddress, delayMs: number): Effect.Effect<PeerAddress, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.async<net.Server>((resume) => {
        const server = net.createServer((client) => {
          const upstream = net.connect({ host: target.host, port: target.port })
          forwardDelayed(client, upstream, delayMs)
          forwardDelayed(upstream, client, delayMs)
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.sync(() => server.close())
    ),
    (server) => ({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port })
  )
