/**
 * `npm run bench`: our client against reference clients on the loopback swarm of
 * test/support/Swarm.ts, per payload size:
 * - downloading: aria2c, WebTorrent, libtorrent and ours from 3 seeders (aria2, Transmission,
 *   aria2), the clients interleaved run by run;
 * - seeding: a libtorrent leecher downloading from our seeder (`seed ... --host 127.0.0.1`), then
 *   from a libtorrent seeder, alone on a swarm of their own, interleaved.
 * - transports: our download from one libtorrent seeder over plain TCP (uTP off on its side),
 *   with MSE forced (libtorrent pe_forced/RC4, ours `--encryption require`) and over uTP alone
 *   (TCP off on libtorrent's side), one case at a time; the ratio is to the plain TCP case, and
 *   `ours-X/libtorrent-X` compares ours with libtorrent's own leecher so configured (a reference
 *   for what the transport costs a mature client on the same seeder).
 * The downloads also measure `ours-mse`: ours with `--encryption require` from the same swarm
 * (aria2 and Transmission take MSE), with its ratio to `ours`.
 * Prints medians, the ratio to the best reference (downloads), to libtorrent (seeding) or to our
 * TCP case (transports), CPU seconds per GiB and peak RSS of every client, and writes them all to
 * a summary file. Beside each client's own CPU it prints the whole machine's (every process: the
 * seeders, the tracker, the kernel's work for them) and how busy the machine's cores were: on a
 * machine of few cores where they are near 100%, a download's time is the CPU of everyone in the
 * swarm shared out, and a client wins by costing less CPU.
 *
 * Environment (all optional):
 *   BENCH_SIZES="256 1024"  payload sizes in MiB        BENCH_RUNS=3       runs per client and size
 *   BENCH_CLIENTS=aria2c,webtorrent,libtorrent,ours,ours-mse                BENCH_TIMEOUT=600  seconds per download
 *   BENCH_SECTIONS="download seeding transports"   which sections run (BENCH_SEEDING=0 drops seeding)
 *   BENCH_TRANSPORTS=tcp,mse,utp   the transport cases  BENCH_BASE_PORT=29600 (P..P+160, P+200..P+360, P+1600..P+1663)
 *   BENCH_OUT=/tmp/bench-results/<UTC date>.txt          the summary file (outside the repository)
 *   BENCH_BASELINE=<path to another checkout's bin/bittorrent.cjs>   also measure that build ("baseline")
 *   BENCH_BASELINE_ARGS="--host 127.0.0.1 --port {port}"   its options (older builds: "--port {port}")
 * A failed run is reported in its table and the rest goes on; the exit status is 1 if any failed.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { awaitSeeders, cliCommand, fetchWith, runProcess, startCli, startProcess, swarmUp, type FetchClient, type FetchResult, type SwarmEnv } from "../test/support/Swarm.js"
import * as Reference from "../test/support/ReferenceClients.js"

const env = process.env
const sizes = (env["BENCH_SIZES"] ?? "256 1024").split(/[\s,]+/).filter((s) => s !== "").map(Number)
const runs = Number(env["BENCH_RUNS"] ?? 3)
/** Another build of our CLI (e.g. an earlier commit's `bin/bittorrent.cjs`), measured as `baseline` beside ours. */
const baselineBin = env["BENCH_BASELINE"]
/**
 * Its options after the output and torrent. Builds since `--host` (2026-12-01) need it, or they
 * listen on 0.0.0.0 and fail the loopback check; earlier ones take `--port {port}` alone.
 */
const baselineArgs = env["BENCH_BASELINE_ARGS"] ?? "--host 127.0.0.1 --port {port}"
const clients = [...(env["BENCH_CLIENTS"] ?? "aria2c,webtorrent,libtorrent,ours,ours-mse").split(","), ...(baselineBin === undefined ? [] : ["baseline"])]
type TransportCase = "tcp" | "mse" | "utp"

