/**
 * A simulated network in memory: hosts with their own addresses, links with bandwidth, latency
 * and loss, and connections that are reliable in-order byte streams with flow control. Each host
 * is a `Transport`, so PeerWire and everything above it run on it unchanged: for tests, and for
 * simulating swarms.
 *
 * Everything is timed by Effect's `Clock`: under `TestClock` a test advances time with
 * `TestClock.adjust` and the run is deterministic (loss comes from a seeded generator); with the
 * live clock it runs in real time. Buffers are bounded: a receiver holds at most `window` unread
 * bytes, and a sender's `write` asks to wait once `highWaterMark` bytes are unsent or in flight.
 */
import { type Clock, type Context, Duration, Effect, FiberSet, Queue, type Scope, Stream } from "effect"
import { formatPeer, type PeerAddress } from "../domain/Peer.js"
import { seededRandom } from "../domain/SeededRandom.js"
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
  type Transport
} from "./Transport.js"

export interface LinkOptions {
  /** Bytes per second, each way; default unlimited. */
  readonly bandwidth?: number
  /** One way; default 0. */
  readonly latency?: Duration.DurationInput
  /**
   * Share of segments (0..1) lost and retransmitted: such a segment arrives max(200 ms, 2 x latency)
   * late and holds up what follows it. Default 0.
   */
  readonly loss?: number
}

export interface MemoryNetworkOptions {
  /** The properties of every link not set with `link`. */
  readonly link?: LinkOptions
  /** Seeds the loss generator; default 1. */
  readonly seed?: number
  /** Unread bytes a connection buffers before the sender must stop; default 1 MiB. */
  readonly window?: number
  /** Unsent plus in-flight bytes at which `write` returns false; default 1 MiB. */
  readonly highWaterMark?: number
}

/** One simulated host: a Transport that dials from, and listens on, its own address. */
export interface MemoryHost extends Context.Tag.Service<Transport> {
  readonly address: string
}

export interface MemoryNetwork {
  /** The host with this address (e.g. "127.0.0.2"), created on first use. */
  readonly host: (address: string) => MemoryHost
  /** Sets the link between two hosts (both ways); connections use it from their next segment on. */
  readonly link: (a: string, b: string, options: LinkOptions) => Effect.Effect<void>
  /**
   * The host goes down: its connections are destroyed (the other ends see them close one latency
   * later), and until `reconnect`, dials to or from it time out. Its listeners stay.
   */
  readonly disconnect: (address: string) => Effect.Effect<void>
  readonly reconnect: (address: string) => Effect.Effect<void>
}

interface LinkSettings {
  readonly bandwidth: number
  readonly latencyMillis: number
  readonly loss: number
}

/** Bytes a segment carries at most: the unit of pacing and of loss. */
const segmentSize = 16 * 1024
const minRetransmitMillis = 200
const firstEphemeralPort = 49152

const settings = (options: LinkOptions | undefined): LinkSettings => ({
  bandwidth: options?.bandwidth ?? Infinity,
  latencyMillis: Duration.toMillis(Duration.decode(options?.latency ?? 0)),
  loss: options?.loss ?? 0
})

const sleepMillis = (millis: number): Effect.Effect<void> => (millis > 0 ? Effect.sleep(Duration.millis(millis)) : Effect.void)


/** Wakes one waiting fiber when its condition may have changed. */
class Signal {
  private waiter: (() => void) | undefined = undefined
  /** Resolves once `ready()` holds, checked now and at each `notify`. */
  until(ready: () => boolean): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const check = () => {
        if (!ready()) return
        this.waiter = undefined
        resume(Effect.void)
      }
      this.waiter = check
      check()
      return Effect.sync(() => {
        this.waiter = undefined
      })
    })
  }
  notify() {
    this.waiter?.()
  }
}

/** A segment on the wire; `bytes` undefined is the end of the stream (the sender closed). */
interface Segment {
  readonly bytes: Uint8Array | undefined
  readonly arrival: number
}

/**
 * One direction of a connection: the sender's queue, the wire, the receiver's buffer. Sending is
 * synchronous (at each write, and when the receiver's window opens): a segment gets its departure
 * time from the bandwidth and its arrival time from the latency (and loss) at once. Only arrival
 * waits on the clock, in `deliver`.
 */
