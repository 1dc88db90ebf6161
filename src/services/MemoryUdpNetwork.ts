/**
 * Simulated datagrams in memory: hosts with their own addresses, each a `Udp` service, and links
 * with latency, jitter, bandwidth, a bounded bottleneck queue and loss. For DHT swarms and uTP
 * congestion tests.
 *
 * Timed by Effect's `Clock`, like `MemoryNetwork`: under `TestClock` a run is deterministic (loss
 * and jitter come from a seeded generator). A link is a FIFO bottleneck: a datagram waits for the
 * ones before it to be sent at `bandwidth`, then takes `latency` (plus jitter, which may reorder);
 * one that would wait longer than `queue` is dropped, as a full router queue does.
 */
import { type Context, Duration, Effect, FiberSet, Runtime, type Scope } from "effect"
import { formatPeer } from "../domain/Peer.js"
import { seededRandom } from "../domain/SeededRandom.js"
import { ListenError, type ListenOptions } from "./Transport.js"
import { type DatagramSocket, makeDispatch, shareBinds, type Udp } from "./Udp.js"

export interface UdpLinkOptions {
  /** One way; default 0. */
  readonly latency?: Duration.DurationInput
  /** Up to this much more, at random per datagram (datagrams may overtake each other); default 0. */
  readonly jitter?: Duration.DurationInput
  /** Bytes per second, each way; default unlimited. */
  readonly bandwidth?: number
  /** The longest a datagram waits behind others before it is dropped; default 100 ms. */
  readonly queue?: Duration.DurationInput
  /** Share of datagrams (0..1) lost; default 0. */
  readonly loss?: number
}

export interface MemoryUdpNetworkOptions {
  /** The properties of every link not set with `link`. */
  readonly link?: UdpLinkOptions
  /** Seeds the loss and jitter generator; default 1. */
  readonly seed?: number
}

export interface MemoryUdpNetwork {
  /** The host with this address (e.g. "127.0.0.2"), created on first use. */
  readonly host: (address: string) => Context.Tag.Service<Udp>
  /** Sets the link between two hosts (both ways), from the next datagram on. */
  readonly link: (a: string, b: string, options: UdpLinkOptions) => Effect.Effect<void>
  /** The host goes down: what it sends and what is sent to it is lost until `reconnect`. */
  readonly disconnect: (address: string) => Effect.Effect<void>
  readonly reconnect: (address: string) => Effect.Effect<void>
  /** Datagrams delivered and dropped so far (by loss, a full queue, or nobody bound). */
  readonly counts: () => { readonly delivered: number; readonly dropped: number }
}

interface LinkSettings {
  readonly latencyMillis: number
  readonly jitterMillis: number
  readonly bandwidth: number
  readonly queueMillis: number
  readonly loss: number
}

const millisOf = (d: Duration.DurationInput | undefined, fallback: number) => (d === undefined ? fallback : Duration.toMillis(Duration.decode(d)))

const settings = (o: UdpLinkOptions | undefined): LinkSettings => ({
  latencyMillis: millisOf(o?.latency, 0),
  jitterMillis: millisOf(o?.jitter, 0),
  bandwidth: o?.bandwidth ?? Infinity,
  queueMillis: millisOf(o?.queue, 100),
  loss: o?.loss ?? 0
})

const firstEphemeralPort = 49152

