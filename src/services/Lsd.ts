/**
 * Local service discovery (BEP 14) as a service: announce which torrents we take peers for, and
 * hear the peers of the local network announce theirs. The live layer is a UDP socket on the
 * multicast group 239.192.152.143:6771; the test layer is a bus shared by the layers made from
 * one `LsdTestNetwork`, so no datagram leaves the process. Our own datagrams, looped back by
 * the group, carry our cookie and are ignored.
 */
import { createSocket } from "node:dgram"
import { randomBytes } from "node:crypto"
import { Context, Data, Effect, Either, Layer, PubSub, Runtime, type Scope, Stream } from "effect"
import { decodeLsdAnnounce, encodeLsdAnnounce, lsdGroup4, maxLsdInfoHashes } from "../domain/Lsd.js"
import type { PeerAddress } from "../domain/Peer.js"

/** A peer heard announcing a torrent. */
export interface LsdPeer {
  readonly infoHash: Uint8Array
  readonly address: PeerAddress
}

export class LsdUnavailable extends Data.TaggedError("LsdUnavailable")<{ readonly detail: string }> {
  override get message() {
    return `local service discovery unavailable: ${this.detail}`
  }
}

export interface LsdService {
  /** Multicasts that we take peers for `infoHashes` on `port` (several datagrams for many hashes). */
  readonly announce: (infoHashes: ReadonlyArray<Uint8Array>, port: number) => Effect.Effect<void, LsdUnavailable>
  /** Subscribes (for the scope) to the peers heard from now on, one per announced info hash. */
  readonly subscribe: Effect.Effect<Stream.Stream<LsdPeer>, never, Scope.Scope>
}

export class Lsd extends Context.Tag("bt/Lsd")<Lsd, LsdService>() {
  /** The multicast group on the network of `interfaceAddress` (default: the system's choice). */
  static readonly live = (options: { readonly interfaceAddress?: string } = {}): Layer.Layer<Lsd, LsdUnavailable> =>
    Layer.scoped(Lsd, liveLsd(options.interfaceAddress))

  /** An LSD of its own on `host` of a test network: it hears what the network's other layers announce. */
  static readonly test = (network: LsdTestNetwork, host: string): Layer.Layer<Lsd> =>
    Layer.effect(Lsd, Effect.sync(() => busLsd(network, host)))
}

/** What arrived, from whom: the service's one inbound path, live or test. */
interface Datagram {
  readonly bytes: Uint8Array
  readonly from: string
}

/** The peers a datagram names, unless it is not BT-SEARCH or is ours. */
const peersOf = (d: Datagram, cookie: string): ReadonlyArray<LsdPeer> => {
  const decoded = decodeLsdAnnounce(d.bytes)
  if (Either.isLeft(decoded) || decoded.right.cookie === cookie) return []
  const { port, infoHashes } = decoded.right
  return infoHashes.map((infoHash) => ({ infoHash, address: { host: d.from, port } }))
}

/** Datagrams for `infoHashes`, at most `maxLsdInfoHashes` a datagram. */
const datagramsFor = (infoHashes: ReadonlyArray<Uint8Array>, port: number, cookie: string): ReadonlyArray<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let at = 0; at < infoHashes.length; at += maxLsdInfoHashes) {
    out.push(encodeLsdAnnounce({ port, infoHashes: infoHashes.slice(at, at + maxLsdInfoHashes), cookie }))
  }
  return out
}

const newCookie = () => randomBytes(6).toString("hex")

const service = (
  cookie: string,
  send: (datagram: Uint8Array) => Effect.Effect<void, LsdUnavailable>,
  heard: PubSub.PubSub<Datagram>
): LsdService => ({
  announce: (infoHashes, port) => Effect.forEach(datagramsFor(infoHashes, port, cookie), send, { discard: true }),
  subscribe: Effect.map(Stream.fromPubSub(heard, { scoped: true }), Stream.mapConcat((d) => peersOf(d, cookie)))
})

/** Heard datagrams waiting for slow subscribers; older ones are dropped. */
const heardCapacity = 256

const liveLsd = (interfaceAddress: string | undefined) =>
  Effect.gen(function* () {
    const heard = yield* PubSub.sliding<Datagram>(heardCapacity)
    const socket = yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createSocket>, LsdUnavailable>((resume) => {
        const s = createSocket({ type: "udp4", reuseAddr: true })
        s.once("error", (e) => resume(Effect.fail(new LsdUnavailable({ detail: e.message }))))
        s.bind(lsdGroup4.port, () => {
          try {
            s.addMembership(lsdGroup4.host, interfaceAddress)
            if (interfaceAddress !== undefined) s.setMulticastInterface(interfaceAddress)
            s.setMulticastTTL(1)
            s.setMulticastLoopback(true)
          } catch (e) {
            s.close()
            return resume(Effect.fail(new LsdUnavailable({ detail: e instanceof Error ? e.message : String(e) })))
          }
          s.removeAllListeners("error")
          // A bad datagram or a failed send must not end the socket: both are only logged by Node otherwise.
          s.on("error", () => undefined)
          resume(Effect.succeed(s))
        })
      }),
      (s) => Effect.sync(() => s.close())
    )
    // A sliding PubSub never waits: publishing from the socket's callback completes at once.
    const publish = Runtime.runSync(yield* Effect.runtime<never>())
    socket.on("message", (bytes, rinfo) => {
      if (bytes.length <= 2048) publish(PubSub.publish(heard, { bytes: new Uint8Array(bytes), from: rinfo.address }))
    })
    const send = (datagram: Uint8Array) =>
      Effect.async<void, LsdUnavailable>((resume) => {
        socket.send(datagram, lsdGroup4.port, lsdGroup4.host, (e) =>
          resume(e === null || e === undefined ? Effect.void : Effect.fail(new LsdUnavailable({ detail: e.message }))))
      })
    return service(newCookie(), send, heard)
  })

/** The in-memory stand-in for a local network's multicast group. */
export interface LsdTestNetwork {
  readonly group: PubSub.PubSub<Datagram>
}

export const makeLsdTestNetwork: Effect.Effect<LsdTestNetwork> = Effect.map(PubSub.sliding<Datagram>(heardCapacity), (group) => ({ group }))

const busLsd = (network: LsdTestNetwork, host: string): LsdService =>
  service(newCookie(), (bytes) => Effect.asVoid(PubSub.publish(network.group, { bytes, from: host })), network.group)
