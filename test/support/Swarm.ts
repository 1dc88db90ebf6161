/**
 * Interop test support: a real loopback swarm (opentracker + aria2/Transmission/WebTorrent seeders)
 * from `../shared/swarm/swarm.sh`, our CLI and reference clients as subprocesses.
 *
 * Every subprocess runs in its own process group under a timeout; a timeout, an interruption (a
 * vitest timeout aborts the test's fiber) or the release of a scope kills the whole group. A swarm
 * is brought down (`swarm.sh down --purge`) when its scope closes, whatever happened.
 *
 * Ports: a swarm with base port P uses P (tracker, TCP and UDP), P+1.. (seeders), P+50 (fetch-with),
 * P+60 (CLIENT_PORT) and P+100+i (Transmission RPC), so each interop test file owns 200 ports:
 * 27600 tracker, 27800 handshake, 28000 swarm (harness self-test), 28200 onwards for new files;
 * 30000 seed, 30400 transmissionUpload (two swarms without Transmission seeders, 30400 and
 * 30500); scripts/bench.sh uses 29600. A file runs its swarms one after the other (one `layer` per
 * describe).
 * These sit below the ephemeral range (32768+) and away from the 46xxx ports other swarm users
 * pick; `swarm.sh up` checks every port anyway.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert } from "@effect/vitest"
import { Context, Data, Deferred, Duration, Effect, Either, Layer, Schedule, type Scope } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { fromHex } from "../../src/domain/Bytes.js"
import { cliPath, ensureBuilt, repoRoot, type CliResult } from "./cli.js"

export const sharedDir = path.resolve(repoRoot, "../shared")
export const swarmScript = path.join(sharedDir, "swarm/swarm.sh")

// ---------------------------------------------------------------------------------------------
// Subprocesses

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

/** A swarm.sh command failed, or printed something we could not parse. */
export class SwarmError extends Data.TaggedError("SwarmError")<{
  readonly command: string
  readonly reason: string
  readonly output: string
}> {
  override get message() {
    return `${this.command}: ${this.reason}${this.output === "" ? "" : `\n${tail(this.output)}`}`
  }
}

const tail = (text: string, lines = 30): string => text.trimEnd().split("\n").slice(-lines).join("\n")

export interface ProcessOutput extends CliResult {
  readonly signal: NodeJS.Signals | null
}

