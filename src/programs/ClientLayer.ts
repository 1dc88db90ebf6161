/**
 * The live services a torrent runs on, ready made: trackers over HTTP (node:http) and UDP, web
 * seeds over Node's built-in fetch, peers over TCP and uTP (dialled and accepted), files
 * on disk, and SHA-1 on the event loop (measured the cheapest, see src/services/Hasher.ts). The CLI runs on it; library users provide
 * it to `Torrent.start` / `Torrent.run` (and `Download`, `Seed`), or swap any part for their own.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Layer } from "effect"
import { Hasher } from "../services/Hasher.js"
import { PeerWire } from "../services/PeerWire.js"
import { Storage } from "../services/Storage.js"
import { Tracker } from "../services/Tracker.js"
import { DualTransport } from "../services/DualTransport.js"
import { Transport } from "../services/Transport.js"
import { Udp } from "../services/Udp.js"
import { WebSeed } from "../services/WebSeed.js"

/**
 * Trackers over node:http: the first announce is on every download's way to its first peer, and
 * Node's fetch loads its own HTTP stack on first use (measured 70-85 ms against 15-30 ms).
 */
export const TrackerClientLayer = Tracker.Live.pipe(Layer.provide(NodeHttpClient.layer))

/**
 * Web seeds over Node's fetch, which hands redirects back (`redirect: "manual"`) so that the
 * service's own bound on them applies. A fresh fetch layer: the trackers' one is memoised with the
 * context it was built in, which has no such option.
 */
export const WebSeedClientLayer = WebSeed.Live.pipe(
  Layer.provide(Layer.fresh(FetchHttpClient.layer).pipe(Layer.provide(Layer.succeed(FetchHttpClient.RequestInit, { redirect: "manual" }))))
)

const over = (transport: Layer.Layer<Transport>): Layer.Layer<Tracker | PeerWire | Storage | Transport | Hasher | WebSeed> =>
  Layer.mergeAll(TrackerClientLayer, WebSeedClientLayer, PeerWire.Live, Storage.Live).pipe(Layer.provideMerge(transport), Layer.provideMerge(Hasher.Sync))

/** Peers over TCP and uTP (`DualTransport`: listening on both, dialling TCP first). */
export const layer = over(DualTransport.layer().pipe(Layer.provide(Udp.Live)))

/** Peers over TCP alone: the classic one-peer commands (the course's strict peers speak TCP only). */
export const tcpLayer = over(Transport.Tcp)
