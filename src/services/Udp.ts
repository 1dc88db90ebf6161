/**
 * Datagrams: one UDP socket per listen port, shared by the protocols that live on it (the DHT's
 * KRPC and uTP), each taking the datagrams it recognises by their bytes. `Udp.Live` is
 * `node:dgram`; `MemoryUdpNetwork` simulates links with latency, bandwidth and loss.
 *
 * Receiving is a synchronous callback, not a Stream: uTP handles every packet on the hot path and
 * cannot pay for a fiber hop per datagram. `receive` gives a bounded Stream for the rest.
 */
import * as dgram from "node:dgram"
import { Context, Effect, Exit, Layer, Queue, Scope, Stream } from "effect"
import type { PeerAddress } from "../domain/Peer.js"
import { ListenError, type ListenOptions } from "./Transport.js"

export interface Datagram {
  readonly bytes: Uint8Array
  readonly from: PeerAddress
}

/** Takes the datagrams a protocol recognises (e.g. by the first byte). */
export type DatagramFilter = (bytes: Uint8Array) => boolean

export interface DatagramSocket {
  readonly host: string
  /** The bound port (the chosen one when asked for port 0). */
  readonly port: number
  /** Sends one datagram, best effort: a send that fails is a lost datagram, as on the wire. */
  readonly send: (bytes: Uint8Array, to: PeerAddress) => void
  /**
   * Hands `handler` every datagram that `accepts` takes (the first subscriber whose filter takes
   * a datagram gets it), until the scope closes. The bytes are the handler's.
   */
  readonly subscribe: (accepts: DatagramFilter, handler: (datagram: Datagram) => void) => Effect.Effect<void, never, Scope.Scope>
}

export class Udp extends Context.Tag("bt/Udp")<
  Udp,
  {
    /** Binds a socket until the scope closes. */
    readonly bind: (options: ListenOptions) => Effect.Effect<DatagramSocket, ListenError, Scope.Scope>
  }
>() {
  /**
   * node:dgram. Every build of this layer shares one registry of bound sockets, as the ports are
   * the process's: the DHT and the torrent's uTP, built in separate layers, share the listen port.
   */
  // sync, not succeed: bindLive is defined further down this module
  static readonly Live: Layer.Layer<Udp> = Layer.sync(Udp, () => (liveUdp ??= shareBinds({ bind: bindLive })))
}

/** The process's live sockets (see `Udp.Live`), made at the first build. */
let liveUdp: Context.Tag.Service<Udp> | undefined

interface SharedSocket {
  readonly socket: DatagramSocket
  readonly scope: Scope.CloseableScope
  refs: number
}

/**
 * Binds of one host and port share one socket (the DHT and uTP both bind the listen port), which
 * closes when the last binder's scope does. Port 0 binds are never shared.
 */
export const shareBinds = (udp: Context.Tag.Service<Udp>): Context.Tag.Service<Udp> => {
  const open = new Map<string, SharedSocket>()
  const opening = Effect.unsafeMakeSemaphore(1)
  const acquire = (options: ListenOptions, key: string) =>
    opening.withPermits(1)(
      Effect.suspend(() => {
        const shared = open.get(key)
        if (shared !== undefined) {
          shared.refs++
          return Effect.succeed(shared)
        }
        return Effect.gen(function* () {
          const scope = yield* Scope.make()
          const socket = yield* udp.bind(options).pipe(Scope.extend(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
          const created = { socket, scope, refs: 1 }
          open.set(key, created)
          return created
        })
      })
    )
  const release = (shared: SharedSocket, key: string) =>
    Effect.suspend(() => {
      if (--shared.refs > 0) return Effect.void
      open.delete(key)
      return Scope.close(shared.scope, Exit.void)
    })
  return {
    bind: (options) => {
      if (options.port === 0) return udp.bind(options)
      const key = `${options.host}|${options.port}`
      return Effect.map(Effect.acquireRelease(acquire(options, key), (shared) => release(shared, key)), (shared) => shared.socket)
    }
  }
}

/**
 * The datagrams `accepts` takes, as a Stream; when the consumer falls `capacity` behind, new
 * ones are dropped (a flood costs bounded memory, as a full socket buffer would).
 */
export const receive = (
  socket: DatagramSocket,
  accepts: DatagramFilter,
  capacity = 1024
): Stream.Stream<Datagram, never, Scope.Scope> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const queue = yield* Effect.acquireRelease(Queue.dropping<Datagram>(capacity), Queue.shutdown)
      yield* socket.subscribe(accepts, (datagram) => Queue.unsafeOffer(queue, datagram))
      return Stream.fromQueue(queue)
    })
  )

