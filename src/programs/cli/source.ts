/**
 * What the download commands start from: a .torrent file, or a magnet link whose metadata is
 * fetched from its swarm first (BEP 9). Either way the engine gets an info dict and peers.
 */
import { Effect } from "effect"
import type { PeerAddress } from "../../domain/Peer.js"
import { type MagnetLink, parseMagnet } from "../../domain/Magnet.js"
import { trackerTiers } from "../../domain/Metainfo.js"
import type { DownloadSource } from "../Download.js"
import { fetchMetadata, type MetadataOptions } from "../Metadata.js"
import { readTorrent } from "./torrentFile.js"

export const isMagnet = (arg: string): boolean => arg.startsWith("magnet:")

/** Where else peers for an info hash may be found (the DHT), beside a magnet link's trackers and `x.pe`. */
export type MorePeers = (infoHash: Uint8Array) => Effect.Effect<ReadonlyArray<PeerAddress>>

/**
 * A magnet link's metadata. A link with neither trackers nor `x.pe` asks `morePeers` at once;
 * another asks them only if its own swarm gave nothing (so a DHT lookup does not delay it).
 */
export const fetchMagnetMetadata = (link: MagnetLink, options: MetadataOptions, morePeers: MorePeers) => {
  const withPeers = (peers: ReadonlyArray<PeerAddress>) => fetchMetadata({ ...link, peers: [...link.peers, ...peers] }, options)
  const fromMore = Effect.flatMap(morePeers(link.infoHash), withPeers)
  return link.trackers.length === 0 && link.peers.length === 0
    ? fromMore
    : withPeers([]).pipe(
        Effect.catchTag("MetadataError", (e) =>
          Effect.flatMap(morePeers(link.infoHash), (peers) => (peers.length === 0 ? Effect.fail(e) : withPeers(peers))))
      )
}

/** A source to download, and its web seeds (BEP 19 `url-list`; none for a magnet link). */
export type ResolvedSource = DownloadSource & { readonly webSeeds: ReadonlyArray<string> }

export const resolveSource = (
  arg: string,
  options: MetadataOptions,
  morePeers: MorePeers = () => Effect.succeed([])
) =>
  isMagnet(arg)
    ? Effect.gen(function* () {
        const link = yield* parseMagnet(arg)
        // FetchedMetadata is a DownloadSource: the info dict, the link's trackers and the peers found.
        const fetched = (yield* fetchMagnetMetadata(link, options, morePeers)) satisfies DownloadSource
        return { ...fetched, webSeeds: [] } satisfies ResolvedSource
      })
    : Effect.map(readTorrent(arg), (meta): ResolvedSource => ({ info: meta.info, trackers: trackerTiers(meta), webSeeds: meta.webSeeds }))
