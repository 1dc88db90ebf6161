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
    const handlers = this.handlers[event]
    // per packet: the usual single listener is called without copying the set
    if (handlers.size === 1) for (const f of handlers) return f()
    for (const f of [...handlers]) f()
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
  /** Losses that shrank the window: once per window of data, however many packets it lost. */
  readonly lossEvents: number
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
    timeouts: c.timeouts,
    lossEvents: c.lossEvents
  }
}

interface Entry {
  readonly duplex: UtpDuplex
  /** Set while a dial waits for the peer's answer. */
  onConnected: (() => void) | undefined
}

const keyOf = (from: PeerAddress, connectionId: number) => `${from.host}:${from.port}#${connectionId}`

const randomU16 = () => Math.floor(Math.random() * 0x10000)

/**
 * The connections on one socket, by remote address and the connection id their packets carry;
 * it routes datagrams to them, answers SYNs while listening, and sends RESET for strangers.
 */
class UtpEndpoint {
  readonly connections = new Map<string, Entry>()
  accepting: Queue.Queue<Duplex> | undefined = undefined
  /**
   * Connections owing an ack: it waits until the datagrams that arrived together are in (node
   * hands them over one callback each, within one turn of the event loop), one ack per burst.
   */
  private readonly owingAcks = new Set<UtpConnection>()
  private readonly flushAcks = () => {
    for (const connection of this.owingAcks) connection.flushAck()
    this.owingAcks.clear()
  }

  constructor(
    readonly socket: DatagramSocket,
    readonly nowMicros: () => number,
    readonly receiveWindow: number,
    private readonly highWaterMark: number
  ) {}

  /** Registers a connection under its receive id; `start` makes it, sending its first packet. */
  open(remote: PeerAddress, recvId: number, start: (host: UtpHost) => UtpConnection): Entry {
    const key = keyOf(remote, recvId)
    const duplex = new UtpDuplex(remote, this.highWaterMark)
    const entry: Entry = { duplex, onConnected: undefined }
    const host: UtpHost = {
      nowMicros: this.nowMicros,
      transmit: (datagram) => this.socket.send(datagram, remote),
      connected: () => entry.onConnected?.(),
      ackLater: () => {
        if (this.owingAcks.size === 0) setImmediate(this.flushAcks)
        this.owingAcks.add(duplex.connection)
      },
      readable: () => duplex.emit("readable"),
      writable: () => duplex.writable(),
      closed: () => duplex.closedNow(),
      finished: () => {
        if (this.connections.get(key) === entry) this.connections.delete(key)
        entry.onConnected?.()
      }
    }
    this.connections.set(key, entry)
    duplex.connection = start(host)
    return entry
  }

  onDatagram(bytes: Uint8Array, from: PeerAddress) {
    const p = parseDatagram(bytes)
    if (p === undefined) return
    const entry = this.connections.get(keyOf(from, p.connectionId))
    if (entry !== undefined) return entry.duplex.connection.receive(p)
    if (p.type === PacketType.Syn) return this.incomingSyn(from, p)
    if (p.type !== PacketType.Reset) this.resetStray(from, p)
  }

  private incomingSyn(from: PeerAddress, syn: UtpPacket) {
    const recvId = (syn.connectionId + 1) & 0xffff
    const known = this.connections.get(keyOf(from, recvId))
    if (known !== undefined) return known.duplex.connection.receive(syn)
    if (this.accepting === undefined) return this.refuse(from, syn)
    const entry = this.open(from, recvId, (host) => UtpConnection.accept(host, syn, randomU16(), { receiveWindow: this.receiveWindow }))
    if (!Queue.unsafeOffer(this.accepting, entry.duplex)) entry.duplex.connection.reset()
  }

  /** Refuses a SYN: the RESET carries the dialler's receive id, the SYN's own. */
  private refuse(to: PeerAddress, syn: UtpPacket) {
    this.sendReset(to, syn.connectionId, randomU16(), syn.seqNr)
  }

  /**
   * A packet of no connection of ours (one of a process before ours on this port, say) gets a
   * RESET, so that the peer drops that connection now rather than at its timeout (libtorrent
   * refuses our new connections from this address until then). The peer finds its connection by
   * its receive id, the packet's id plus or minus one (as it or we dialled): one RESET goes to
   * each. libtorrent ignores a RESET numbered past what it received (the packet's ack), or acking
   * what it has not sent: a FIN does not advance its sequence number, so the packet before is acked.
   */
  private resetStray(to: PeerAddress, p: UtpPacket) {
    for (const id of [p.connectionId + 1, p.connectionId - 1]) this.sendReset(to, id & 0xffff, p.ackNr, (p.seqNr - 1) & 0xffff)
  }

