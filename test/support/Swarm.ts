/**
 * Interop test and benchmark support: a real loopback swarm of third-party software (opentracker,
 * and aria2 / Transmission / WebTorrent / libtorrent seeders) around a torrent of a pseudo-random
 * payload, and measured downloads by reference clients or by our CLI.
 *
 * Every process is started here (test/support/Process.ts: own process group, timeout, killed when
 * its scope closes), bound to 127.0.0.0/8; each measured download is checked for sockets off the
 * loopback. The torrent is private (BEP 27) unless `public`, and announces to the local tracker only.
 *
 * Ports: a swarm with base port P uses P (tracker, TCP and UDP), P+i (seeder i), P+100+i
 * (Transmission RPC), P+50 (`fetchWith`'s default) and P+60 (CLIENT_PORT, left for our client), so
 * each interop test file owns 200 ports: 27600 tracker, 27800 handshake, 28000 swarm (the harness
 * itself), 28400 and 28600 download, 30000 and 30200 seed, 30400 and 30500 transmissionUpload (two
 * swarms without Transmission seeders), 30800 swarmMember; scripts/bench.ts uses 29600 (and 31200 for its transports). All below
 * the ephemeral range (32768+).
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Data, Duration, Effect, Layer, Schedule, type Scope } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { fromHex, toHex } from "../../src/domain/Bytes.js"
import { cliPath, ensureBuilt, type CliResult } from "./cli.js"
import { type BackgroundOptions, ProcessError, runProcess, startProcess, tail } from "./Process.js"
import * as Reference from "./ReferenceClients.js"
import { sha1 } from "./torrent.js"
import { infoOf, type PayloadFile, payloadSha256, writePayload } from "./SwarmPayload.js"

export { ProcessError, runProcess, startProcess, type Background, type BackgroundOptions } from "./Process.js"
export type { SeederKind } from "./ReferenceClients.js"

/** The swarm could not be brought up, or a measured download could not be measured. */
export class SwarmError extends Data.TaggedError("SwarmError")<{
  readonly command: string
  readonly reason: string
  readonly output: string
}> {
  override get message() {
    return `${this.command}: ${this.reason}${this.output === "" ? "" : `\n${tail(this.output)}`}`
  }
}

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
 * A `fetchWith(swarm, "custom", { clientCmd })` command line that runs our CLI, e.g.
 * `cliCommand("download -o {out} {torrent}")` (`fetchWith` substitutes and quotes the placeholders).
 */
export const cliCommand = (template: string): string => `${shellQuote(process.execPath)} ${shellQuote(cliPath)} ${template}`

// ---------------------------------------------------------------------------------------------
// The swarm

export interface SwarmOptions {
  /** The swarm's folder; by default a fresh temporary folder, deleted on release. */
  readonly dir?: string
  readonly basePort: number
  readonly sizeMib: number
  /** 0: tracker, payload and torrent only (our client seeds). */
  readonly seeders: number
  /** Seeder kinds, cycled (default aria2, transmission). */
  readonly mix?: ReadonlyArray<Reference.SeederKind>
  /** No `private` flag in the info dictionary. */
  readonly public?: boolean
  /** 1 (default): `payload.bin`; more: a folder `payload` of files of unequal sizes. */
  readonly files?: number
  readonly pieceKib?: number
  /** The payload's bytes derive from it (default: random); same seed, same info hash. */
  readonly payloadSeed?: string
  /**
   * `distinct` (the default) puts seeder i on 127.0.0.(10+i): Transmission refuses a connection
   * while another handshake from the same address is in progress, and tells peers apart by address
   * alone, so on `same` (127.0.0.1 for all) it refuses our client at 127.0.0.1 now and then.
   */
  readonly seederAddrs?: "same" | "distinct"
  /** aria2 seeders only: a cap on what each sends in all, in aria2's syntax (`1M`: 1 MiB/s). */
  readonly seederUploadLimit?: string
}