export interface ProcessOptions {
  readonly timeoutMs: number
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
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

const spawnGroup = (file: string, args: ReadonlyArray<string>, options: Omit<ProcessOptions, "timeoutMs">) =>
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

export interface BackgroundOptions extends Omit<ProcessOptions, "timeoutMs"> {
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

// ---------------------------------------------------------------------------------------------
// Our CLI

/** Builds dist/main.cjs if a source is newer (once per test process). */
const built = Effect.tryPromise({
  try: ensureBuilt,
  catch: (cause) =>
    new ProcessError({ command: "node scripts/build.mjs", reason: "Exited", timeoutMs: 120_000, output: String(cause), cause })
})

/** Runs `node bin/bittorrent.cjs ...args` to completion (building it first if stale). */
export const runCli = (
  args: ReadonlyArray<string>,
  options: { readonly timeoutMs?: number } = {}
): Effect.Effect<CliResult, ProcessError> =>
  built.pipe(Effect.zipRight(runProcess(process.execPath, [cliPath, ...args], { timeoutMs: options.timeoutMs ?? 30_000 })))

/** Starts `node bin/bittorrent.cjs ...args` in the background for the rest of the scope (a seeder, say). */
export const startCli = (args: ReadonlyArray<string>, options: BackgroundOptions = {}) =>
  built.pipe(Effect.zipRight(startProcess(process.execPath, [cliPath, ...args], options)))

const shellQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

/**
 * A `fetch-with custom --client-cmd` line that runs our CLI, e.g. `cliCommand("download -o {out} {torrent}")`
 * (swarm.sh substitutes and quotes the placeholders itself).
 */
export const cliCommand = (template: string): string => `${shellQuote(process.execPath)} ${shellQuote(cliPath)} ${template}`

// ---------------------------------------------------------------------------------------------
// The swarm

export type SeederKind = "aria2" | "transmission" | "webtorrent"

export interface SwarmOptions {
  /** The swarm's folder; by default a fresh temporary folder, deleted on release. */
  readonly dir?: string
  readonly basePort: number
  readonly sizeMib: number
  /** 0: tracker, payload and torrent only (our client seeds). */
  readonly seeders: number
  readonly mix?: ReadonlyArray<SeederKind>
  readonly announce?: "http" | "udp" | "both"
  readonly public?: boolean
  readonly files?: number
  readonly pieceKib?: number
  /**
   * `distinct` (the default here) puts seeder i on 127.0.0.(10+i). Transmission refuses a connection
   * while another handshake from the same address is in progress, and the aria2 seeders keep
   * dialling it from their own address: on `same` (127.0.0.1 for all), our client at 127.0.0.1
   * was refused by the Transmission seeder within 3 s of `up`.
   */
  readonly seederAddrs?: "same" | "distinct"
  /** Further `swarm.sh up` options, e.g. `["--payload-seed", "x"]`. */
  readonly extraArgs?: ReadonlyArray<string>
}

/** `D/swarm.env`, typed. Names as in ../shared/swarm/README.md. */
export interface SwarmEnv {
  readonly SWARM_DIR: string
  readonly TORRENT: string
  readonly MAGNET: string
  readonly INFO_HASH: string
  readonly TORRENT_NAME: string
  readonly TRACKER: string
  readonly TRACKER_HTTP: string
  /** Empty with the npm tracker. */
  readonly TRACKER_UDP: string
  readonly SCRAPE: string
  readonly ANNOUNCE_MODE: "http" | "udp" | "both"
  readonly ANNOUNCE_URLS: ReadonlyArray<string>
  readonly PRIVATE: boolean
  readonly SIZE_BYTES: number
  readonly PIECE_LENGTH: number
  readonly NUM_PIECES: number
  readonly NUM_FILES: number
  readonly DATA_DIR: string
  readonly DATA_PATH: string
  readonly DATA_SHA256: string
  readonly SEEDERS: ReadonlyArray<{ readonly kind: SeederKind; readonly address: string }>
  /** `ip:port` of each seeder. */
  readonly SEEDER_PEERS: ReadonlyArray<string>
  readonly TRACKER_PORT: number
  readonly BASE_PORT: number
  readonly FETCH_PORT: number
  readonly CLIENT_PORT: number
}

/** Parses swarm.env (`KEY='value'` lines, written by swarm.sh without escapes). */
export const parseSwarmEnv = (text: string): Either.Either<SwarmEnv, string> => {
  const vars = new Map<string, string>()
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)='(.*)'$/.exec(line)
    if (m !== null) vars.set(m[1]!, m[2]!)
  }
  const missing: Array<string> = []
  const str = (key: string): string => {
    const v = vars.get(key)
    if (v === undefined) missing.push(key)
    return v ?? ""
  }
  const num = (key: string): number => {
    const n = Number(str(key))
    if (!Number.isSafeInteger(n)) missing.push(`${key} (a number)`)
    return n
  }
  const words = (key: string): Array<string> => str(key).split(/[\s,]+/).filter((w) => w !== "")
  const mode = str("ANNOUNCE_MODE")
  const env: SwarmEnv = {
    SWARM_DIR: str("SWARM_DIR"),
    TORRENT: str("TORRENT"),
    MAGNET: str("MAGNET"),
    INFO_HASH: str("INFO_HASH"),
    TORRENT_NAME: str("TORRENT_NAME"),
    TRACKER: str("TRACKER"),
    TRACKER_HTTP: str("TRACKER_HTTP"),
    TRACKER_UDP: str("TRACKER_UDP"),
    SCRAPE: str("SCRAPE"),
    ANNOUNCE_MODE: mode === "udp" || mode === "both" ? mode : "http",
    ANNOUNCE_URLS: words("ANNOUNCE_URLS"),
    PRIVATE: str("PRIVATE") === "1",
    SIZE_BYTES: num("SIZE_BYTES"),
    PIECE_LENGTH: num("PIECE_LENGTH"),
    NUM_PIECES: num("NUM_PIECES"),
    NUM_FILES: num("NUM_FILES"),
    DATA_DIR: str("DATA_DIR"),
    DATA_PATH: str("DATA_PATH"),
    DATA_SHA256: str("DATA_SHA256"),
    SEEDERS: words("SEEDERS").map((w) => {
      const [kind, address] = w.split("@")
      return { kind: kind as SeederKind, address: address ?? "" }
    }),
    SEEDER_PEERS: words("SEEDER_PEERS"),
    TRACKER_PORT: num("TRACKER_PORT"),
    BASE_PORT: num("BASE_PORT"),
    FETCH_PORT: num("FETCH_PORT"),
    CLIENT_PORT: num("CLIENT_PORT")
  }
  const state = str("STATE")
  if (missing.length > 0) return Either.left(`missing or bad keys: ${missing.join(", ")}`)
  if (state !== "up") return Either.left(`STATE is '${state}', not 'up'`)
  return Either.right(env)
}

