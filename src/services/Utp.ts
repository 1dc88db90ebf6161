/**
 * uTP (BEP 29) as a `Transport`: reliable byte streams over the UDP socket the DHT shares, so
 * PeerWire and the torrent core see a `Duplex` like any other. Each connection is a
 * `UtpConnection` state machine; this module routes datagrams to them by address and
 * connection id, runs their timers, and adapts them to `Duplex`.
 *
 * The hot path takes no fiber per packet: datagrams arrive in the socket's synchronous
 * callback and events go straight to the Duplex listeners. Only the timers run as a fiber (one
 * ticker per socket, on Effect's Clock, so that a simulated network under TestClock is
 * deterministic).
 */
import { Clock, Duration, Effect, Layer, Queue, type Scope, Stream } from "effect"
import { type PeerAddress, formatPeer } from "../domain/Peer.js"
import { parseDatagram, UtpConnection, type UtpHost } from "../domain/UtpConnection.js"
import { encodePacket, isUtpDatagram, PacketType, type UtpPacket } from "../domain/UtpPacket.js"
import {
  acceptQueue,
  defaultDialTimeout,
  type DialOptions,
  type Duplex,
  type DuplexEvent,
  ListenError,
  type Listening,
  type ListenOptions,
  PeerError,
  Transport
} from "./Transport.js"
import { type DatagramSocket, Udp } from "./Udp.js"

export interface UtpOptions {
  /** Unread plus reordered bytes a connection buffers; advertised to the peer. Default 1 MiB. */
  readonly receiveWindow?: number
  /** Unsent plus in-flight bytes at which `write` returns false. Default 1 MiB. */
  readonly highWaterMark?: number
  /** How often the timers are checked; default 50 ms (the retransmission timeout is at least 500 ms). */
  readonly tick?: Duration.DurationInput
}

const systemError = (code: string) => Object.assign(new Error(code), { code })

/** A uTP connection as a Duplex. */
class UtpDuplex implements Duplex {
  needsDrain = false
  connection!: UtpConnection
  private readonly handlers: Record<DuplexEvent, Set<() => void>> = { readable: new Set(), drain: new Set(), close: new Set() }

  constructor(readonly remote: PeerAddress, private readonly highWaterMark: number) {}

  read(size?: number) {
    return this.connection.read(size)
  }
  get readableLength() {
    return this.connection.bufferedBytes
  }
  get readEnded() {
    return this.connection.readEnded || this.connection.localClosed
  }
  get failure(): PeerError | undefined {
    const error = this.connection.error
    if (error === undefined) return undefined
    const peer = formatPeer(this.remote)
    return error.reason === "Reset"
      ? new PeerError({ peer, reason: "Closed", detail: "reset by the peer", cause: error })
      : new PeerError({ peer, reason: "Io", detail: error.message, cause: error })
  }
  write(bytes: Uint8Array) {
    if (this.closed) return false
    this.connection.write(bytes)
    this.needsDrain = this.pending() >= this.highWaterMark
    return !this.needsDrain
  }
  get closed() {
    return this.connection.localClosed
  }
  on(event: DuplexEvent, f: () => void) {
    this.handlers[event].add(f)
  }
  off(event: DuplexEvent, f: () => void) {
    this.handlers[event].delete(f)
  }
  destroy() {
    this.connection.close()
  }
  emit(event: DuplexEvent) {
    for (const f of [...this.handlers[event]]) f()
  }
  writable() {
    if (this.needsDrain && this.pending() < this.highWaterMark) {
      this.needsDrain = false
      this.emit("drain")
    }
  }
  closedNow() {
    this.needsDrain = false
    // after the call that closed it, like node
    queueMicrotask(() => this.emit("close"))
  }
  private pending() {
    return this.connection.unsentBytes + this.connection.flightBytes
  }
}

/** What a uTP connection's congestion control sees now. */
export interface UtpStats {
  readonly congestionWindow: number
  /** The one-way queuing delay LEDBAT measures (microseconds). */
  readonly queuingDelayMicros: number
  readonly roundTripMillis: number | undefined
  readonly flightBytes: number
  readonly retransmissions: number
  readonly timeouts: number
}

/** The stats of a uTP connection; undefined for a Duplex of another transport (so it also tells uTP apart). */
export const utpStats = (duplex: Duplex): UtpStats | undefined => {
  if (!(duplex instanceof UtpDuplex)) return undefined
  const c = duplex.connection
  return {
    congestionWindow: c.congestionWindow,
    queuingDelayMicros: c.queuingDelayMicros,
    roundTripMillis: c.roundTripMillis,
    flightBytes: c.flightBytes,
    retransmissions: c.retransmissions,
    timeouts: c.timeouts
  }
}

interface Entry {
  readonly duplex: UtpDuplex
  /** Set while a dial waits for the peer's answer. */
  onConnected: (() => void) | undefined
}

const keyOf = (from: PeerAddress, connectionId: number) => `${from.host}:${from.port}#${connectionId}`

const randomU16 = () => Math.floor(Math.random() * 0x10000)