export interface SwarmEnv {
  readonly SWARM_DIR: string
  readonly TORRENT: string
  readonly MAGNET: string
  readonly INFO_HASH: string
  /** `payload.bin` (one file) or `payload` (a folder). */
  readonly TORRENT_NAME: string
  /** The torrent's announce URL (HTTP). */
  readonly TRACKER: string
  readonly TRACKER_HTTP: string
  /** The same tracker over UDP (BEP 15). */
  readonly TRACKER_UDP: string
  readonly SCRAPE: string
  readonly PRIVATE: boolean
  readonly SIZE_BYTES: number
  readonly PIECE_LENGTH: number
  readonly NUM_PIECES: number
  readonly NUM_FILES: number
  /** What the seeders serve: `DATA_DIR/TORRENT_NAME` is `DATA_PATH`. */
  readonly DATA_DIR: string
  readonly DATA_PATH: string
  /** SHA-256 of every file concatenated in torrent order. */
  readonly DATA_SHA256: string
  readonly FILES: ReadonlyArray<PayloadFile>
  readonly SEEDERS: ReadonlyArray<{ readonly kind: Reference.SeederKind; readonly address: string }>
  /** `ip:port` of each seeder. */
  readonly SEEDER_PEERS: ReadonlyArray<string>
  readonly TRACKER_PORT: number
  readonly BASE_PORT: number
  readonly FETCH_PORT: number
  readonly CLIENT_PORT: number
}

const loopback = "127.0.0.1"

const swarmFailure = (command: string, reason: string, output = "") => new SwarmError({ command, reason, output })

const promise = <A>(command: string, run: () => Promise<A>): Effect.Effect<A, SwarmError> =>
  Effect.tryPromise({ try: run, catch: (cause) => swarmFailure(command, String(cause)) })

/** Payload, torrent and magnet link of a swarm in `dir`. */
const makeTorrent = (options: SwarmOptions, dir: string) =>
  promise("payload", async () => {
    const pieceLength = (options.pieceKib ?? 256) * 1024
    const dataDir = path.join(dir, "data")
    const payload = await writePayload({
      dataDir,
      sizeBytes: options.sizeMib * 1024 * 1024,
      files: options.files ?? 1,
      pieceLength,
      seed: options.payloadSeed ?? `${Date.now()}-${Math.random()}`
    })
    const info = infoOf(payload, pieceLength, options.public !== true)
    const announce = `http://${loopback}:${options.basePort}/announce`
    const torrent = path.join(dir, "test.torrent")
    await fs.writeFile(torrent, Bencode.encode(Bencode.dict({ announce: Bencode.text(announce), info })))
    const infoHash = toHex(sha1(Bencode.encode(info)))
    return { payload, pieceLength, dataDir, announce, torrent, infoHash }
  })

/** opentracker on P (TCP and UDP), tracking only the swarm's info hash (Debian builds it in whitelist mode). */
const startTracker = (dir: string, port: number, infoHash: string) =>
  Effect.gen(function* () {
    const trackerDir = path.join(dir, "tracker")
    // as root it chroots to -d and drops to `nobody`: the whitelist must be world-readable, and
    // -w is read relative to the working folder
    yield* promise("tracker", async () => {
      await fs.mkdir(trackerDir, { recursive: true, mode: 0o755 })
      await fs.writeFile(path.join(trackerDir, "whitelist.txt"), `${infoHash}\n`, { mode: 0o644 })
    })
    const port_ = String(port)
    yield* startProcess("opentracker", ["-i", loopback, "-p", port_, "-P", port_, "-d", trackerDir, "-w", "whitelist.txt"], {
      cwd: trackerDir
    })
  })

interface SeederSpec {
  readonly kind: Reference.SeederKind
  readonly index: number
  readonly address: string
  readonly port: number
  readonly uploadLimit: string | undefined
}

