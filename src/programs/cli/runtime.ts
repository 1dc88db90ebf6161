/**
 * How both CLI entry points (src/main.ts, src/decodeMain.ts) run a command: stderr logging, a
 * failure reported as one line (exit 1), Ctrl-C as exit 130, and an exit as soon as the command is
 * done. Free of @effect/cli, so that the `decode` bundle stays small.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Logger, LogLevel } from "effect"
import { describeFailure } from "./report.js"

const StderrLogger = Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true, colors: false }))

/** A failed command: `error: <what>` on stderr and exit 1; an interrupted one exits 130. */
export const reportFailure = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.catchAllCause(self, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.sync(() => { process.exitCode = 130 })
      : Effect.sync(() => {
          process.stderr.write(`error: ${describeFailure(cause)}\n`)
          process.exitCode = 1
        })
  )

/** Runs the CLI's program as the process's main fiber, logging to stderr at Info and above. */
export const runCliMain = <E>(program: Effect.Effect<unknown, E>) =>
  program.pipe(
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