class Pipe {
  readonly unsent: Array<Uint8Array> = []
  unsentBytes = 0
  readonly inFlight: Array<Segment> = []
  inFlightBytes = 0
  readonly buffered: Array<Uint8Array> = []
  bufferedBytes = 0
  /** The sender closed: the end follows what is in flight. */
  finishing = false
  /** Nothing more moves: the end was delivered, or the receiver is gone. */
  stopped = false
  /** When the sender's side of the link is free again (bandwidth pacing). */
  private nextDeparture = 0
  private lastArrival = 0
  readonly arrived = new Signal()

  constructor(
    readonly window: number,
    private readonly random: () => number,
    private readonly link: () => LinkSettings,
    private readonly clock: Clock.Clock
  ) {}

  /** Puts unsent bytes on the wire as far as the receiver's window allows, then the end if the sender closed. */
  send() {
    if (this.stopped) return
    const now = this.clock.unsafeCurrentTimeMillis()
    const { bandwidth, latencyMillis, loss } = this.link()
    const departAt = (length: number) => {
      this.nextDeparture = Math.max(this.nextDeparture, now) + (length * 1000) / bandwidth
      const lost = length > 0 && loss > 0 && this.random() < loss
      const late = lost ? Math.max(minRetransmitMillis, 2 * latencyMillis) : 0
      // Whole milliseconds: a clock of whole milliseconds must reach the arrival, or delivery would spin.
      this.lastArrival = Math.max(this.lastArrival, Math.ceil(this.nextDeparture + latencyMillis + late))
      return this.lastArrival
    }
    const before = this.inFlight.length
    for (let room = this.room; this.unsentBytes > 0 && room > 0; room = this.room) {
      const bytes = this.takeUnsent(Math.min(segmentSize, room))
      this.inFlightBytes += bytes.length
      this.inFlight.push({ bytes, arrival: departAt(bytes.length) })
    }
    if (this.finishing && this.unsentBytes === 0) {
      this.finishing = false
      this.inFlight.push({ bytes: undefined, arrival: departAt(0) })
    }
    if (this.inFlight.length > before) this.arrived.notify()
  }

  get room() {
    return this.window - this.bufferedBytes - this.inFlightBytes
  }

  /** Up to `max` bytes off the head of the unsent queue. */
  private takeUnsent(max: number): Uint8Array {
    const head = this.unsent[0]!
    if (head.length <= max) {
      this.unsent.shift()
      this.unsentBytes -= head.length
      return head
    }
    this.unsent[0] = head.subarray(max)
    this.unsentBytes -= max
    return head.subarray(0, max)
  }

  /** See `Duplex.read`. */
  read(size: number | undefined, ended: boolean): Uint8Array | null {
    if (this.bufferedBytes === 0 || (size !== undefined && this.bufferedBytes < size && !ended)) return null
    const want = Math.min(size ?? this.buffered[0]!.length, this.bufferedBytes)
    const head = this.buffered[0]!
    let bytes: Uint8Array
    if (head.length > want) {
      bytes = head.subarray(0, want)
      this.buffered[0] = head.subarray(want)
    } else if (head.length === want) {
      bytes = head
      this.buffered.shift()
    } else {
      bytes = new Uint8Array(want)
      for (let at = 0; at < want;) {
        const chunk = this.buffered[0]!
        const n = Math.min(chunk.length, want - at)
        bytes.set(chunk.subarray(0, n), at)
        at += n
        if (n === chunk.length) this.buffered.shift()
        else this.buffered[0] = chunk.subarray(n)
      }
    }
    this.bufferedBytes -= want
    this.send() // the window opened
    return bytes
  }

  stop() {
    this.stopped = true
    this.unsent.length = 0
    this.unsentBytes = 0
    this.arrived.notify()
  }
}

/** One end of a simulated connection. */
class MemoryDuplex implements Duplex {
  readonly failure: PeerError | undefined = undefined
  needsDrain = false
  closed = false
  private peerEnded = false
  private readonly handlers: Record<DuplexEvent, Set<() => void>> = { readable: new Set(), drain: new Set(), close: new Set() }

  constructor(
    readonly remote: PeerAddress,
    readonly inbound: Pipe,
    readonly outbound: Pipe,
    private readonly highWaterMark: number,
    private readonly onClose: () => void
  ) {}