/** Starts one seeder for the rest of the scope. */
const startSeeder = (spec: SeederSpec, swarm: Pick<SwarmEnv, "SWARM_DIR" | "TORRENT" | "DATA_DIR" | "BASE_PORT">) =>
  Effect.gen(function* () {
    const workDir = path.join(swarm.SWARM_DIR, "seeders", `s${spec.index}-${spec.kind}`)
    yield* promise("seeder", () => fs.mkdir(workDir, { recursive: true }))
    const start = (command: Reference.Command, ready?: RegExp) =>
      startProcess(command.file, command.args, {
        cwd: workDir,
        ...(command.env === undefined ? {} : { env: command.env }),
        ...(ready === undefined ? {} : { ready, readyTimeoutMs: 60_000 })
      })
    switch (spec.kind) {
      case "aria2":
        return yield* start(
          Reference.aria2Seeder(swarm.TORRENT, swarm.DATA_DIR, spec.address, spec.port, { uploadLimit: spec.uploadLimit })
        )
      case "webtorrent":
        return yield* start(Reference.webtorrent("seed", swarm.TORRENT, swarm.DATA_DIR, spec.address, spec.port), /seeding/)
      case "libtorrent":
        return yield* start(Reference.libtorrent("seed", swarm.TORRENT, swarm.DATA_DIR, spec.address, spec.port), /seeding/)
      case "transmission": {
        const rpcPort = swarm.BASE_PORT + 100 + spec.index
        yield* promise("seeder", () =>
          Reference.writeTransmissionSettings(workDir, { bind: spec.address, port: spec.port, downloadDir: swarm.DATA_DIR, rpcPort }))
        yield* start(Reference.transmissionDaemon(workDir))
        // the RPC port opens a moment after the daemon starts
        const add = runProcess("transmission-remote", [`${loopback}:${rpcPort}`, "-a", swarm.TORRENT, "-w", swarm.DATA_DIR], {
          timeoutMs: 10_000
        }).pipe(
          Effect.filterOrFail((r) => r.code === 0, (r) => swarmFailure("transmission-remote -a", `exit ${r.code}`, r.stdout + r.stderr))
        )
        return yield* add.pipe(Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo("20 seconds"))))
      }
    }
  })

const seederSpecs = (options: SwarmOptions): Array<SeederSpec> => {
  const mix = options.mix ?? ["aria2", "transmission"]
  return Array.from({ length: options.seeders }, (_, i) => ({
    kind: mix[i % mix.length]!,
    index: i + 1,
    address: options.seederAddrs === "same" ? loopback : `127.0.0.${10 + i + 1}`,
    port: options.basePort + i + 1,
    uploadLimit: options.seederUploadLimit
  }))
}

/** The swarm's folder for the rest of the scope: a temporary one is deleted at the end, a given one keeps all but the outputs. */
const swarmDir = (options: SwarmOptions) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      options.dir === undefined
        ? fs.mkdtemp(path.join(os.tmpdir(), "bt-swarm-"))
        : fs.mkdir(options.dir, { recursive: true }).then(() => options.dir!)
    ),
    (dir) => Effect.promise(() => fs.rm(options.dir === undefined ? dir : outBase(dir), { recursive: true, force: true }))
  )

/**
 * Starts a swarm for the rest of the scope: payload and torrent, the tracker, the seeders; returns
 * once the tracker lists every seeder. The scope's release stops them all (in reverse order).
 */
export const swarmUp = (options: SwarmOptions): Effect.Effect<SwarmEnv, SwarmError | ProcessError, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* swarmDir(options)
    const made = yield* makeTorrent(options, dir)
    const specs = seederSpecs(options)
    const base = options.basePort
    const magnet = `magnet:?xt=urn:btih:${made.infoHash}&dn=${encodeURIComponent(made.payload.name)}&tr=${encodeURIComponent(made.announce)}`
    const env: SwarmEnv = {
      SWARM_DIR: dir,
      TORRENT: made.torrent,
      MAGNET: magnet,
      INFO_HASH: made.infoHash,
      TORRENT_NAME: made.payload.name,
      TRACKER: made.announce,
      TRACKER_HTTP: made.announce,
      TRACKER_UDP: `udp://${loopback}:${base}/announce`,
      SCRAPE: `http://${loopback}:${base}/scrape`,
      PRIVATE: options.public !== true,
      SIZE_BYTES: options.sizeMib * 1024 * 1024,
      PIECE_LENGTH: made.pieceLength,
      NUM_PIECES: made.payload.pieces.length / 20,
      NUM_FILES: made.payload.files.length,
      DATA_DIR: made.dataDir,
      DATA_PATH: made.payload.dataPath,
      DATA_SHA256: made.payload.sha256,
      FILES: made.payload.files,
      SEEDERS: specs.map((s) => ({ kind: s.kind, address: `${s.address}:${s.port}` })),
      SEEDER_PEERS: specs.map((s) => `${s.address}:${s.port}`),
      TRACKER_PORT: base,
      BASE_PORT: base,
      FETCH_PORT: base + 50,
      CLIENT_PORT: base + 60
    }
    yield* startTracker(dir, base, made.infoHash)
    yield* scrape(env).pipe(Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("15 seconds"))))
    yield* Effect.forEach(specs, (spec) => startSeeder(spec, env), { discard: true })
    yield* awaitSeeders(env, specs.length, "120 seconds")
    return env
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
// Measured downloads