/** Runs `swarm.sh <args>`; a non-zero exit is a SwarmError carrying its output. */
const swarmSh = (args: ReadonlyArray<string>, timeoutMs: number): Effect.Effect<ProcessOutput, SwarmError | ProcessError> =>
  runProcess("bash", [swarmScript, ...args], { timeoutMs }).pipe(
    Effect.filterOrFail(
      (out) => out.code === 0,
      (out) =>
        new SwarmError({ command: `swarm.sh ${args[0]}`, reason: `exited with ${out.code ?? out.signal}`, output: out.stdout + out.stderr })
    )
  )

const requireSwarmScript = Effect.suspend(() =>
  existsSync(swarmScript)
    ? Effect.void
    : Effect.fail(
        new SwarmError({
          command: "swarm.sh",
          reason: `${swarmScript} not found: the interop tests need ../shared beside the repository (run scripts/ci-setup.sh)`,
          output: ""
        })
      )
)

const upArgs = (o: SwarmOptions, dir: string): Array<string> => [
  "up", "--dir", dir,
  "--base-port", String(o.basePort),
  "--size-mib", String(o.sizeMib),
  "--seeders", String(o.seeders),
  "--wait", "120",
  "--seeder-addrs", o.seederAddrs ?? "distinct",
  ...(o.mix === undefined ? [] : ["--mix", o.mix.join(",")]),
  ...(o.announce === undefined ? [] : ["--announce", o.announce]),
  ...(o.public === true ? ["--public"] : []),
  ...(o.files === undefined ? [] : ["--files", String(o.files)]),
  ...(o.pieceKib === undefined ? [] : ["--piece-kib", String(o.pieceKib)]),
  ...(o.extraArgs ?? [])
]

/** The fetch outputs of `fetchWith`, kept inside the swarm folder. */
const outBase = (env: Pick<SwarmEnv, "SWARM_DIR">) => path.join(env.SWARM_DIR, "fetch-out")

/**
 * Starts a swarm for the rest of the scope. The release runs `swarm.sh down --purge` even when `up`
 * failed or timed out half-way (down stops whatever swarm.env lists), then deletes the folder if
 * it was a temporary one (or only the fetch outputs in a given folder).
 */
export const swarmUp = (options: SwarmOptions): Effect.Effect<SwarmEnv, SwarmError | ProcessError, Scope.Scope> =>
  Effect.gen(function* () {
    yield* requireSwarmScript
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() =>
        options.dir === undefined
          ? fs.mkdtemp(path.join(os.tmpdir(), "bt-swarm-"))
          : fs.mkdir(options.dir, { recursive: true }).then(() => options.dir!)
      ),
      (dir) =>
        swarmSh(["down", "--dir", dir, "--purge"], 60_000).pipe(
          Effect.tapError((e) => Effect.logWarning(`swarm in ${dir} may not be fully down: ${e.message}`)),
          Effect.ignore,
          Effect.zipRight(
            Effect.promise(() => fs.rm(options.dir === undefined ? dir : outBase({ SWARM_DIR: dir }), { recursive: true, force: true }))
          )
        )
    )
    // payload creation dominates for big swarms (1 GiB takes about 8 s); seeders register in seconds
    yield* swarmSh(upArgs(options, dir), 240_000 + options.sizeMib * 100)
    const text = yield* Effect.promise(() => fs.readFile(path.join(dir, "swarm.env"), "utf8"))
    return yield* Either.match(parseSwarmEnv(text), {
      onLeft: (reason) => Effect.fail(new SwarmError({ command: "swarm.sh up", reason: `swarm.env: ${reason}`, output: text })),
      onRight: Effect.succeed
    })
  })

