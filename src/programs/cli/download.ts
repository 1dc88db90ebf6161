import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Stream } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import { download } from "../Download.js"
import { seedPath } from "../Seed.js"
import { maxPeersOption, newPeerId, outputOption, portOption, quietOption, sequentialOption } from "./clientOptions.js"
import { makeRenderer, progressMode } from "./progress.js"
import { announceIntervalOption, hostOption, makeSeedRenderer, seedOptions } from "./seed.js"
import { SeedLayer } from "./layers.js"
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
      sequential: sequentialOption,
      seed: Options.boolean("seed").pipe(Options.withDescription("keep seeding after the download, on --host:--port, until interrupted")),
      host: hostOption,
      announceInterval: announceIntervalOption
    },
    ({ announceInterval, host, maxPeers, output, port, quiet, seed, sequential, source }) =>
      Effect.gen(function* () {
        const peerId = newPeerId()
        const resolved = yield* resolveSource(source, { peerId, port })
        const render = makeRenderer(progressMode(quiet))
        yield* download(resolved, output, { peerId, port, maxPeers, sequential }).pipe(Stream.runForEach(render))
        if (!seed) return
        // Everything was just verified: no need to scan it again.
        const verified = Bitfield.full(resolved.info.pieceCount)
        yield* seedPath(resolved, output, seedOptions(peerId, port, host, announceInterval), verified).pipe(
          Stream.runForEach(makeSeedRenderer(progressMode(quiet)))
        )
      }).pipe(Effect.provide(SeedLayer))
  )

/** `download -o <out> <torrent|magnet>`: the whole torrent, verified, resumable. */
export const downloadCommand = makeDownloadCommand("download", "torrent", "a .torrent file or a magnet link").pipe(
  Command.withDescription("Download a torrent (file or magnet link), verified piece by piece, to a file or folder")
)

/** `magnet_download -o <out> <magnet>` (the classic contract): the same from a magnet link. */
export const magnetDownloadCommand = makeDownloadCommand("magnet_download", "magnet", "a magnet link").pipe(
  Command.withDescription("Download a magnet link's torrent, verified, to a file or folder")
)
