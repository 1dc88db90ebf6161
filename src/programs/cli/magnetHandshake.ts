import * as Command from "@effect/cli/Command"
import { Console, Effect, Layer } from "effect"
import { toHex } from "../../domain/Bytes.js"
import { parseMagnet } from "../../domain/Magnet.js"
import { PeerWire } from "../../services/PeerWire.js"
import { magnetHandshake } from "../Metadata.js"
import { magnetArg, newPeerId, portOption } from "./clientOptions.js"
import { TrackerClientLayer } from "./layers.js"

/** What the metadata commands use: trackers and peers only (no storage, no hashing workers). */
export const MagnetLayer = Layer.mergeAll(TrackerClientLayer, PeerWire.Tcp)

/**
 * `magnet_handshake <magnet>`: announces, connects to a peer with the extension bit set, exchanges
 * extension handshakes and prints the peer's id and its ut_metadata id (the classic contract).
 */
export const magnetHandshakeCommand = Command.make("magnet_handshake", { magnet: magnetArg, port: portOption }, ({ magnet, port }) =>
  Effect.gen(function* () {
    const link = yield* parseMagnet(magnet)
    const result = yield* magnetHandshake(link, { peerId: newPeerId(), port })
    yield* Console.log(`Peer ID: ${toHex(result.peerId)}\nPeer Metadata Extension ID: ${result.metadataExtensionId}`)
  }).pipe(Effect.provide(MagnetLayer))
).pipe(Command.withDescription("Handshake with a peer of a magnet link's swarm and print its ut_metadata extension id"))
