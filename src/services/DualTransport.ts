/**
 * TCP and uTP as one Transport, the way a torrent client meets its peers: it listens on both (uTP
 * on the UDP socket of the listen port, which the DHT shares) and dials one, then the other.
 *
 * The default order is TCP first: the kernel does TCP's work, so on the paths measured here
 * (loopback, a LAN) it is several times faster and cheaper than uTP in JavaScript, and every
 * classic peer speaks it. A peer that refuses TCP or does not answer it is tried over uTP, and
 * what worked is remembered for that peer's next dial. A peer that took a TCP connection and
 * closed it without sending a byte (libtorrent with TCP off listens and drops) is dialled over uTP
 * first the next time, for a short while only, so that a TCP peer that merely dropped us (one
 * requiring encryption, say) waits little. A peer we were told speaks uTP (`utpFirst`, from a
 * PEX flag) is dialled over uTP first too, as briefly, unless we learned what works for it. uTP
 * dials go out from the listen port's socket, so a transport that does not listen dials TCP alone.
 */
import { Duration, Effect, Layer, type Scope, Stream } from "effect"
import { formatPeer, type PeerAddress } from "../domain/Peer.js"
import {
  defaultDialTimeout,
  type DialOptions,
  type Duplex,
  type Listening,
  type ListenError,
  type ListenOptions,
  type PeerError,
  tcpBytesRead,
  Transport
} from "./Transport.js"
import { Udp } from "./Udp.js"
import { Utp, type UtpOptions } from "./Utp.js"

export type TransportKind = "tcp" | "utp"
/** What a peer's last dial taught: the transport that worked, or that TCP was taken and dropped without a byte. */
export type Learned = TransportKind | "tcp-dropped"

export interface DualTransportOptions {
  /** Which to dial first (default "tcp"); the other is the fallback. */
  readonly first?: TransportKind
  readonly utp?: UtpOptions
}

/** Peers whose working transport is remembered at once. */
const rememberedPeers = 4096

const fallsBack = (e: PeerError) => e.reason === "ConnectionRefused" || e.reason === "ConnectTimeout"
/** How long a uTP dial tried first on a guess waits for the peer's answer (a SYN's round trip). */
const utpProbeTimeout = Duration.millis(1500)

/**
 * Which transport to dial first: what worked for the peer, else uTP when TCP was dropped or the
 * peer said it speaks uTP, else the configured one. `probe`: uTP first on such a guess, to be
 * given up on after a round trip.
 */
export const dialPlan = (
  learned: Learned | undefined,
  utpFirst: boolean,
  configured: TransportKind
): { readonly first: TransportKind; readonly probe: boolean } => {
  if (learned === "tcp" || learned === "utp") return { first: learned, probe: false }
  if (learned === "tcp-dropped" || (utpFirst && configured === "tcp")) return { first: "utp", probe: true }
  return { first: configured, probe: false }
}

export const makeDualTransport = (
  tcp: Transport["Type"],
  udp: Udp["Type"],
  options: DualTransportOptions = {}
): Effect.Effect<Transport["Type"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const worked = new Map<string, Learned>()
    /**
     * uTP on the listen port, while listening: dials go out from it (peers then see the port we
     * announce). Not listening, we dial TCP alone (no socket of our own on a wildcard address).
     */
    let listeningUtp: Transport["Type"] | undefined

    const learn = (key: string, learned: Learned) => {
      if (!worked.has(key) && worked.size >= rememberedPeers) worked.delete(worked.keys().next().value!)
      worked.set(key, learned)
    }
    /** Remembers what worked; a TCP connection closed before its first byte marks the peer `tcp-dropped`. */
    const remember = (key: string, kind: TransportKind) => (duplex: Duplex) =>
      Effect.sync(() => {
        learn(key, kind)
        if (kind === "tcp") duplex.on("close", () => tcpBytesRead(duplex) === 0 && learn(key, "tcp-dropped"))
      })
    const dial = (address: PeerAddress, dialOptions: DialOptions = {}): Effect.Effect<Duplex, PeerError, Scope.Scope> => {
      const utp = listeningUtp
      if (utp === undefined) return tcp.dial(address, dialOptions)
      const key = formatPeer(address)
      const { first, probe } = dialPlan(worked.get(key), dialOptions.utpFirst === true, options.first ?? "tcp")
      const attempt = (kind: TransportKind) =>
        kind === "tcp" ? tcp.dial(address, dialOptions) : utp.dial(address, probe ? { ...dialOptions, timeout: Duration.min(Duration.decode(dialOptions.timeout ?? defaultDialTimeout), utpProbeTimeout) } : dialOptions)
      const second: TransportKind = first === "tcp" ? "utp" : "tcp"
      return attempt(first).pipe(
        Effect.tap(remember(key, first)),
        // When both fail, the first one's error is the one to report (e.g. "connection refused").
        Effect.catchIf(fallsBack, (error) =>
          attempt(second).pipe(Effect.tap(remember(key, second)), Effect.mapError(() => error)))
      )
    }

    const listen = (listenOptions: ListenOptions): Effect.Effect<Listening, ListenError, Scope.Scope> =>
      Effect.gen(function* () {
        const tcpListening = yield* tcp.listen(listenOptions)
        const socket = yield* Effect.either(udp.bind({ host: listenOptions.host, port: tcpListening.port }))
        // The UDP port may be another program's: then this port takes TCP alone.
        if (socket._tag === "Left") return tcpListening
        const utp = yield* Utp.make(socket.right, options.utp)
        const utpListening = yield* utp.listen({ host: listenOptions.host, port: tcpListening.port })
        yield* Effect.acquireRelease(Effect.sync(() => (listeningUtp = utp)), () => Effect.sync(() => (listeningUtp = undefined)))
        return { ...tcpListening, connections: Stream.merge(tcpListening.connections, utpListening.connections) }
      })

    return { dial, listen }
  })

/** TCP (`Transport.Tcp`) and uTP over `Udp`, as one Transport. */
export const DualTransport = {
  layer: (options: DualTransportOptions = {}): Layer.Layer<Transport, never, Udp> =>
    Layer.scoped(
      Transport,
      Effect.gen(function* () {
        const tcp = yield* Effect.provide(Transport, Transport.Tcp)
        return yield* makeDualTransport(tcp, yield* Udp, options)
      })
    )
}
