/**
 * The TCP listener that takes peers' incoming connections (seeding). It only accepts sockets; the
 * handshake and everything after it belong to `PeerWire.accept`.
 */
import * as net from "node:net"
import { Context, Data, Effect, Layer, Queue, type Scope, Stream } from "effect"
import { describeOsError } from "../domain/OsError.js"
import { formatPeer } from "../domain/Peer.js"

export class ListenError extends Data.TaggedError("ListenError")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message() {
    return `cannot listen on ${formatPeer({ host: this.host, port: this.port })}: ${describeOsError(this.cause)}`
  }
}

export interface ListenOptions {
  readonly host: string
  /** 0: any free port (see `Listening.port`). */
  readonly port: number
}

export interface Listening {
  readonly host: string
  /** The bound port (the chosen one when asked for port 0). */
  readonly port: number
  /**
   * Accepted sockets, paused, with an 'error' listener already attached. Sockets the consumer does
   * not take up quickly enough (more than `backlog` waiting) are closed on arrival. Consume it once.
   */
  readonly connections: Stream.Stream<net.Socket>
}

/** Accepted sockets that may wait for the consumer; a burst beyond it is refused. */
const backlog = 64
/**
 * Per-connection buffering both ways (node sets read-ahead and write buffer alike): reads match
 * PeerWire's outbound connections, and a seeder's batch of blocks is accepted without waiting
 * for a drain, while a peer that stops reading still holds at most about this much.
 */
const highWaterMark = 1024 * 1024

const listen = (options: ListenOptions): Effect.Effect<Listening, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const accepted = yield* Effect.acquireRelease(Queue.bounded<net.Socket>(backlog), (queue) =>
      // Sockets nobody took are ours to close.
      Effect.flatMap(Queue.takeAll(queue), (left) => Effect.sync(() => {
        for (const socket of left) socket.destroy()
      })).pipe(
        Effect.zipRight(Queue.shutdown(queue))
      )
    )
    const server = yield* Effect.acquireRelease(
      Effect.async<net.Server, ListenError>((resume) => {
        const server = net.createServer({ highWaterMark, pauseOnConnect: true }, (socket) => {
          // An error before PeerWire attaches its own listener must not crash the process; the
          // socket is closed by then and the handshake read reports it.
          socket.on("error", () => {})
          if (!Queue.unsafeOffer(accepted, socket)) socket.destroy()
        })
        const onError = (cause: Error) => resume(Effect.fail(new ListenError({ host: options.host, port: options.port, cause })))
        server.once("error", onError)
        server.listen(options.port, options.host, () => {
          server.off("error", onError)
          server.on("error", () => {}) // accept errors (EMFILE...) are transient; the server keeps listening
          resume(Effect.succeed(server))
        })
      }),
      (server) => Effect.sync(() => server.close())
    )
    const { port } = server.address() as net.AddressInfo
    return { host: options.host, port, connections: Stream.fromQueue(accepted) }
  })

export class PeerListener extends Context.Tag("bt/PeerListener")<
  PeerListener,
  {
    /** Listens until the scope closes; then it stops accepting and closes the sockets nobody took. */
    readonly listen: (options: ListenOptions) => Effect.Effect<Listening, ListenError, Scope.Scope>
  }
>() {
  static readonly Live: Layer.Layer<PeerListener> = Layer.succeed(PeerListener, { listen })
}