export type FetchClient = Reference.LeecherKind | "custom"

export interface FetchOptions {
  /**
   * Required for `custom`: the command line (run by bash), with placeholders replaced by their
   * shell-quoted values: `{torrent}`, `{magnet}`, `{out}` (the torrent's file or folder in the
   * output folder), `{outdir}`, `{port}`, `{bind}`, `{tracker}`, `{peers}` (ip:port,...). See `cliCommand`.
   */
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
  /** libtorrent only: peers to dial besides the tracker's (`ip:port`). */
  readonly peers?: ReadonlyArray<string>
  /** Reference clients: arguments appended to the command line (aria2's last option wins). */
  readonly extraArgs?: ReadonlyArray<string>
}

export interface FetchResult {
  /** The client, `+magnet` when started from the magnet link, or the custom label. */
  readonly client: string
  /** The client's exit status (124: timed out). */
  readonly rc: number
  /** `OK`, `MISMATCH`, or why the files could not be compared. */
  readonly sha256: string
  /** `OK`, or `VIOLATION` when a socket of the client's process group left 127.0.0.0/8. */
  readonly loopback: string
  /** Wall seconds from the client's start to its exit. */
  readonly seconds: number
  /** CPU seconds (user + system, children included) and peak RSS, from /usr/bin/time -v. */
  readonly userS: number
  readonly sysS: number
  readonly maxRssKib: number
  /** 0 only when rc is 0, the payload matches and every socket stayed on loopback. */
  readonly exitCode: number
  /** The folder the payload was written to. */
  readonly out: string
  /** What the client printed, and the off-loopback sockets seen, for failure messages. */
  readonly log: string
}

const outBase = (swarmDir: string) => path.join(swarmDir, "fetch-out")

const substitute = (template: string, values: Record<string, string>): string =>
  template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? shellQuote(values[key]!) : whole))

const hostOf = (endpoint: string): string =>
  endpoint.slice(0, endpoint.lastIndexOf(":")).replace(/^\[|\]$/g, "").replace(/%.*$/, "")
const isLoopbackHost = (host: string): boolean => /^127\./.test(host) || host === "::1" || /^::ffff:127\./.test(host)

/** The pids of process group `pgid`, from /proc (the group of a client we started). */
const groupPids = (pgid: number): Promise<Set<string>> =>
  fs.readdir("/proc").then(async (entries) => {
    const pids = new Set<string>()
    for (const entry of entries.filter((e) => /^\d+$/.test(e))) {
      const stat = await fs.readFile(`/proc/${entry}/stat`, "utf8").catch(() => "")
      // after the command name (which may hold spaces): state ppid pgrp ...
      if (stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2] === String(pgid)) pids.add(entry)
    }
    return pids
  })

/** Sockets (`ss -tanup` lines) of process group `pgid` bound or connected outside the loopback. */
const offLoopbackSockets = (pgid: number): Effect.Effect<Array<string>> =>
  Effect.gen(function* () {
    const pids = yield* Effect.promise(() => groupPids(pgid))
    if (pids.size === 0) return []
    const ss = yield* runProcess("ss", ["-Htanup"], { timeoutMs: 5_000 }).pipe(
      Effect.map((r) => r.stdout),
      Effect.orElseSucceed(() => "")
    )
    return ss.split("\n").filter((line) => {
      if (![...line.matchAll(/pid=(\d+)/g)].some((m) => pids.has(m[1]!))) return false
      const [, , , , local = "", peer = ""] = line.trim().split(/\s+/)
      return !(isLoopbackHost(hostOf(local)) && (peer.endsWith(":*") || isLoopbackHost(hostOf(peer))))
    })
  })