/** libtorrent's settings per case: the transport it may use, and for `mse` encryption forced (pe_forced, RC4). */
const libtorrentSettings: Record<TransportCase, Readonly<Record<string, number | boolean>>> = {
  tcp: { enable_outgoing_utp: false, enable_incoming_utp: false },
  mse: { enable_outgoing_utp: false, enable_incoming_utp: false, out_enc_policy: 0, in_enc_policy: 0, allowed_enc_level: 2 },
  utp: { enable_outgoing_tcp: false, enable_incoming_tcp: false, enable_outgoing_utp: true, enable_incoming_utp: true }
}

const isOurs = (client: string) => client === "ours" || client === "ours-mse" || client === "baseline"
const timeoutS = Number(env["BENCH_TIMEOUT"] ?? 600)
const sections = new Set((env["BENCH_SECTIONS"] ?? "download seeding transports").split(/[\s,]+/))
const withSeeding = env["BENCH_SEEDING"] !== "0" && sections.has("seeding")
const transportCases = (env["BENCH_TRANSPORTS"] ?? "tcp,mse,utp").split(",").filter((c): c is TransportCase => c in libtorrentSettings)
const basePort = Number(env["BENCH_BASE_PORT"] ?? 29600)
const outFile = env["BENCH_OUT"] ?? `/tmp/bench-results/${new Date().toISOString().replace(/[-:]|\.\d+/g, "")}.txt`

interface Sample {
  readonly ok: boolean
  readonly seconds: number
  /** CPU seconds of the measured process (the downloader, or the seeder while it served). */
  readonly cpuS: number
  readonly rssKib: number
  /** CPU seconds of the whole machine meanwhile (every process and the kernel). */
  readonly machineCpuS: number
}

const cores = os.cpus().length

/** Busy CPU seconds of the whole machine so far: user, nice, system, irq, softirq and steal of /proc/stat's first line. */
const machineBusyS = Effect.promise(async () => {
  const fields = (await fs.readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/).map(Number)
  return [1, 2, 3, 6, 7, 8].reduce((sum, i) => sum + (fields[i] ?? 0), 0) / 100
})

/** `effect`'s result with the machine's busy CPU seconds while it ran. */
const withMachineCpu = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const before = yield* machineBusyS
    const result = yield* effect
    return [result, (yield* machineBusyS) - before] as const
  })

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const lines: Array<string> = []
const say = (line: string) => {
  lines.push(line)
  console.log(line)
}
let failed = false

/** A table of medians: seconds, MiB/s, CPU s per GiB, peak RSS, and the ratio to `baseline`'s median. */
const report = (title: string, sizeMib: number, samples: ReadonlyMap<string, Array<Sample>>, baselines: ReadonlyArray<string>) => {
  const medianOf = (name: string) => median((samples.get(name) ?? []).filter((s) => s.ok).map((s) => s.seconds))
  const best = baselines.map((b) => [b, medianOf(b)] as const).filter(([, m]) => !Number.isNaN(m)).sort((a, b) => a[1] - b[1])[0]
  say(`\n${title}, ${sizeMib} MiB (medians of successful runs; ratio to ${best?.[0] ?? "no reference"})`)
  say(`client            ok   median s   MiB/s   CPU s/GiB   peak RSS MiB   ratio   machine CPU s/GiB   busy % of ${cores} cores`)
  const ratios: Array<string> = []
  for (const [name, all] of samples) {
    const ok = all.filter((s) => s.ok)
    const m = medianOf(name)
    const cpu = median(ok.map((s) => s.cpuS)) / (sizeMib / 1024)
    const rss = Math.max(0, ...ok.map((s) => s.rssKib)) / 1024
    const ratio = best === undefined ? NaN : m / best[1]
    const machineCpu = median(ok.map((s) => s.machineCpuS)) / (sizeMib / 1024)
    const busy = median(ok.map((s) => (100 * s.machineCpuS) / (s.seconds * cores)))
    say(`${name.padEnd(16)} ${`${ok.length}/${all.length}`.padStart(4)} ${m.toFixed(2).padStart(10)} ${(sizeMib / m).toFixed(1).padStart(7)} ` +
      `${cpu.toFixed(2).padStart(11)} ${rss.toFixed(0).padStart(14)} ${ratio.toFixed(2).padStart(7)} ${machineCpu.toFixed(2).padStart(19)} ${busy.toFixed(0).padStart(24)}`)
    if (!baselines.includes(name) && best !== undefined) ratios.push(`RATIO ${title} ${sizeMib} MiB ${name}/${best[0]}=${ratio.toFixed(2)}`)
  }
  ratios.forEach(say)
}

