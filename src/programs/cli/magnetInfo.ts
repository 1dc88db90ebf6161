import * as Command from "@effect/cli/Command"
import { Console, Effect } from "effect"
import { parseMagnet } from "../../domain/Magnet.js"
import { magnetArg, newPeerId, portOption } from "./clientOptions.js"
import { dhtOptions, dhtPeersOnce, startDht } from "./dht.js"
import { formatInfo } from "./info.js"
import { MagnetLayer } from "./magnetHandshake.js"
import { fetchMagnetMetadata } from "./source.js"

/** `magnet_info <magnet>`: fetches the info dict from the swarm (BEP 9), verifies it and prints it like `info`. */
export const magnetInfoCommand = Command.make("magnet_info", { magnet: magnetArg, port: portOption, ...dhtOptions }, ({ magnet, port, ...dhtFlags }) =>
  Effect.gen(function* () {
    const link = yield* parseMagnet(magnet)
    // It does not listen: its DHT node takes any free UDP port.
    const dht = yield* startDht(dhtFlags, { host: "0.0.0.0", port: 0, fallback: false })
    const { info } = yield* fetchMagnetMetadata(link, { peerId: newPeerId(), port }, (hash) => dhtPeersOnce(dht, hash))
    yield* Console.log(formatInfo(link.trackers[0], info))
  }).pipe(Effect.scoped, Effect.provide(MagnetLayer))
).pipe(Command.withDescription("Fetch a magnet link's metadata from its peers and print it like `info`"))
