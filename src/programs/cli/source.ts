/**
 * What the download commands start from: a .torrent file, or a magnet link whose metadata is
 * fetched from its swarm first (BEP 9). Either way the engine gets an info dict and peers.
 */
import { Effect } from "effect"
import { parseMagnet } from "../../domain/Magnet.js"
import { trackerTiers } from "../../domain/Metainfo.js"
import type { DownloadSource } from "../Download.js"
import { fetchMetadata, type MetadataOptions } from "../Metadata.js"
import { readTorrent } from "./torrentFile.js"

export const isMagnet = (arg: string): boolean => arg.startsWith("magnet:")

export const resolveSource = (arg: string, options: MetadataOptions) =>
  isMagnet(arg)
    ? Effect.gen(function* () {
        const link = yield* parseMagnet(arg)
        // FetchedMetadata is a DownloadSource: the info dict, the link's trackers and the peers found.
        return (yield* fetchMetadata(link, options)) satisfies DownloadSource
      })
    : Effect.map(readTorrent(arg), (meta): DownloadSource => ({ info: meta.info, trackers: trackerTiers(meta) }))