const record = (samples: Map<string, Array<Sample>>, name: string, sample: Sample) => {
  if (!sample.ok) failed = true
  samples.set(name, [...(samples.get(name) ?? []), sample])
}

const ourDownload = "download -o {out} {torrent} --host 127.0.0.1 --port {port} --no-dht"

/** Our download command line; a baseline build may predate `--host` (it then listened on nothing). */
const ourCommand = (client: string) =>
  client === "ours"
    ? cliCommand(ourDownload)
    : client === "ours-mse"
    ? cliCommand(`${ourDownload} --encryption require`)
    : `${JSON.stringify(process.execPath)} ${JSON.stringify(baselineBin)} download -o {out} {torrent} ${baselineArgs}`

/** A RATIO line of one of our cases to another, when both have successful runs. */
const ratioTo = (title: string, sizeMib: number, samples: ReadonlyMap<string, Array<Sample>>, name: string, reference: string) => {
  const medianOf = (n: string) => median((samples.get(n) ?? []).filter((s) => s.ok).map((s) => s.seconds))
  const ratio = medianOf(name) / medianOf(reference)
  if (!Number.isNaN(ratio)) say(`RATIO ${title} ${sizeMib} MiB ${name}/${reference}=${ratio.toFixed(2)}`)
}

/**
 * The port of the n-th download of a section: each gets its own, so no downloader meets what the
 * seeders still hold for the one before it on the same address:port (libtorrent refuses a uTP
 * peer for seconds while it holds its old connection; seeders dial back announced ports).
 */
const downloadPort = (swarm: SwarmEnv, n: number) => swarm.BASE_PORT + 4 + (n % 44)

/** A download's sample: its outcome, the downloader's CPU and RSS, and the machine's CPU meanwhile. */
const downloadSample = ([r, machineCpuS]: readonly [FetchResult, number]): Sample =>
  ({ ok: r.exitCode === 0, seconds: r.seconds, cpuS: r.userS + r.sysS, rssKib: r.maxRssKib, machineCpuS })

const download = (swarm: SwarmEnv, client: string, n: number) =>
  withMachineCpu(fetchWith(swarm, isOurs(client) ? "custom" : (client as FetchClient), {
    label: client,
    timeoutS,
    port: downloadPort(swarm, n),
    ...(isOurs(client) ? { clientCmd: ourCommand(client) } : {})
  })).pipe(
    Effect.tap(([r]) => (r.exitCode === 0 ? Effect.void : Effect.sync(() => console.error(`bench: ${client} failed (rc ${r.rc}, ${r.sha256}):\n${r.log.slice(-2000)}`)))),
    Effect.tap(([r]) => Effect.promise(() => fs.rm(r.out, { recursive: true, force: true }))),
    Effect.map(downloadSample)
  )

