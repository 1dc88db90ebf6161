/**
 * The live services a torrent runs on, ready made: trackers over HTTP (Node's built-in fetch)
 * and UDP, peers over TCP (dialled and accepted), files on disk, and SHA-1 on the event loop
 * (measured the cheapest, see src/services/Hasher.ts). The CLI runs on it; library users provide
 * it to `Torrent.start` / `Torrent.run` (and `Download`, `Seed`), or swap any part for their own.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { Layer } from "effect"
import { Hasher } from "../services/Hasher.js"
import { PeerWire } from "../services/PeerWire.js"
import { Storage } from "../services/Storage.js"
import { Tracker } from "../services/Tracker.js"
import { Transport } from "../services/Transport.js"

/** Trackers over Node's built-in fetch (not a bundled undici: a third of the CLI's start-up). */
export const TrackerClientLayer = Tracker.Live.pipe(Layer.provide(FetchHttpClient.layer))

export const layer: Layer.Layer<Tracker | PeerWire | Storage | Transport | Hasher> = Layer.mergeAll(
  TrackerClientLayer,
  PeerWire.Live,
  Storage.Live
).pipe(Layer.provideMerge(Transport.Tcp), Layer.provideMerge(Hasher.Sync))