const linkKey = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`)

/** The links' properties and each direction's bottleneck: when a datagram sent now arrives. */
class UdpLinks {
  private readonly links = new Map<string, LinkSettings>()
  /** When each directed link's bottleneck is free again (ms). */
  private readonly busyUntil = new Map<string, number>()

  constructor(private readonly defaults: LinkSettings, private readonly random: () => number) {}

  set(a: string, b: string, options: UdpLinkOptions) {
    this.links.set(linkKey(a, b), settings(options))
  }

  /** The arrival time (whole ms) of a datagram of `size` bytes sent at `now`, or undefined when it is lost. */
  arrival(from: string, to: string, size: number, now: number): number | undefined {
    const link = this.links.get(linkKey(from, to)) ?? this.defaults
    const direction = `${from}>${to}`
    const start = Math.max(now, this.busyUntil.get(direction) ?? 0)
    if (start - now > link.queueMillis) return undefined
    const sent = start + (link.bandwidth === Infinity ? 0 : (size * 1000) / link.bandwidth)
    this.busyUntil.set(direction, sent)
    if (link.loss > 0 && this.random() < link.loss) return undefined
    // Whole milliseconds: TestClock wakes sleepers on exact times.
    return Math.ceil(sent + link.latencyMillis + (link.jitterMillis > 0 ? this.random() * link.jitterMillis : 0))
  }
}


export const makeMemoryUdpNetwork = (
  options: MemoryUdpNetworkOptions = {}
): Effect.Effect<MemoryUdpNetwork, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const clock = yield* Effect.clock
    const deliveries = yield* FiberSet.make()
    const links = new UdpLinks(settings(options.link), seededRandom(options.seed ?? 1))
    const sockets = new Map<string, (d: { bytes: Uint8Array; from: { host: string; port: number } }) => void>()
    const down = new Set<string>()
    /** The deliveries due at each instant (ms), in the order sent. */
    const arrivals = new Map<number, Array<() => void>>()
    const counts = { delivered: 0, dropped: 0 }
    let nextPort = firstEphemeralPort
    /** One Udp per host, so that its binds of one port share a socket, as on the live network. */
    const hostServices = new Map<string, Context.Tag.Service<Udp>>()

    const send = (fromHost: string, fromPort: number, bytes: Uint8Array, to: { host: string; port: number }) => {
      const now = clock.unsafeCurrentTimeMillis()
      const at = down.has(fromHost) || down.has(to.host) ? undefined : links.arrival(fromHost, to.host, bytes.length, now)
      if (at === undefined) return void counts.dropped++
      const copy = bytes.slice()
      const deliver = () => {
        const handler = sockets.get(formatPeer(to))
        if (handler === undefined || down.has(to.host)) return void counts.dropped++
        counts.delivered++
        handler({ bytes: copy, from: { host: fromHost, port: fromPort } })
      }
      // One sleeper per arrival instant, not per datagram: TestClock wakes sleepers one by one, slowly.
      const due = arrivals.get(at)
      if (due !== undefined) return void due.push(deliver)
      const batch = [deliver]
      arrivals.set(at, batch)
      const run = Effect.sync(() => {
        arrivals.delete(at)
        for (const f of batch) f()
      })
      const wait = at - now
      runFork(FiberSet.run(deliveries, wait > 0 ? Effect.zipRight(Effect.sleep(Duration.millis(wait)), run) : run))
    }

    const bind = (host: string) => (listen: ListenOptions): Effect.Effect<DatagramSocket, ListenError, Scope.Scope> =>
      Effect.gen(function* () {
        const port = listen.port === 0 ? nextPort++ : listen.port
        const key = formatPeer({ host, port })
        if (sockets.has(key)) return yield* Effect.fail(ListenError.ofCode(listen, "EADDRINUSE"))
        const { dispatch, subscribe } = makeDispatch()
        yield* Effect.acquireRelease(
          Effect.sync(() => sockets.set(key, dispatch)),
          () => Effect.sync(() => sockets.delete(key))
        )
        return { host, port, send: (bytes, to) => send(host, port, bytes, to), subscribe }
      })

    return {
      host: (address) => hostServices.get(address) ?? hostServices.set(address, shareBinds({ bind: bind(address) })).get(address)!,
      link: (a, b, link) => Effect.sync(() => links.set(a, b, link)),
      disconnect: (address) => Effect.sync(() => void down.add(address)),
      reconnect: (address) => Effect.sync(() => void down.delete(address)),
      counts: () => ({ ...counts })
    }
  })