interface Subscriber {
  readonly accepts: DatagramFilter
  readonly handler: (datagram: Datagram) => void
}

/** Routes a datagram to the first subscriber that takes it; nobody's datagrams are dropped. */
export const makeDispatch = () => {
  const subscribers: Array<Subscriber> = []
  const dispatch = (datagram: Datagram) => {
    for (const s of subscribers) {
      if (s.accepts(datagram.bytes)) return s.handler(datagram)
    }
  }
  const subscribe = (accepts: DatagramFilter, handler: (datagram: Datagram) => void) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const subscriber = { accepts, handler }
        subscribers.push(subscriber)
        return subscriber
      }),
      (subscriber) => Effect.sync(() => void subscribers.splice(subscribers.indexOf(subscriber), 1))
    ).pipe(Effect.asVoid)
  return { dispatch, subscribe }
}

/**
 * The kernel's receive buffer: the default (about 200 KiB, half of it overhead) overflows on a
 * burst of a uTP window, and each overflow is a loss that halves the window. The kernel caps it
 * at net.core.rmem_max.
 */
const receiveBufferBytes = 4 * 1024 * 1024
/** How long a closing socket waits for its last sends to leave. */
const sendsFlushMillis = 250

const bindLive = (options: ListenOptions): Effect.Effect<DatagramSocket, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const { dispatch, subscribe } = makeDispatch()
    // node throws on a send after close; a late send is a lost datagram instead.
    let closed = false
    // node resolves the address of a send on a later tick: a close right after a send (a uTP
    // RESET on the way out) would drop it, and the peer would keep a dead connection for minutes.
    let sending = 0
    let allSent: (() => void) | undefined
    const onSent = () => {
      if (--sending === 0) allSent?.()
    }
    const socket = yield* Effect.acquireRelease(
      Effect.async<dgram.Socket, ListenError>((resume) => {
        const socket = dgram.createSocket({ type: options.host.includes(":") ? "udp6" : "udp4" })
        const onError = (cause: Error) => {
          socket.close()
          resume(Effect.fail(new ListenError({ host: options.host, port: options.port, cause })))
        }
        socket.once("error", onError)
        socket.bind(options.port, options.host, () => {
          socket.off("error", onError)
          // Send errors (unreachable hosts, a full buffer) are lost datagrams; the socket goes on.
          socket.on("error", () => {})
          socket.setRecvBufferSize(receiveBufferBytes)
          resume(Effect.succeed(socket))
        })
      }),
      (socket) => {
        closed = true
        return Effect.async<void>((resume) => {
          const close = () => {
            clearTimeout(timer)
            socket.close()
            resume(Effect.void)
          }
          const timer = setTimeout(close, sendsFlushMillis)
          if (sending === 0) close()
          else allSent = close
        })
      }
    )
    socket.on("message", (message, rinfo) => {
      const bytes = new Uint8Array(message.buffer, message.byteOffset, message.byteLength)
      dispatch({ bytes, from: { host: rinfo.address, port: rinfo.port } })
    })
    return {
      host: options.host,
      port: socket.address().port,
      send: (bytes, to) => {
        if (closed) return
        sending++
        socket.send(bytes, to.port, to.host, onSent)
      },
      subscribe
    }
  })