const parseTimeV = (text: string) => {
  const field = (label: string) => Number(new RegExp(`${label}: ([\\d.]+)`).exec(text)?.[1] ?? NaN)
  return {
    userS: field("User time \\(seconds\\)"),
    sysS: field("System time \\(seconds\\)"),
    maxRssKib: field("Maximum resident set size \\(kbytes\\)")
  }
}

const clientCommand = (swarm: SwarmEnv, client: FetchClient, options: FetchOptions, ctx: {
  readonly out: string
  readonly port: number
  readonly bind: string
  readonly timeoutS: number
  readonly workDir: string
}): Effect.Effect<Reference.Command, SwarmError> => {
  if (client === "custom") {
    if (options.clientCmd === undefined) return Effect.fail(swarmFailure("fetchWith custom", "no clientCmd"))
    const line = substitute(options.clientCmd, {
      torrent: swarm.TORRENT,
      magnet: swarm.MAGNET,
      out: path.join(ctx.out, swarm.TORRENT_NAME),
      outdir: ctx.out,
      port: String(ctx.port),
      bind: ctx.bind,
      tracker: swarm.TRACKER,
      peers: swarm.SEEDER_PEERS.join(",")
    })
    return Effect.succeed({ file: "bash", args: ["-c", line] })
  }
  return promise(`fetchWith ${client}`, () =>
    Reference.leecher(client, options.magnet === true ? swarm.MAGNET : swarm.TORRENT, ctx.out, {
      ...ctx,
      ...(options.peers === undefined ? {} : { peers: options.peers })
    }).then((command) => ({ ...command, args: [...command.args, ...(options.extraArgs ?? [])] })))
}

/**
 * One download of the swarm's torrent into an emptied folder, measured: wall seconds, CPU and
 * peak RSS (/usr/bin/time -v), every file's SHA-256, and every socket of the client's process
 * group sampled each 0.5 s (a socket living less than that can be missed). A failed or timed-out
 * download is a result (look at `rc`, `sha256`, `exitCode`), not an error.
 */
export const fetchWith = (
  swarm: SwarmEnv,
  client: FetchClient,
  options: FetchOptions = {}
): Effect.Effect<FetchResult, SwarmError | ProcessError> =>
  Effect.gen(function* () {
    if (client === "custom") yield* built
    const label = client === "custom" ? options.label ?? "custom" : options.magnet === true ? `${client}+magnet` : client
    const timeoutS = options.timeoutS ?? 120
    const out = options.out ?? path.join(outBase(swarm.SWARM_DIR), options.label ?? client)
    const workDir = path.join(swarm.SWARM_DIR, "fetch", `${label}-${Date.now()}`)
    yield* promise("fetchWith", async () => {
      await fs.rm(out, { recursive: true, force: true })
      await fs.mkdir(out, { recursive: true })
      await fs.mkdir(workDir, { recursive: true })
    })
    const ctx = { out, port: options.port ?? swarm.FETCH_PORT, bind: options.bind ?? loopback, timeoutS, workDir }
    const command = yield* clientCommand(swarm, client, options, ctx)
    const timeFile = path.join(workDir, "time.txt")
    const violations = new Set<string>()
    let pgid: number | undefined
    const sampler = Effect.suspend(() => (pgid === undefined ? Effect.succeed([]) : offLoopbackSockets(pgid))).pipe(
      Effect.tap((lines) => Effect.sync(() => lines.forEach((l) => violations.add(l)))),
      Effect.repeat(Schedule.spaced("500 millis"))
    )
    const started = performance.now()
    const run = runProcess("/usr/bin/time", ["-v", "-o", timeFile, command.file, ...command.args], {
      // the client's own timeout first, ours 15 s later (aria2 announces `stopped` for a while after TERM)
      timeoutMs: (timeoutS + 15) * 1000,
      cwd: workDir,
      ...(command.env === undefined ? {} : { env: command.env }),
      onSpawn: (pid) => (pgid = pid)
    }).pipe(
      Effect.map((r) => ({ rc: r.code ?? 128, log: r.stdout + r.stderr })),
      Effect.catchIf((e) => e.reason === "Timeout", (e) => Effect.succeed({ rc: 124, log: e.output }))
    )
    const { rc, log } = yield* Effect.raceFirst(run, sampler.pipe(Effect.zipRight(Effect.never)))
    const seconds = (performance.now() - started) / 1000
    const usage = parseTimeV(yield* Effect.promise(() => fs.readFile(timeFile, "utf8").catch(() => "")))
    const digest = yield* Effect.promise(() => payloadSha256(out, { name: swarm.TORRENT_NAME, files: swarm.FILES }))
    const sha256 = digest === swarm.DATA_SHA256 ? "OK" : /^[0-9a-f]{64}$/.test(digest) ? "MISMATCH" : digest
    const loopbackCheck = violations.size === 0 ? "OK" : "VIOLATION"
    return {
      client: label,
      rc,
      sha256,
      loopback: loopbackCheck,
      seconds,
      ...usage,
      exitCode: rc !== 0 ? rc : sha256 !== "OK" ? 1 : loopbackCheck !== "OK" ? 3 : 0,
      out,
      log: `${log}${violations.size === 0 ? "" : `\noff-loopback sockets:\n${[...violations].join("\n")}`}`
    }
  })