  read(size?: number) {
    return this.inbound.read(size, this.readEnded)
  }
  get readableLength() {
    return this.inbound.bufferedBytes
  }
  get readEnded() {
    return this.peerEnded || this.closed
  }
  write(bytes: Uint8Array) {
    if (this.closed) return false
    if (this.outbound.stopped) {
      // the other end is gone and its close is on the way: nothing more is sent
      this.needsDrain = true
      return false
    }
    if (bytes.length > 0) {
      this.outbound.unsent.push(bytes)
      this.outbound.unsentBytes += bytes.length
      this.outbound.send()
    }
    if (this.outbound.unsentBytes + this.outbound.inFlightBytes >= this.highWaterMark) this.needsDrain = true
    return !this.needsDrain
  }
  on(event: DuplexEvent, f: () => void) {
    this.handlers[event].add(f)
  }
  off(event: DuplexEvent, f: () => void) {
    this.handlers[event].delete(f)
  }
  emit(event: DuplexEvent) {
    for (const f of [...this.handlers[event]]) f()
  }
  /** Closes this end: unsent bytes are dropped, what is in flight still arrives, then the end. */
  destroy() {
    if (this.closed) return
    this.close()
    this.outbound.unsent.length = 0
    this.outbound.unsentBytes = 0
    this.outbound.finishing = true
    this.outbound.send()
    this.inbound.stop()
    // like node, 'close' comes after the call, not inside it
    queueMicrotask(() => this.emit("close"))
  }
  /** The other end's close arrived. */
  ended() {
    if (this.closed) return
    this.peerEnded = true
    this.close()
    this.outbound.stop()
    this.emit("readable")
    this.emit("close")
  }
  /** In-flight bytes arrived at the other end: below the high-water mark, the writer may go on. */
  delivered() {
    if (this.needsDrain && this.outbound.unsentBytes + this.outbound.inFlightBytes < this.highWaterMark) {
      this.needsDrain = false
      this.emit("drain")
    }
  }
  private close() {
    this.closed = true
    this.needsDrain = false
    this.onClose()
  }
}

/** Hands a direction's segments to the receiver when they arrive, all that are due at once. */
const deliver = (pipe: Pipe, clock: Clock.Clock, sender: MemoryDuplex, receiver: MemoryDuplex): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (true) {
      yield* pipe.arrived.until(() => pipe.stopped || pipe.inFlight.length > 0)
      if (pipe.stopped) return
      // Up to a whole millisecond: a jittered sleep elsewhere can leave the clock a rounding error short
      // of the arrival, and a Duration below a nanosecond sleeps for nothing (this loop would spin).
      yield* sleepMillis(Math.ceil(pipe.inFlight[0]!.arrival - clock.unsafeCurrentTimeMillis()))
      const now = clock.unsafeCurrentTimeMillis()
      let got = 0
      while (!pipe.stopped && pipe.inFlight.length > 0 && pipe.inFlight[0]!.arrival <= now) {
        const { bytes } = pipe.inFlight.shift()!
        if (bytes === undefined) {
          pipe.stopped = true
          if (got > 0) receiver.emit("readable")
          return receiver.ended()
        }
        pipe.inFlightBytes -= bytes.length
        pipe.buffered.push(bytes)
        pipe.bufferedBytes += bytes.length
        got += bytes.length
      }
      if (got === 0) continue
      receiver.emit("readable")
      sender.delivered()
    }
  })

interface HostState {
  readonly address: string
  readonly connections: Set<MemoryDuplex>
  nextPort: number
  down: boolean
}

const linkKey = (a: string, b: string) => (a < b ? `${a} ${b}` : `${b} ${a}`)

/** The network's state, as dialling and listening see it. */
interface World {
  readonly hosts: ReadonlyMap<string, HostState>
  readonly listeners: Map<string, Queue.Queue<Duplex>>
  readonly linkBetween: (a: string, b: string) => LinkSettings
  /** A connected pair: the dialling end (on `from`) and the accepted end (on `to`, at `port`). */
  readonly connectPair: (from: HostState, to: HostState, port: number) => readonly [MemoryDuplex, MemoryDuplex]
}

