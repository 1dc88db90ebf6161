/**
 * A lossy UDP relay on loopback, for uTP under loss and delay in real time (`tc netem` is not
 * available here): datagrams from the client go to `target`, the target's answers go back to the
 * client (the last address heard from). Each datagram is dropped with probability `loss`, else
 * held `delayMs`, and a share `reorder` of them `reorderMs` longer, so later ones overtake them.
 * The generator is seeded: a run's drop pattern repeats.
 */
import * as dgram from "node:dgram"
import { Effect, type Scope } from "effect"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { seededRandom } from "../../src/domain/SeededRandom.js"

export interface LossyUdpRelayOptions {
  readonly target: PeerAddress
  readonly loss: number
  readonly delayMs: number
  readonly reorder: number
  readonly reorderMs: number
  readonly seed?: number
}

export interface LossyUdpRelay {
  /** Where the client sends (127.0.0.1). */
  readonly address: PeerAddress
  readonly counts: () => { readonly forwarded: number; readonly dropped: number }
}

export const lossyUdpRelay = (options: LossyUdpRelayOptions): Effect.Effect<LossyUdpRelay, never, Scope.Scope> =>
  Effect.gen(function* () {
    const random = seededRandom(options.seed ?? 1)
    const counts = { forwarded: 0, dropped: 0 }
    const timers = new Set<NodeJS.Timeout>()
    const socket = yield* Effect.acquireRelease(
      Effect.async<dgram.Socket>((resume) => {
        const socket = dgram.createSocket("udp4")
        socket.bind(0, "127.0.0.1", () => {
          // as Udp.Live does: a default-sized buffer would overflow and lose more than `loss` says
          socket.setRecvBufferSize(4 * 1024 * 1024)
          resume(Effect.succeed(socket))
        })
      }),
      (socket) =>
        Effect.sync(() => {
          for (const t of timers) clearTimeout(t)
          socket.close()
        })
    )
    socket.on("error", () => {})
    let client: PeerAddress | undefined
    socket.on("message", (message, from) => {
      const fromTarget = from.port === options.target.port && from.address === options.target.host
      if (!fromTarget) client = { host: from.address, port: from.port }
      const to = fromTarget ? client : options.target
      if (to === undefined) return
      if (random() < options.loss) return void counts.dropped++
      const delay = options.delayMs + (random() < options.reorder ? options.reorderMs : 0)
      const timer = setTimeout(() => {
        timers.delete(timer)
        counts.forwarded++
        socket.send(message, to.port, to.host)
      }, delay)
      timers.add(timer)
    })
    return { address: { host: "127.0.0.1", port: socket.address().port }, counts: () => ({ ...counts }) }
  })