  private sendReset(to: PeerAddress, connectionId: number, seqNr: number, ackNr: number) {
    const reset = encodePacket({
      type: PacketType.Reset,
      connectionId,
      timestampMicros: this.nowMicros(),
      timestampDifferenceMicros: 0,
      windowSize: 0,
      seqNr,
      ackNr,
      payload: new Uint8Array(0)
    })
    this.socket.send(reset, to)
  }

  tick() {
    for (const entry of [...this.connections.values()]) entry.duplex.connection.tick()
  }

  resetAll() {
    for (const entry of [...this.connections.values()]) entry.duplex.connection.reset()
  }
}

/** Waits for the peer's answer to the SYN: ConnectionRefused on a RESET, ConnectTimeout without one. */
const answered = (entry: Entry, peer: string): Effect.Effect<void, PeerError> =>
  Effect.async<void, PeerError>((resume) => {
    const connection = entry.duplex.connection
    entry.onConnected = () => {
      entry.onConnected = undefined
      if (connection.state === "Connected") return resume(Effect.void)
      const reset = connection.error?.reason === "Reset"
      resume(Effect.fail(new PeerError({ peer, reason: reset ? "ConnectionRefused" : "ConnectTimeout" })))
    }
    return Effect.sync(() => {
      entry.onConnected = undefined
    })
  })

const dialFrom = (endpoint: UtpEndpoint) => (address: PeerAddress, options: DialOptions = {}): Effect.Effect<Duplex, PeerError, Scope.Scope> =>
  Effect.gen(function* () {
    const peer = formatPeer(address)
    let recvId = randomU16()
    while (endpoint.connections.has(keyOf(address, recvId))) recvId = randomU16()
    const { receiveWindow } = endpoint
    const entry = yield* Effect.acquireRelease(
      Effect.sync(() => endpoint.open(address, recvId, (host) => UtpConnection.connect(host, recvId, randomU16(), { receiveWindow }))),
      (entry) => Effect.sync(() => entry.duplex.destroy())
    )
    yield* answered(entry, peer).pipe(
      Effect.timeoutFail({
        duration: options.timeout ?? defaultDialTimeout,
        onTimeout: () => new PeerError({ peer, reason: "ConnectTimeout" })
      }),
      Effect.onError(() => Effect.sync(() => entry.duplex.destroy()))
    )
    return entry.duplex as Duplex
  })

/** Accepts on the endpoint's socket: the port asked for must be 0 or the socket's. */
const listenOn = (endpoint: UtpEndpoint) => (options: ListenOptions): Effect.Effect<Listening, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const { socket } = endpoint
    const fail = (code: string) => ListenError.ofCode(options, code)
    if (options.port !== 0 && options.port !== socket.port) return yield* fail("EADDRNOTAVAIL")
    if (endpoint.accepting !== undefined) return yield* fail("EADDRINUSE")
    const queue = yield* acceptQueue
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        endpoint.accepting = queue
      }),
      () => Effect.sync(() => {
        endpoint.accepting = undefined
      })
    )
    return { host: socket.host, port: socket.port, connections: Stream.fromQueue(queue) }
  })

/** The uTP Transport over `socket`: dials from it and accepts on it (one `listen` at a time). */
const make = (socket: DatagramSocket, options: UtpOptions = {}): Effect.Effect<Transport["Type"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const endpoint = new UtpEndpoint(
      socket,
      () => Number(clock.unsafeCurrentTimeNanos() / 1000n),
      options.receiveWindow ?? 1024 * 1024,
      options.highWaterMark ?? 1024 * 1024
    )
    yield* socket.subscribe(isUtpDatagram, (d) => endpoint.onDatagram(d.bytes, d.from))
    yield* Effect.addFinalizer(() => Effect.sync(() => endpoint.resetAll()))
    const tick = Duration.decode(options.tick ?? Duration.millis(50))
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Clock.sleep(tick), Effect.sync(() => endpoint.tick()))))
    return { dial: dialFrom(endpoint), listen: listenOn(endpoint) }
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
