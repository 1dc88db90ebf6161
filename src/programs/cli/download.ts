import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect, Stream } from "effect"
import { download } from "../Download.js"
import { maxPeersOption, newPeerId, outputOption, portOption, quietOption, sequentialOption } from "./clientOptions.js"
import { ClientLayer } from "./layers.js"
import { makeRenderer, progressMode } from "./progress.js"
import { resolveSource } from "./source.js"

const makeDownloadCommand = (name: string, argName: string, what: string) =>
  Command.make(
    name,
    {
      output: outputOption,
      source: Args.text({ name: argName }).pipe(Args.withDescription(what)),
      quiet: quietOption,
      port: portOption,
      maxPeers: maxPeersOption,
      sequential: sequentialOption
    },
    ({ maxPeers, output, port, quiet, sequential, source }) =>
      Effect.gen(function* () {
        const peerId = newPeerId()
        const resolved = yield* resolveSource(source, { peerId, port })
        const render = makeRenderer(progressMode(quiet))
        yield* download(resolved, output, { peerId, port, maxPeers, sequential }).pipe(Stream.runForEach(render))
      }).pipe(Effect.provide(ClientLayer))
  )

/** `download -o <out> <torrent|magnet>`: the whole torrent, verified, resumable. */
export const downloadCommand = makeDownloadCommand("download", "torrent", "a .torrent file or a magnet link").pipe(
  Command.withDescription("Download a torrent (file or magnet link), verified piece by piece, to a file or folder")
)

/** `magnet_download -o <out> <magnet>` (CONTRACT.md): the same from a magnet link. */
export const magnetDownloadCommand = makeDownloadCommand("magnet_download", "magnet", "a magnet link").pipe(
  Command.withDescription("Download a magnet link's torrent, verified, to a file or folder")
)
