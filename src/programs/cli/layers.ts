/**
 * The live services the networked commands run on: real trackers over HTTP (undici) and UDP,
 * real TCP peers, files on disk, and SHA-1 off the event loop.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Layer } from "effect"
import { Hasher } from "../../services/Hasher.js"
import { PeerWire } from "../../services/PeerWire.js"
import { Storage } from "../../services/Storage.js"
import { Tracker } from "../../services/Tracker.js"

export const ClientLayer = Layer.mergeAll(
  Tracker.Live.pipe(Layer.provide(NodeHttpClient.layerUndici)),
  PeerWire.Live,
  Storage.Live
).pipe(Layer.provideMerge(Hasher.Sync))
