import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Logger, LogLevel, Option } from "effect"
import { runDemo } from "../Demo.js"
import { quietOption } from "./clientOptions.js"
import { SeedLayer } from "./layers.js"
import { makeRenderer, progressMode } from "./progress.js"

/** `demo`: the built-in local swarm, downloaded with the full pipeline; prints a summary on stdout. */
export const demoCommand = Command.make(
  "demo",
  {
    sizeMib: Options.integer("size-mib").pipe(Options.withDefault(64), Options.withDescription("payload size in MiB")),
    seeders: Options.integer("seeders").pipe(Options.withDefault(3), Options.withDescription("how many seeders")),
    keep: Options.directory("keep").pipe(
      Options.optional,
      Options.withDescription("keep the payload, torrent and download in this folder")
    ),
    quiet: quietOption
  },
  ({ keep, quiet, seeders, sizeMib }) =>
    Effect.gen(function* () {
      const { render } = makeRenderer(progressMode(quiet), "demo.bin")
      const summary = yield* runDemo({
        sizeMib: Math.max(1, sizeMib),
        seeders: Math.max(1, seeders),
        onEvent: render,
        ...(Option.isSome(keep) ? { keep: keep.value } : {})
      })
      const mib = summary.bytes / 1048576
      yield* Console.log(
        [
          `Demo: ${mib.toFixed(0)} MiB from ${summary.peersUsed} peers in ${summary.seconds.toFixed(2)} s ` +
          `(${(mib / summary.seconds).toFixed(1)} MiB/s), verified byte for byte`,
          ...(summary.folder === undefined ? [] : [`Files kept in ${summary.folder}`])
        ].join("\n")
      )
    }).pipe(
      Logger.withMinimumLogLevel(quiet ? LogLevel.Warning : LogLevel.Info),
      Effect.provide(SeedLayer)
    )
).pipe(Command.withDescription("Run a local demo swarm (tracker and seeders of this client on 127.0.0.1) and download from it"))
