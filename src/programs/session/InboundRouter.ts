/**
 * One listen port for many torrents: each inbound connection is handshaken here (plain or MSE,
 * whose SKEY is looked up over every registered torrent) and handed to the torrent its info hash
 * names, as a `RoutedPeer` it adopts into its own session scope. A connection for no registered
 * torrent, or for one whose queue is full, is closed.
 */
import { Effect, ExecutionStrategy, Exit, Queue, Scope, Stream } from "effect"
import { toHex } from "../../domain/Bytes.js"
import { req2Hash } from "../../domain/Mse.js"
import { type EncryptionPolicy, type LocalTorrent, PeerWire } from "../../services/PeerWire.js"
import type { Duplex, Listening } from "../../services/Transport.js"
import type { RoutedPeer, SharedListener } from "../torrent/TorrentEvent.js"

/** Handshakes in progress at once; more wait in the listener's backlog. */
const handshakesAtOnce = 64
/** Routed connections a torrent has not taken yet; more are closed. */
const routedBacklog = 16

interface Registration {
  readonly local: LocalTorrent
  readonly peers: Queue.Queue<RoutedPeer>
}

export const makeInboundRouter = (
  listening: Listening,
  options: { readonly encryption?: EncryptionPolicy }
): Effect.Effect<SharedListener, never, PeerWire | Scope.Scope> =>
  Effect.gen(function* () {
    const wire = yield* PeerWire
    const routerScope = yield* Effect.scope
    const registrations = new Map<string, Registration>()
    /** HASH('req2', info hash) (hex) to the info hash, for MSE initiators. */
    const bySkey = new Map<string, Uint8Array>()
    const lookup = (hash: Uint8Array) => registrations.get(toHex(hash))?.local
    const skey = (req2: Uint8Array) => bySkey.get(toHex(req2))

    const route = (duplex: Duplex) =>
      Effect.gen(function* () {
        // A child of the router's scope: a connection nobody adopts still closes with the session.
        const scope = yield* Scope.fork(routerScope, ExecutionStrategy.sequential)
        const close = Scope.close(scope, Exit.void)
        const accepted = yield* wire.accept(duplex, { lookup, skey, ...options }).pipe(Scope.extend(scope), Effect.either)
        if (accepted._tag === "Left") return yield* Effect.zipRight(close, Effect.sync(() => duplex.destroy()))
        const conn = accepted.right
        const peer: RoutedPeer = { remote: duplex.remote, adopt: Effect.as(Effect.addFinalizer(() => close), conn), refuse: close }
        const registration = registrations.get(toHex(conn.infoHash))
        const taken = registration !== undefined && (yield* Queue.offer(registration.peers, peer))
        if (!taken) yield* close
      })
    yield* listening.connections.pipe(Stream.mapEffect(route, { concurrency: handshakesAtOnce, unordered: true }), Stream.runDrain, Effect.forkScoped)

    const register = (infoHash: Uint8Array, local: LocalTorrent) =>
      Effect.gen(function* () {
        const key = toHex(infoHash)
        const peers = yield* Queue.dropping<RoutedPeer>(routedBacklog)
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            registrations.set(key, { local, peers })
            bySkey.set(toHex(req2Hash(infoHash)), infoHash)
          }),
          () =>
            Effect.gen(function* () {
              registrations.delete(key)
              bySkey.delete(toHex(req2Hash(infoHash)))
              for (const left of yield* Queue.takeAll(peers)) yield* left.refuse
              yield* Queue.shutdown(peers)
            })
        )
        return Stream.fromQueue(peers)
      })

    return { host: listening.host, port: listening.port, register }
  })
