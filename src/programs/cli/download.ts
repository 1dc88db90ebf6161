import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect, Stream } from "effect"
import { trackerTiers } from "../../domain/Metainfo.js"
import { download } from "../Download.js"
import { maxPeersOption, newPeerId, outputOption, portOption, quietOption, sequentialOption } from "./clientOptions.js"
import { ClientLayer } from "./layers.js"
import { makeRenderer, progressMode } from "./progress.js"
import { readTorrent } from "./torrentFile.js"

/** `download -o <out> <torrent>`: the whole torrent, verified, resumable. */
export const downloadCommand = Command.make(
  "download",
  {
    output: outputOption,
    torrent: Args.text({ name: "torrent" }).pipe(Args.withDescription("a .torrent file")),
    quiet: quietOption,
    port: portOption,
    maxPeers: maxPeersOption,
    sequential: sequentialOption
  },
  ({ maxPeers, output, port, quiet, sequential, torrent }) =>
    Effect.gen(function* () {
      const meta = yield* readTorrent(torrent)
      const render = makeRenderer(progressMode(quiet))
      yield* download({ info: meta.info, trackers: trackerTiers(meta) }, output, {
        peerId: newPeerId(),
        port,
        maxPeers,
        sequential
      }).pipe(Stream.runForEach(render))
    }).pipe(Effect.provide(ClientLayer))
).pipe(Command.withDescription("Download a torrent, verified piece by piece, to a file or folder"))
