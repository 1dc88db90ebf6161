/**
 * What the download commands start from: a .torrent file, or a magnet link whose metadata is
 * fetched from its swarm first (BEP 9). Either way the engine gets an info dict and peers.
 */
import { Effect } from "effect"
import type { PeerAddress } from "../../domain/Peer.js"
import { parseMagnet } from "../../domain/Magnet.js"
import { trackerTiers } from "../../domain/Metainfo.js"
import type { DownloadSource } from "../Download.js"
import { fetchMetadata } from "../Metadata.js"
import { readTorrent } from "./torrentFile.js"

export const isMagnet = (arg: string): boolean => arg.startsWith("magnet:")

/** `morePeers` adds peers for a magnet link's info hash (the DHT's) to the link's own. */
export const resolveSource = (
  arg: string,
  options: { readonly peerId: Uint8Array; readonly port: number },
  morePeers: (infoHash: Uint8Array) => Effect.Effect<ReadonlyArray<PeerAddress>> = () => Effect.succeed([])
) =>
  isMagnet(arg)
    ? Effect.gen(function* () {
        const link = yield* parseMagnet(arg)
        const peers = [...link.peers, ...(yield* morePeers(link.infoHash))]
        // FetchedMetadata is a DownloadSource: the info dict, the link's trackers and the peers found.
        return (yield* fetchMetadata({ ...link, peers }, options)) satisfies DownloadSource
      })
    : Effect.map(readTorrent(arg), (meta): DownloadSource => ({ info: meta.info, trackers: trackerTiers(meta) }))
