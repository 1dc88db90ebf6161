import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Duration, Effect, Option, Stream } from "effect"
import { download } from "../Download.js"
import { defaultPort, fastOption, listenPortOption, maxPeersOption, newPeerId, outputOption, quietOption, sequentialOption } from "./clientOptions.js"
import { makeRenderer, progressMode } from "./progress.js"
import { announceIntervalOption, hostOption } from "./seed.js"
import { ClientLayer } from "./layers.js"
import { resolveSource } from "./source.js"

const makeDownloadCommand = (name: string, argName: string, what: string) =>
  Command.make(
    name,
    {
      output: outputOption,
      source: Args.text({ name: argName }).pipe(Args.withDescription(what)),
      quiet: quietOption,
      port: listenPortOption,
      maxPeers: maxPeersOption,
      sequential: sequentialOption,
      seed: Options.boolean("seed").pipe(Options.withDescription("keep seeding after the download, until interrupted")),
      fast: fastOption,
      host: hostOption,
      announceInterval: announceIntervalOption
    },
    ({ announceInterval, fast, host, maxPeers, output, port, quiet, seed, sequential, source }) =>
      Effect.gen(function* () {
        const peerId = newPeerId()
        const resolved = yield* resolveSource(source, { peerId, port: Option.getOrElse(port, () => defaultPort) })
        const render = makeRenderer(progressMode(quiet))
        // It listens while it downloads; the default port moves on when taken, an explicit one does not.
        const listen = { host, port: Option.getOrElse(port, () => defaultPort), fallback: Option.isNone(port) }
        yield* download(resolved, output, {
          peerId,
          listen,
          maxPeers,
          sequential,
          fast,
          seed,
          ...Option.match(announceInterval, { onNone: () => ({}), onSome: (s) => ({ announceInterval: Duration.seconds(s) }) })
        }).pipe(Stream.runForEach(render))
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