/** Our CLI's `seed` on the swarm's CLIENT_PORT, re-announcing every 2 s, for the rest of the scope. */
export const ourSeeder = (swarm: SwarmEnv) =>
  startCli(["seed", swarm.TORRENT, swarm.DATA_PATH, "--host", "127.0.0.1", "--port", String(swarm.CLIENT_PORT), "--announce-interval", "2"], {
    ready: /listening on/,
    readyTimeoutMs: 30_000
  })

// ---------------------------------------------------------------------------------------------
// Tracker state

/** `complete` (seeders) and `incomplete` (leechers) of the swarm's torrent, from the tracker's scrape. */
export const scrape = (
  swarm: Pick<SwarmEnv, "INFO_HASH" | "SCRAPE">
): Effect.Effect<{ readonly complete: number; readonly incomplete: number }, SwarmError> => {
  const hash = fromHex(swarm.INFO_HASH, 20) ?? new Uint8Array(20)
  const query = Array.from(hash, (b) => `%${b.toString(16).padStart(2, "0")}`).join("")
  const url = `${swarm.SCRAPE}?info_hash=${query}`
  const fail = (reason: string) => swarmFailure(`scrape ${swarm.SCRAPE}`, reason)
  return Effect.tryPromise({
    try: (signal) => fetch(url, { signal }).then((r) => r.arrayBuffer()),
    catch: (cause) => fail(String(cause))
  }).pipe(
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => fail("no answer in 5 s") }),
    Effect.flatMap((body) => {
      const value = Bencode.decode(new Uint8Array(body))
      if (value._tag === "Left") return Effect.fail(fail(value.left.message))
      const files = Bencode.isDict(value.right) ? Bencode.get(value.right, "files") : undefined
      // an info hash nobody announced is simply absent (d5:filesdee)
      const entry = Bencode.isDict(files) ? files.get(Bencode.bytesToKey(hash)) : undefined
      const count = (key: string) => {
        const v = Bencode.isDict(entry) ? Bencode.get(entry, key) : undefined
        return Bencode.isInt(v) ? Number(v) : 0
      }
      return Effect.succeed({ complete: count("complete"), incomplete: count("incomplete") })
    })
  )
}

/** Waits (polling the scrape, bounded) until the tracker lists at least `count` seeders. */
export const awaitSeeders = (
  swarm: Pick<SwarmEnv, "INFO_HASH" | "SCRAPE">,
  count: number,
  timeout: Duration.DurationInput = "30 seconds"
) =>
  scrape(swarm).pipe(
    Effect.filterOrFail(
      (s) => s.complete >= count,
      (s) => swarmFailure("awaitSeeders", `tracker lists ${s.complete} of ${count} seeders`)
    ),
    Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.upTo(timeout)))
  )