/**
 * The swarm of a test suite, up once before the suite and down after it:
 * `layer(Swarm.layer({ basePort: 28200, sizeMib: 4, seeders: 2 }), { excludeTestServices: true })("...", (it) => ...)`.
 * Exclude the test services: these helpers wait in real time, which the TestClock would freeze.
 */
export class Swarm extends Context.Tag("test/Swarm")<Swarm, SwarmEnv>() {
  static readonly layer = (options: SwarmOptions): Layer.Layer<Swarm, SwarmError | ProcessError> =>
    Layer.scoped(Swarm, swarmUp(options))
}

// ---------------------------------------------------------------------------------------------
// Downloads measured by swarm.sh

export type FetchClient = "aria2c" | "transmission" | "webtorrent" | "custom"

export interface FetchOptions {
  /** Required for `custom`: the command line, with `{torrent}`, `{out}`, `{magnet}`, `{port}`... (see `cliCommand`). */
  readonly clientCmd?: string
  readonly label?: string
  /** Start the reference client from the magnet link. */
  readonly magnet?: boolean
  /** The client's time limit in seconds (default 120). */
  readonly timeoutS?: number
  /** Output folder (emptied first); default `<swarm>/fetch-out/<label or client>`. */
  readonly out?: string
  readonly port?: number
  readonly bind?: string
}

/** The `RESULT ...` line of one fetch. */
export interface FetchResult {
  readonly client: string
  /** The client's exit status (124: timed out). */
  readonly rc: number
  /** `OK`, `MISMATCH`, `na`... */
  readonly sha256: string
  /** `OK` or `VIOLATION`. */
  readonly loopback: string
  readonly seconds: number
  /** Every key=value pair of the line. */
  readonly fields: Readonly<Record<string, string>>
  /** Exit status of swarm.sh itself (0 only when rc=0, sha256 OK and loopback OK). */
  readonly exitCode: number | null
  /** The folder the payload was written to. */
  readonly out: string
  /** swarm.sh's progress lines, for failure messages. */
  readonly log: string
}

