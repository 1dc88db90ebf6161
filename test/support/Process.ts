/**
 * Subprocesses for the interop tests and the benchmark: each runs in its own process group under a
 * timeout; a timeout, an interruption (a vitest timeout aborts the test's fiber) or the release of
 * a scope kills the whole group (TERM, then KILL after a grace period).
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as path from "node:path"
import { Data, Deferred, Duration, Effect, type Scope } from "effect"
import { repoRoot, type CliResult } from "./cli.js"

/** A subprocess could not start, or outlived its timeout (it was killed). */
export class ProcessError extends Data.TaggedError("ProcessError")<{
  readonly command: string
  readonly reason: "Spawn" | "Timeout" | "Exited"
  readonly timeoutMs: number
  readonly output: string
  readonly cause?: unknown
}> {
  override get message() {
    const what = this.reason === "Spawn" ? "could not start"
      : this.reason === "Timeout" ? `timed out after ${this.timeoutMs} ms (killed)`
      : "exited before it was ready"
    return `${this.command}: ${what}${this.output === "" ? "" : `\n${tail(this.output)}`}`
  }
}

export const tail = (text: string, lines = 30): string => text.trimEnd().split("\n").slice(-lines).join("\n")

export interface ProcessOutput extends CliResult {
  readonly signal: NodeJS.Signals | null
}

export interface ProcessOptions {
  readonly timeoutMs: number
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
  /** Called with the pid (also the process group's id) once the process is spawned. */
  readonly onSpawn?: (pid: number) => void
}

/** Time a TERM-ed process group gets before KILL. */
const killGraceMs = 5_000
/** How long to wait for the pipes once the process has exited (a detached grandchild may hold them). */
const drainMs = 2_000

const describeCommand = (file: string, args: ReadonlyArray<string>): string =>
  [path.basename(file), ...args].join(" ").slice(0, 300)

const signalGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // ESRCH: the group is already gone, which is what we want.
  }
}

/** TERM to the group, KILL after a grace period (the timer does not keep the test process alive). */
const stopGroup = (child: ChildProcess): void => {
  signalGroup(child, "SIGTERM")
  setTimeout(() => signalGroup(child, "SIGKILL"), killGraceMs).unref()
}

const spawnGroup = (file: string, args: ReadonlyArray<string>, options: Omit<ProcessOptions, "timeoutMs" | "onSpawn">) =>
  spawn(file, args, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    detached: true, // its own process group, so that a kill reaches its children too
    stdio: ["ignore", "pipe", "pipe"]
  })

/** Runs a command to completion; a non-zero exit is a result, not an error. */
export const runProcess = (
  file: string,
  args: ReadonlyArray<string>,
  options: ProcessOptions
): Effect.Effect<ProcessOutput, ProcessError> =>
  Effect.async<ProcessOutput, ProcessError>((resume) => {
    const command = describeCommand(file, args)
    const child = spawnGroup(file, args, options)
    if (child.pid !== undefined) options.onSpawn?.(child.pid)
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    child.stdout.on("data", (c: Buffer) => stdout.push(c))
    child.stderr.on("data", (c: Buffer) => stderr.push(c))
    let settled = false
    let timedOut = false
    let drain: NodeJS.Timeout | undefined
    const timer = setTimeout(() => {
      timedOut = true
      stopGroup(child)
    }, options.timeoutMs)
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(drain)
      const out = Buffer.concat(stdout).toString("utf8")
      const err = Buffer.concat(stderr).toString("utf8")
      resume(
        timedOut
          ? Effect.fail(new ProcessError({ command, reason: "Timeout", timeoutMs: options.timeoutMs, output: out + err }))
          : Effect.succeed({ code, signal, stdout: out, stderr: err })
      )
    }
    child.on("error", (cause) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(Effect.fail(new ProcessError({ command, reason: "Spawn", timeoutMs: options.timeoutMs, output: "", cause })))
    })
    child.on("exit", (code, signal) => {
      drain = setTimeout(() => finish(code, signal), drainMs)
    })
    child.on("close", finish)
    return Effect.sync(() => {
      clearTimeout(timer)
      if (!settled) stopGroup(child)
    })
  })

/** A process left running in the background for the rest of a scope (e.g. our client seeding). */
export interface Background {
  readonly pid: number
  /** Everything it printed so far (stdout then stderr). */
  readonly output: Effect.Effect<{ readonly stdout: string; readonly stderr: string }>
}

export interface BackgroundOptions extends Omit<ProcessOptions, "timeoutMs" | "onSpawn"> {
  /** Wait until stdout or stderr matches this before returning. */
  readonly ready?: RegExp
  readonly readyTimeoutMs?: number
}

/**
 * Starts a command and keeps it running until the scope closes, then TERMs its process group
 * (KILL after a grace period) and waits for it to exit. Fails if it exits before it is ready.
 */
export const startProcess = (
  file: string,
  args: ReadonlyArray<string>,
  options: BackgroundOptions = {}
): Effect.Effect<Background, ProcessError, Scope.Scope> =>
  Effect.gen(function* () {
    const command = describeCommand(file, args)
    const readyTimeoutMs = options.readyTimeoutMs ?? 30_000
    const exited = yield* Deferred.make<number | null>()
    const ready = yield* Deferred.make<void>()
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    const text = () => ({ stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") })
    let isReady = options.ready === undefined
    const checkReady = () => {
      if (isReady) return // a chatty process is not re-scanned once ready
      const { stdout, stderr } = text()
      if (options.ready!.test(stdout) || options.ready!.test(stderr)) {
        isReady = true
        Deferred.unsafeDone(ready, Effect.void)
      }
    }
    // listeners go on in the same tick as the spawn, so that an early exit cannot be missed
    const launch = () => {
      const child = spawnGroup(file, args, options)
      child.stdout.on("data", (c: Buffer) => {
        stdout.push(c)
        checkReady()
      })
      child.stderr.on("data", (c: Buffer) => {
        stderr.push(c)
        checkReady()
      })
      child.on("error", () => Deferred.unsafeDone(exited, Effect.succeed(null)))
      child.on("exit", (code) => Deferred.unsafeDone(exited, Effect.succeed(code)))
      return child
    }
    const child = yield* Effect.acquireRelease(
      Effect.try({
        try: launch,
        catch: (cause) => new ProcessError({ command, reason: "Spawn", timeoutMs: readyTimeoutMs, output: "", cause })
      }),
      (child) =>
        Effect.sync(() => stopGroup(child)).pipe(
          Effect.zipRight(Deferred.await(exited).pipe(Effect.timeout(Duration.millis(killGraceMs + 1_000)), Effect.ignore))
        )
    )
    if (isReady) Deferred.unsafeDone(ready, Effect.void)
    const outcome = yield* Effect.raceFirst(
      Deferred.await(ready).pipe(Effect.as("ready" as const)),
      Deferred.await(exited).pipe(Effect.as("exited" as const))
    ).pipe(Effect.timeoutTo({ duration: Duration.millis(readyTimeoutMs), onTimeout: () => "timeout" as const, onSuccess: (x) => x }))
    if (outcome !== "ready") {
      const { stdout, stderr } = text()
      return yield* new ProcessError({
        command,
        reason: outcome === "exited" ? "Exited" : "Timeout",
        timeoutMs: readyTimeoutMs,
        output: stdout + stderr
      })
    }
    return { pid: child.pid ?? -1, output: Effect.sync(text) }
  })