const downloads = (sizeMib: number) =>
  Effect.gen(function* () {
    const swarm = yield* swarmUp({ basePort, sizeMib, seeders: 3, mix: ["aria2", "transmission"] })
    const samples = new Map<string, Array<Sample>>(clients.map((c) => [c, []]))
    for (let run = 1; run <= runs; run++) {
      for (const [index, client] of clients.entries()) {
        const sample = yield* download(swarm, client, (run - 1) * clients.length + index)
        record(samples, client, sample)
        console.error(`bench: ${sizeMib} MiB run ${run} ${client}: ${sample.seconds.toFixed(2)} s${sample.ok ? "" : " FAILED"}`)
      }
    }
    report("download", sizeMib, samples, clients.filter((c) => !isOurs(c)))
    ratioTo("download", sizeMib, samples, "ours-mse", "ours")
  }).pipe(Effect.scoped)

/** One transport case: a libtorrent seeder so configured, and `runs` downloads of ours from it alone. */
const transportCase = (swarm: SwarmEnv, sizeMib: number, name: TransportCase, samples: Map<string, Array<Sample>>) =>
  Effect.gen(function* () {
    // a port per case: the tracker may still list the previous case's seeder for a while
    const port = swarm.BASE_PORT + 61 + transportCases.indexOf(name)
    const command = Reference.libtorrent("seed", swarm.TORRENT, swarm.DATA_DIR, "127.0.0.1", port, {
      settings: libtorrentSettings[name]
    })
    yield* startProcess(command.file, command.args, { ready: /seeding/, readyTimeoutMs: 120_000 })
    yield* awaitSeeders(swarm, 1, "120 seconds")
    const extra = name === "mse" ? " --encryption require" : ""
    // libtorrent's own leecher, so configured, beside ours: what the transport costs a reference client
    const settingsArgs = Object.entries(libtorrentSettings[name]).flatMap(([key, value]) => ["--set", `${key}=${value}`])
    for (let run = 1; run <= runs; run++) {
      for (const [index, leecher] of [`ours-${name}`, `libtorrent-${name}`].entries()) {
        const port = downloadPort(swarm, 2 * (run - 1) + index)
        const measured = yield* withMachineCpu(leecher.startsWith("ours")
          ? fetchWith(swarm, "custom", { label: leecher, timeoutS, port, clientCmd: cliCommand(ourDownload + extra) })
          : fetchWith(swarm, "libtorrent", { label: leecher, timeoutS, port, extraArgs: settingsArgs }))
        const [result] = measured
        if (result.exitCode !== 0) console.error(`bench: ${leecher} failed (rc ${result.rc}, ${result.sha256}):\n${result.log.slice(-2000)}`)
        yield* Effect.promise(() => fs.rm(result.out, { recursive: true, force: true }))
        const sample = downloadSample(measured)
        record(samples, leecher, sample)
        console.error(`bench: ${sizeMib} MiB transports run ${run} ${leecher}: ${sample.seconds.toFixed(2)} s${sample.ok ? "" : " FAILED"}`)
      }
    }
  }).pipe(Effect.scoped)

const transports = (sizeMib: number) =>
  Effect.gen(function* () {
    const swarm = yield* swarmUp({ basePort: basePort + 1600, sizeMib, seeders: 0 })
    const samples = new Map<string, Array<Sample>>()
    for (const name of transportCases) yield* transportCase(swarm, sizeMib, name, samples)
    say("(transports: our download, and libtorrent's, from one libtorrent seeder; tcp plain, mse with RC4 forced, utp with TCP off on both sides)")
    report("transports", sizeMib, samples, transportCases.includes("tcp") ? ["ours-tcp"] : [])
    for (const name of transportCases) ratioTo("transports", sizeMib, samples, `ours-${name}`, `libtorrent-${name}`)
  }).pipe(Effect.scoped)

/** CPU seconds (user + system) and peak RSS of a live process, from /proc. */
const processUsage = (pid: number) =>
  Effect.promise(async () => {
    const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const status = await fs.readFile(`/proc/${pid}/status`, "utf8")
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the name), in clock ticks of 1/100 s
    return { cpuS: (Number(fields[11]) + Number(fields[12])) / 100, rssKib: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) }
  })