export const parseResultLine = (stdout: string): Record<string, string> | undefined => {
  const line = stdout.split("\n").filter((l) => l.startsWith("RESULT ")).at(-1)
  if (line === undefined) return undefined
  const fields: Record<string, string> = {}
  for (const pair of line.slice("RESULT ".length).trim().split(/\s+/)) {
    const at = pair.indexOf("=")
    if (at > 0) fields[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return fields
}

/**
 * One download of the swarm's torrent, measured by `swarm.sh fetch-with`. A failed download is
 * a result (look at `rc`, `sha256`, `exitCode`); only a missing RESULT line is an error.
 */
export const fetchWith = (
  swarm: SwarmEnv,
  client: FetchClient,
  options: FetchOptions = {}
): Effect.Effect<FetchResult, SwarmError | ProcessError> =>
  Effect.gen(function* () {
    if (client === "custom") yield* built
    const timeoutS = options.timeoutS ?? 120
    const out = options.out ?? path.join(outBase(swarm), options.label ?? client)
    const args = [
      "fetch-with", client, "--dir", swarm.SWARM_DIR, "--out", out, "--clean", "--timeout", String(timeoutS),
      ...(options.magnet === true ? ["--magnet"] : []),
      ...(options.clientCmd === undefined ? [] : ["--client-cmd", options.clientCmd]),
      ...(options.label === undefined ? [] : ["--label", options.label]),
      ...(options.port === undefined ? [] : ["--port", String(options.port)]),
      ...(options.bind === undefined ? [] : ["--bind", options.bind])
    ]
    yield* Effect.promise(() => fs.mkdir(out, { recursive: true }))
    // swarm.sh kills a client 15 s after its timeout; leave room for that and the checks after it
    const res = yield* runProcess("bash", [swarmScript, ...args], { timeoutMs: (timeoutS + 60) * 1000 })
    const fields = parseResultLine(res.stdout)
    if (fields === undefined) {
      return yield* new SwarmError({ command: `swarm.sh fetch-with ${client}`, reason: "no RESULT line", output: res.stdout + res.stderr })
    }
    return {
      client: fields["client"] ?? client,
      rc: Number(fields["rc"] ?? NaN),
      sha256: fields["sha256"] ?? "na",
      loopback: fields["loopback"] ?? "na",
      seconds: Number(fields["seconds"] ?? NaN),
      fields,
      exitCode: res.code,
      out,
      log: res.stderr
    }
  })

/** Asserts a fetch got the exact payload, over loopback only. */
export const assertFetched = (result: FetchResult) => {
  const why = `${result.client}: rc=${result.rc} sha256=${result.sha256}\n${result.log}`
  assert.strictEqual(result.rc, 0, why)
  assert.strictEqual(result.sha256, "OK", why)
  assert.strictEqual(result.loopback, "OK", why)
  assert.strictEqual(result.exitCode, 0, why)
}

/** Our CLI's `seed` on the swarm's CLIENT_PORT, re-announcing every 2 s, for the rest of the scope. */
export const ourSeeder = (swarm: SwarmEnv) =>
  startCli(["seed", swarm.TORRENT, swarm.DATA_PATH, "--port", String(swarm.CLIENT_PORT), "--announce-interval", "2"], {
    ready: /listening on/,
    readyTimeoutMs: 30_000
  })

// ---------------------------------------------------------------------------------------------
// Tracker state

/** `complete` (seeders) and `incomplete` (leechers) of the swarm's torrent, from the tracker's scrape. */
export const scrape = (swarm: SwarmEnv): Effect.Effect<{ readonly complete: number; readonly incomplete: number }, SwarmError> => {
  const hash = fromHex(swarm.INFO_HASH, 20) ?? new Uint8Array(20)
  const query = Array.from(hash, (b) => `%${b.toString(16).padStart(2, "0")}`).join("")
  const url = `${swarm.SCRAPE}?info_hash=${query}`
  const fail = (reason: string) => new SwarmError({ command: `scrape ${swarm.SCRAPE}`, reason, output: "" })
  return Effect.tryPromise({
    try: (signal) => fetch(url, { signal }).then((r) => r.arrayBuffer()),
    catch: (cause) => fail(String(cause))
  }).pipe(
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => fail("no answer in 5 s") }),
    Effect.flatMap((body) =>
      Either.match(Bencode.decode(new Uint8Array(body)), {
        onLeft: (e) => Effect.fail(fail(e.message)),
        onRight: (value) => {
          const files = Bencode.isDict(value) ? Bencode.get(value, "files") : undefined
          // an info hash nobody announced is simply absent (d5:filesdee)
          const entry = Bencode.isDict(files) ? files.get(Bencode.bytesToKey(hash)) : undefined
          const count = (key: string) => {
            const v = Bencode.isDict(entry) ? Bencode.get(entry, key) : undefined
            return Bencode.isInt(v) ? Number(v) : 0
          }
          return Effect.succeed({ complete: count("complete"), incomplete: count("incomplete") })
        }
      })
    )
  )
}

/** Waits (polling the scrape, bounded) until the tracker lists at least `count` seeders. */
export const awaitSeeders = (swarm: SwarmEnv, count: number, timeout: Duration.DurationInput = "30 seconds") =>
  scrape(swarm).pipe(
    Effect.filterOrFail(
      (s) => s.complete >= count,
      (s) => new SwarmError({ command: "awaitSeeders", reason: `tracker lists ${s.complete} of ${count} seeders`, output: "" })
    ),
    Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.upTo(timeout)))
  )
