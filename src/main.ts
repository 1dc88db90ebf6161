/**
 * Composition root of the CLI: platform layers, stderr logging, and error reporting as one line.
 * Program output goes to stdout through Console.log; everything else goes to stderr.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Logger, LogLevel } from "effect"
import { cli } from "./programs/cli/app.js"
import { describeFailure } from "./programs/cli/report.js"

const StderrLogger = Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true, colors: false }))

cli(process.argv).pipe(
  // @effect/cli has already printed usage errors on stderr; only the exit code is left to set.
  Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => { process.exitCode = 2 })),
  Effect.catchAllCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.sync(() => { process.exitCode = 130 })
      : Effect.sync(() => {
          process.stderr.write(`error: ${describeFailure(cause)}\n`)
          process.exitCode = 1
        })
  ),
  Effect.provide(NodeContext.layer),
  Effect.provide(StderrLogger),
  Logger.withMinimumLogLevel(LogLevel.Info),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    // Exit as soon as the command is done, whatever sockets a peer or tracker keeps open: 130
    // after Ctrl-C (the finalizers have run by then), else the code the command set.
    teardown: (exit, onExit) => {
      const interrupted = exit._tag === "Failure" && Cause.isInterruptedOnly(exit.cause)
      onExit(interrupted ? 130 : exit._tag === "Failure" ? 1 : Number(process.exitCode ?? 0))
      process.exit()
    }
  })
)
