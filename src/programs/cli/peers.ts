import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Console, Effect } from "effect"
import { trackerTiers } from "../../domain/Metainfo.js"
import { formatPeer, isOwnAddress } from "../../domain/Peer.js"
import { newPeerId, portOption } from "./clientOptions.js"
import { jsonOption } from "./info.js"
import { readTorrent } from "./torrentFile.js"
import { Tracker } from "../../services/Tracker.js"
import { TrackerClientLayer } from "./layers.js"

/**
 * `peers <file.torrent>`: announces to the torrent's trackers (BEP 12 tiers, HTTP or UDP) and
 * prints one `ip:port` per peer (the classic contract). It never connects to the peers.
 */
export const peersCommand = Command.make(
  "peers",
  { torrent: Args.text({ name: "torrent" }).pipe(Args.withDescription("a .torrent file")), port: portOption, json: jsonOption },
  ({ json, port, torrent }) =>
    Effect.gen(function* () {
      const meta = yield* readTorrent(torrent)
      const tiers = yield* (yield* Tracker).tiers(trackerTiers(meta))
      const response = yield* tiers.announce({
        infoHash: meta.info.infoHash,
        peerId: newPeerId(),
        port,
        uploaded: 0,
        downloaded: 0,
        left: meta.info.totalLength
      })
      // Trackers list the announcer too; we are not a peer of our own.
      const peers = response.peers.filter((p) => !isOwnAddress(p, port))
      if (json) {
        yield* Console.log(JSON.stringify({
          peers: peers.map(({ host, port }) => ({ host, port })),
          interval: response.interval,
          complete: response.complete ?? null,
          incomplete: response.incomplete ?? null
        }))
      } else if (peers.length > 0) {
        yield* Console.log(peers.map(formatPeer).join("\n"))
      }
    }).pipe(Effect.provide(TrackerClientLayer))
).pipe(Command.withDescription("Ask the torrent's trackers for peers and print them as ip:port, one a line"))