const startSeeder = (swarm: SwarmEnv, seeder: "ours" | "libtorrent") => {
  if (seeder === "ours") {
    return startCli(["seed", swarm.TORRENT, swarm.DATA_PATH, "--host", "127.0.0.1", "--port", String(swarm.CLIENT_PORT), "--no-dht"], {
      ready: /listening on/,
      readyTimeoutMs: 120_000
    })
  }
  const command = Reference.libtorrent("seed", swarm.TORRENT, swarm.DATA_DIR, "127.0.0.1", swarm.CLIENT_PORT)
  return startProcess(command.file, command.args, { ready: /seeding/, readyTimeoutMs: 120_000 })
}

/** One libtorrent download from `seeder`; the sample is the seeder's CPU and RSS while it served. */
const seedOnce = (swarm: SwarmEnv, seeder: "ours" | "libtorrent") =>
  Effect.gen(function* () {
    const process_ = yield* startSeeder(swarm, seeder)
    const before = yield* processUsage(process_.pid)
    const [result, machineCpuS] = yield* withMachineCpu(
      fetchWith(swarm, "libtorrent", { label: `lt-from-${seeder}`, timeoutS, peers: [`127.0.0.1:${swarm.CLIENT_PORT}`] })
    )
    const after = yield* processUsage(process_.pid)
    yield* Effect.promise(() => fs.rm(result.out, { recursive: true, force: true }))
    if (result.exitCode !== 0) console.error(`bench: libtorrent from ${seeder} failed:\n${result.log.slice(-2000)}`)
    return { ok: result.exitCode === 0, seconds: result.seconds, cpuS: after.cpuS - before.cpuS, rssKib: after.rssKib, machineCpuS }
  }).pipe(Effect.scoped)

const seeding = (sizeMib: number) =>
  Effect.gen(function* () {
    const swarm = yield* swarmUp({ basePort: basePort + 200, sizeMib, seeders: 0 })
    const samples = new Map<string, Array<Sample>>([["ours", []], ["libtorrent", []]])
    for (let run = 1; run <= runs; run++) {
      for (const seeder of ["ours", "libtorrent"] as const) {
        const sample = yield* seedOnce(swarm, seeder)
        record(samples, seeder, sample)
        console.error(`bench: ${sizeMib} MiB seeding run ${run} ${seeder}: ${sample.seconds.toFixed(2)} s${sample.ok ? "" : " FAILED"}`)
      }
    }
    say("(seeding: the seeder's CPU while it served, and its peak RSS; seconds are the libtorrent leecher's)")
    report("seeding", sizeMib, samples, ["libtorrent"])
  }).pipe(Effect.scoped)

const main = Effect.gen(function* () {
  const commit = yield* runProcess("git", ["rev-parse", "--short", "HEAD"], { timeoutMs: 10_000 }).pipe(
    Effect.map((r) => r.stdout.trim()),
    Effect.orElseSucceed(() => "unknown")
  )
  say(`# effect-bittorrent benchmark, ${new Date().toISOString()}, node ${process.version}, commit ${commit}`)
  say(`# sizes ${sizes.join(", ")} MiB, ${runs} runs, sections ${[...sections].join(",")}, clients ${clients.join(",")}, transports ${transportCases.join(",")}`)
  for (const sizeMib of sizes) {
    if (sections.has("download")) yield* downloads(sizeMib)
    if (withSeeding) yield* seeding(sizeMib)
    if (sections.has("transports") && transportCases.length > 0) yield* transports(sizeMib)
  }
})

Effect.runPromise(main).then(
  async () => {
    await fs.mkdir(path.dirname(outFile), { recursive: true })
    await fs.writeFile(outFile, `${lines.join("\n")}\n`)
    console.error(`bench: results in ${outFile}`)
    process.exitCode = failed ? 1 : 0
  },
  (error) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  }
)
