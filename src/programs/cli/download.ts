import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Data, Effect, Option, Stream } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import type { StorageError } from "../../services/Storage.js"
import { download } from "../Download.js"
import { seedPath } from "../Seed.js"
import { maxPeersOption, newPeerId, outputOption, portOption, quietOption, sequentialOption } from "./clientOptions.js"
import { makeJsonRenderer } from "./downloadJson.js"
import { makeRenderer, progressMode } from "./progress.js"
import { announceIntervalOption, hostOption, makeSeedRenderer, seedOptions } from "./seed.js"
import { SeedLayer } from "./layers.js"
import { resolveSource } from "./source.js"

/** The output holds something that is not this torrent's data, and --force was not given. */
export class OutputNotOurs extends Data.TaggedError("OutputNotOurs")<{ readonly path: string }> {
  override get message() {
    return `${this.path} exists and is not this torrent's data (use --force to overwrite)`
  }
}

const makeDownloadCommand = (name: string, argName: string, what: string) =>
  Command.make(
    name,
    {
      output: outputOption.pipe(
        Options.optional,
        Options.withDescription("default: the torrent's name in the current folder (for a magnet, known once its metadata arrives)")
      ),
      source: Args.text({ name: argName }).pipe(Args.withDescription(what)),
      quiet: quietOption,
      force: Options.boolean("force").pipe(Options.withDescription("overwrite an existing output that is not this torrent's data")),
      json: Options.boolean("json").pipe(Options.withDescription("events as JSON Lines on stdout (see docs/cli.md), no progress on stderr")),
      port: portOption,
      maxPeers: maxPeersOption,
      sequential: sequentialOption,
      seed: Options.boolean("seed").pipe(Options.withDescription("keep seeding after the download, on --host:--port, until interrupted")),
      host: hostOption,
      announceInterval: announceIntervalOption
    },
    ({ announceInterval, force, host, json, maxPeers, output, port, quiet, seed, sequential, source }) =>
      Effect.gen(function* () {
        const peerId = newPeerId()
        const resolved = yield* resolveSource(source, { peerId, port })
        // The torrent's name is a single safe path component (Metainfo checks it).
        const target = Option.getOrElse(output, () => resolved.info.name)
        const renderer = json ? makeJsonRenderer(target) : makeRenderer(progressMode(quiet), target)
        yield* download(resolved, target, { peerId, port, maxPeers, sequential }, { overwrite: force }).pipe(
          Stream.runForEach(renderer.render),
          Effect.catchIf(
            (e): e is StorageError => e._tag === "StorageError" && e.reason === "NotOurs",
            (e) => new OutputNotOurs({ path: e.path })
          ),
          Effect.tapError((e) => renderer.failed(e.message)),
          Effect.onInterrupt(() => renderer.interrupted)
        )
        if (!seed) return
        // Everything was just verified: no need to scan it again.
        const verified = Bitfield.full(resolved.info.pieceCount)
        yield* seedPath(resolved, target, seedOptions(peerId, port, host, announceInterval), verified).pipe(
          Stream.runForEach(makeSeedRenderer(progressMode(quiet || json)))
        )
      }).pipe(Effect.provide(SeedLayer))
  )

/** `download [-o <out>] <torrent|magnet>`: the whole torrent, verified, resumable. */
export const downloadCommand = makeDownloadCommand("download", "torrent", "a .torrent file or a magnet link").pipe(
  Command.withDescription("Download a torrent (file or magnet link), verified piece by piece, to a file or folder")
)

/** `magnet_download -o <out> <magnet>` (CONTRACT.md): the same from a magnet link. */
export const magnetDownloadCommand = makeDownloadCommand("magnet_download", "magnet", "a magnet link").pipe(
  Command.withDescription("Download a magnet link's torrent, verified, to a file or folder")
)
