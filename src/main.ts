/**
 * Composition root of the CLI: help and usage errors in our own words, platform layers, stderr
 * logging, and error reporting as one line. Program output goes to stdout through Console.log;
 * everything else goes to stderr.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import { Effect, Layer } from "effect"
import { cli, commandHelps, program } from "./programs/cli/app.js"
import { type CommandHelp, type HelpStyle, renderCommandHelp, renderRootHelp, renderUsage } from "./programs/cli/helpText.js"
import { classify } from "./programs/cli/invocation.js"
import { describeUsageError } from "./programs/cli/report.js"
import { reportFailure, runCliMain } from "./programs/cli/runtime.js"

/** Wrap at $COLUMNS, else the terminal's width, else 80; bold only on a terminal that allows colour. */
const styleOf = (stream: NodeJS.WriteStream): HelpStyle => {
  const columns = Number(process.env.COLUMNS)
  const width = Number.isInteger(columns) && columns > 0 ? columns : stream.isTTY && stream.columns > 0 ? stream.columns : 80
  const color = stream.isTTY === true && (process.env.NO_COLOR ?? "") === "" && process.env.TERM !== "dumb"
  return { width: Math.max(width, 40), color }
}

/** `error: <what>`, the command's usage and where to read more, on stderr; exit 2. */
const reportUsageError = (command: CommandHelp | undefined, message: string) =>
  Effect.sync(() => {
    const style = styleOf(process.stderr)
    const usage = command === undefined
      ? `Usage: ${program.name} <command> [options] [arguments]`
      : renderUsage(program.name, command, style)
    const more = command === undefined ? `${program.name} --help` : `${program.name} ${command.name} --help`
    process.stderr.write(`error: ${message}\n${usage}\nRun '${more}' for more.\n`)
    process.exitCode = 2
  })

/** @effect/cli prints its own usage errors on stderr; we print ours instead, from the ValidationError. */
const withoutCliErrorOutput = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.console, (console) => Effect.withConsole(self, { ...console, error: () => Effect.void }))

const runCommand = (command: CommandHelp | undefined) =>
  withoutCliErrorOutput(cli(process.argv)).pipe(
    Effect.catchIf(ValidationError.isValidationError, (e) => reportUsageError(command, describeUsageError(e, process.argv.slice(2)))),
    reportFailure
  )

const main = Effect.suspend(() => {
  const invocation = classify(process.argv.slice(2), commandHelps)
  switch (invocation._tag) {
    case "RootHelp":
      return Effect.sync(() =>
        process.stdout.write(`${renderRootHelp(program.name, program.version, program.summary, commandHelps, styleOf(process.stdout))}\n`)
      )
    case "CommandHelp":
      return Effect.sync(() => process.stdout.write(`${renderCommandHelp(program.name, invocation.command, styleOf(process.stdout))}\n`))
    case "UsageError":
      return reportUsageError(invocation.command, invocation.message)
    case "Run":
      return runCommand(invocation.command)
  }
})

// What @effect/cli needs, not the whole NodeContext: its command executor and worker manager
// would load node:child_process and node:worker_threads for every command (~9 ms).
const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)

runCliMain(Effect.provide(main, platform))
