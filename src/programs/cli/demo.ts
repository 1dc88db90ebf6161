import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Logger, LogLevel, Option } from "effect"
import { atLeast, checked, quietOption } from "./clientOptions.js"
import { TcpClientLayer } from "./layers.js"
import { makeRenderer, progressMode } from "./progress.js"
import { withShownDefault } from "./helpText.js"
import { note } from "./report.js"

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** `demo`: the built-in local swarm, downloaded with the full pipeline; prints a summary on stdout. */
export const demoCommand = Command.make(
  "demo",
  {
    sizeMib: Options.integer("size-mib").pipe(Options.withDescription("payload size in MiB"), withShownDefault(64), checked("--size-mib", atLeast(1))),
    seeders: Options.integer("seeders").pipe(Options.withDescription("how many seeders"), withShownDefault(3), checked("--seeders", atLeast(1))),
    keep: Options.directory("keep").pipe(
      Options.optional,
      Options.withDescription("keep the payload, torrent and download in this folder")
    ),
    quiet: quietOption
  },
  ({ keep, quiet, seeders, sizeMib }) =>
    Effect.gen(function* () {
      const { render } = makeRenderer(progressMode(quiet), "demo.bin")
      const { runDemo } = yield* Effect.promise(() => import("../Demo.js"))
      const summary = yield* runDemo({
        sizeMib,
        seeders,
        onEvents: render,
        onReady: ({ pieces, tracker }) =>
          quiet ? Effect.void : note(`demo: ${sizeMib} MiB payload, ${pieces} pieces, tracker ${tracker}, ${plural(seeders, "seeder")}`),
        ...(Option.isSome(keep) ? { keep: keep.value } : {})
      })
      const mib = summary.bytes / 1048576
      yield* Console.log(
        [
          `Demo: ${mib.toFixed(0)} MiB from ${plural(summary.peersUsed, "peer")} in ${summary.seconds.toFixed(2)} s ` +
          `(${(mib / summary.seconds).toFixed(1)} MiB/s), verified byte for byte`,
          ...(summary.folder === undefined ? [] : [`Files kept in ${summary.folder}`])
        ].join("\n")
      )
    }).pipe(
      Logger.withMinimumLogLevel(quiet ? LogLevel.Warning : LogLevel.Info),
      Effect.provide(TcpClientLayer)
    )
).pipe(Command.withDescription("Run a local demo swarm (tracker and seeders of this client on 127.0.0.1) and download from it"))