/** The uTP Transport over `socket`: dials from it and accepts on it (one `listen` at a time). */
const make = (socket: DatagramSocket, options: UtpOptions = {}): Effect.Effect<Transport["Type"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const receiveWindow = options.receiveWindow ?? 1024 * 1024
    const highWaterMark = options.highWaterMark ?? 1024 * 1024
    const connections = new Map<string, Entry>()
    let accepting: Queue.Queue<Duplex> | undefined

    const nowMicros = () => Number(clock.unsafeCurrentTimeNanos() / 1000n)

    // Acks owed wait until the datagrams that arrived together are in: node hands them over one
    // callback each, within one turn of the event loop.
    const owingAcks = new Set<UtpConnection>()
    const flushAcks = () => {
      for (const connection of owingAcks) connection.flushAck()
      owingAcks.clear()
    }

    const open = (remote: PeerAddress, recvId: number, start: (host: UtpHost) => UtpConnection): Entry => {
      const key = keyOf(remote, recvId)
      const duplex = new UtpDuplex(remote, highWaterMark)
      const entry: Entry = { duplex, onConnected: undefined }
      const host: UtpHost = {
        nowMicros,
        transmit: (datagram) => socket.send(datagram, remote),
        connected: () => entry.onConnected?.(),
        ackLater: () => {
          if (owingAcks.size === 0) setImmediate(flushAcks)
          owingAcks.add(duplex.connection)
        },
        readable: () => duplex.emit("readable"),
        writable: () => duplex.writable(),
        closed: () => duplex.closedNow(),
        finished: () => {
          if (connections.get(key) === entry) connections.delete(key)
          entry.onConnected?.()
        }
      }
      connections.set(key, entry)
      duplex.connection = start(host)
      return entry
    }

    const sendReset = (to: PeerAddress, p: UtpPacket) =>
      socket.send(
        encodePacket({
          type: PacketType.Reset,
          connectionId: p.connectionId,
          timestampMicros: nowMicros(),
          timestampDifferenceMicros: 0,
          windowSize: 0,
          seqNr: randomU16(),
          ackNr: p.seqNr,
          payload: new Uint8Array(0)
        }),
        to
      )

    const incomingSyn = (from: PeerAddress, syn: UtpPacket) => {
      const known = connections.get(keyOf(from, (syn.connectionId + 1) & 0xffff))
      if (known !== undefined) return known.duplex.connection.receive(syn)
      if (accepting === undefined) return sendReset(from, syn)
      const entry = open(from, (syn.connectionId + 1) & 0xffff, (host) => UtpConnection.accept(host, syn, randomU16(), { receiveWindow }))
      if (!Queue.unsafeOffer(accepting, entry.duplex)) entry.duplex.connection.reset()
    }

    const onDatagram = (bytes: Uint8Array, from: PeerAddress) => {
      const p = parseDatagram(bytes)
      if (p === undefined) return
      const entry = connections.get(keyOf(from, p.connectionId))
      if (entry !== undefined) return entry.duplex.connection.receive(p)
      if (p.type === PacketType.Syn) return incomingSyn(from, p)
      if (p.type !== PacketType.Reset) sendReset(from, p)
    }

    yield* socket.subscribe(isUtpDatagram, (d) => onDatagram(d.bytes, d.from))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const entry of [...connections.values()]) entry.duplex.connection.reset()
      })
    )
    const tick = Duration.decode(options.tick ?? Duration.millis(50))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Clock.sleep(tick),
          Effect.sync(() => {
            for (const entry of [...connections.values()]) entry.duplex.connection.tick()
          })
        )
      )
    )

    const dial = (address: PeerAddress, dialOptions: DialOptions = {}): Effect.Effect<Duplex, PeerError, Scope.Scope> => {
      const peer = formatPeer(address)
      return Effect.gen(function* () {
        let recvId = randomU16()
        while (connections.has(keyOf(address, recvId))) recvId = randomU16()
        const entry = yield* Effect.acquireRelease(
          Effect.sync(() => open(address, recvId, (host) => UtpConnection.connect(host, recvId, randomU16(), { receiveWindow }))),
          (entry) => Effect.sync(() => entry.duplex.destroy())
        )
        const connection = entry.duplex.connection
        yield* Effect.async<void, PeerError>((resume) => {
          entry.onConnected = () => {
            entry.onConnected = undefined
            if (connection.state === "Connected") return resume(Effect.void)
            const reset = connection.error?.reason === "Reset"
            resume(Effect.fail(new PeerError({ peer, reason: reset ? "ConnectionRefused" : "ConnectTimeout" })))
          }
          return Effect.sync(() => {
            entry.onConnected = undefined
          })
        }).pipe(
          Effect.timeoutFail({
            duration: dialOptions.timeout ?? defaultDialTimeout,
            onTimeout: () => new PeerError({ peer, reason: "ConnectTimeout" })
          }),
          Effect.onError(() => Effect.sync(() => entry.duplex.destroy()))
        )
        return entry.duplex as Duplex
      })
    }

    const listen = (listenOptions: ListenOptions): Effect.Effect<Listening, ListenError, Scope.Scope> =>
      Effect.gen(function* () {
        const fail = (code: string) => new ListenError({ host: listenOptions.host, port: listenOptions.port, cause: systemError(code) })
        if (listenOptions.port !== 0 && listenOptions.port !== socket.port) return yield* fail("EADDRNOTAVAIL")
        if (accepting !== undefined) return yield* fail("EADDRINUSE")
        const queue = yield* acceptQueue
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            accepting = queue
          }),
          () => Effect.sync(() => {
            accepting = undefined
          })
        )
        return { host: socket.host, port: socket.port, connections: Stream.fromQueue(queue) }
      })

    return { dial, listen }
  })

/**
 * `Utp.make(socket, options)`: a Transport doing uTP on a socket that other protocols may share
 * (it takes only uTP datagrams). `Utp.layer(bind)`: binds its own socket through `Udp`.
 */
export const Utp = {
  make,
  layer: (bind: ListenOptions, options: UtpOptions = {}): Layer.Layer<Transport, ListenError, Udp> =>
    Layer.scoped(Transport, Effect.flatMap(Effect.flatMap(Udp, (udp) => udp.bind(bind)), (socket) => make(socket, options)))
}