/** Dials take a round trip of the link latency (refused ones too); an unreachable host never answers. */
const dialFrom = (world: World, from: HostState) => (address: PeerAddress, dialOptions: DialOptions = {}) => {
  const peer = formatPeer(address)
  const attempt = Effect.gen(function* () {
    const to = world.hosts.get(address.host)
    if (to === undefined || to.down || from.down) return yield* Effect.never
    const { latencyMillis } = world.linkBetween(from.address, to.address)
    yield* sleepMillis(latencyMillis)
    const queue = world.listeners.get(formatPeer({ host: to.address, port: address.port }))
    if (queue === undefined) {
      yield* sleepMillis(latencyMillis)
      return yield* new PeerError({ peer, reason: "ConnectionRefused" })
    }
    const [dialling, accepted] = yield* Effect.acquireRelease(
      Effect.sync(() => world.connectPair(from, to, address.port)),
      ([dialling]) => Effect.sync(() => dialling.destroy())
    )
    if (!Queue.unsafeOffer(queue, accepted)) accepted.destroy()
    yield* sleepMillis(latencyMillis)
    return dialling as Duplex
  })
  return attempt.pipe(
    Effect.timeoutFail({
      duration: dialOptions.timeout ?? defaultDialTimeout,
      onTimeout: () => new PeerError({ peer, reason: "ConnectTimeout" })
    })
  )
}

const listenOn = (world: World, host: HostState) => (listen: ListenOptions): Effect.Effect<Listening, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const fail = (code: string) => ListenError.ofCode(listen, code)
    if (listen.host !== host.address && listen.host !== "0.0.0.0" && listen.host !== "::") return yield* fail("EADDRNOTAVAIL")
    const port = listen.port === 0 ? host.nextPort++ : listen.port
    const key = formatPeer({ host: host.address, port })
    if (world.listeners.has(key)) return yield* fail("EADDRINUSE")
    const queue = yield* acceptQueue
    yield* Effect.acquireRelease(
      Effect.sync(() => world.listeners.set(key, queue)),
      () => Effect.sync(() => world.listeners.delete(key))
    )
    return { host: listen.host, port, connections: Stream.fromQueue(queue) }
  })

const make = (options: MemoryNetworkOptions = {}): Effect.Effect<MemoryNetwork, never, Scope.Scope> =>
  Effect.gen(function* () {
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const clock = yield* Effect.clock
    const defaults = settings(options.link)
    const window = options.window ?? 1024 * 1024
    const highWaterMark = options.highWaterMark ?? 1024 * 1024
    const random = seededRandom(options.seed ?? 1)
    const hosts = new Map<string, HostState>()
    const links = new Map<string, LinkSettings>()
    const listeners = new Map<string, Queue.Queue<Duplex>>()
    const linkBetween = (a: string, b: string) => links.get(linkKey(a, b)) ?? defaults

    const state = (address: string): HostState => {
      const known = hosts.get(address)
      if (known !== undefined) return known
      const created: HostState = { address, connections: new Set(), nextPort: firstEphemeralPort, down: false }
      hosts.set(address, created)
      return created
    }

    const connectPair: World["connectPair"] = (from, to, port) => {
      const link = () => linkBetween(from.address, to.address)
      const forth = new Pipe(window, seededRandom(Math.floor(random() * 2 ** 32)), link, clock)
      const back = new Pipe(window, seededRandom(Math.floor(random() * 2 ** 32)), link, clock)
      const dialling: MemoryDuplex = new MemoryDuplex({ host: to.address, port }, back, forth, highWaterMark, () =>
        from.connections.delete(dialling))
      const accepted: MemoryDuplex = new MemoryDuplex({ host: from.address, port: from.nextPort++ }, forth, back, highWaterMark, () =>
        to.connections.delete(accepted))
      from.connections.add(dialling)
      to.connections.add(accepted)
      run(deliver(forth, clock, dialling, accepted))
      run(deliver(back, clock, accepted, dialling))
      return [dialling, accepted]
    }
    const world: World = { hosts, listeners, linkBetween, connectPair }

    return {
      host: (address) => {
        const host = state(address)
        return { address, dial: dialFrom(world, host), listen: listenOn(world, host) }
      },
      link: (a, b, link) => Effect.sync(() => void links.set(linkKey(a, b), settings(link))),
      disconnect: (address) =>
        Effect.sync(() => {
          const host = state(address)
          host.down = true
          for (const connection of [...host.connections]) connection.destroy()
        }),
      reconnect: (address) => Effect.sync(() => void (state(address).down = false))
    }
  })

/** `MemoryNetwork.make(options)`; a host's Transport is `Layer.succeed(Transport, network.host(address))`. */
export const MemoryNetwork = { make }
