/**
 * CPU and memory of our download and our seeding, one peer to one on 127.0.0.1: our `seed` (or a
 * libtorrent seeder) serves a pseudo-random payload, announced through our own `tracker`, and our
 * `download` fetches it. Prints per run and as medians: the downloader's CPU seconds per GiB
 * (user + system, and the system part, from /usr/bin/time -v) and peak RSS, and the seeder's CPU per GiB uploaded
 * while it served (from /proc). CPU seconds hold up on a loaded machine where wall times do not.
 *
 *   npx tsx scripts/measure-cpu.ts
 * Environment (all optional):
 *   MEASURE_SIZE_MIB=256   payload size              MEASURE_RUNS=3           downloads
 *   MEASURE_SEEDER=ours    or libtorrent             MEASURE_PORT=29400       ports P..P+2+runs
 *   MEASURE_BIN=bin/bittorrent.cjs   the downloader's (and our seeder's) build, e.g. another checkout's
 *   MEASURE_PROFILE=<dir>  the downloader runs with node --cpu-prof, its profiles written there
 *   MEASURE_WRAP="perf record -g -o /tmp/perf.data --"   a command the downloader runs under
 *   MEASURE_NODE_ARGS="--perf-basic-prof"   more options for the downloader's node; a V8 flag makes
 *                          it reject the bundle's code cache (compiled for other flags) and rewrite it,
 *                          so its first run compiles everything: read the runs after it (rebuild after)
 *   MEASURE_DIR=/tmp/measure-cpu     where the payload (kept between runs) and downloads go
 *   MEASURE_LT_SET="enable_outgoing_tcp=false,enable_incoming_tcp=false,enable_outgoing_utp=true,enable_incoming_utp=true"
 *                          settings for the libtorrent seeder (that one: uTP only, as the bench's uTP case)
 */
import { execFileSync, spawn } from "node:child_process"
import { randomFillSync } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

const env = process.env
const sizeMib = Number(env["MEASURE_SIZE_MIB"] ?? 256)
const runs = Number(env["MEASURE_RUNS"] ?? 3)
const seederKind = env["MEASURE_SEEDER"] ?? "ours"
const port = Number(env["MEASURE_PORT"] ?? 29400)
const bin = path.resolve(env["MEASURE_BIN"] ?? "bin/bittorrent.cjs")
const profileDir = env["MEASURE_PROFILE"]
const wrap = (env["MEASURE_WRAP"] ?? "").split(" ").filter((w) => w !== "")
const nodeArgs = (env["MEASURE_NODE_ARGS"] ?? "").split(" ").filter((w) => w !== "")
const dir = env["MEASURE_DIR"] ?? "/tmp/measure-cpu"
const ourBin = path.resolve("bin/bittorrent.cjs")
const libtorrentSettings = (env["MEASURE_LT_SET"] ?? "").split(",").filter((s) => s !== "").flatMap((pair) => ["--set", pair])

const payload = path.join(dir, `payload-${sizeMib}.bin`)
const torrent = path.join(dir, `payload-${sizeMib}.torrent`)

/** The payload (pseudo-random, written once per size) and its private torrent on our tracker. */
const prepare = () => {
  fs.mkdirSync(dir, { recursive: true })
  if (!fs.existsSync(payload) || fs.statSync(payload).size !== sizeMib * 1024 * 1024) {
    const fd = fs.openSync(payload, "w")
    const chunk = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < sizeMib; i++) fs.writeSync(fd, randomFillSync(chunk))
    fs.closeSync(fd)
  }
  fs.rmSync(torrent, { force: true })
  execFileSync(process.execPath, [ourBin, "create", "-o", torrent, "-a", `http://127.0.0.1:${port}/announce`, "--piece-length", "262144", "--private", payload])
}

/** A background process, resolved once a line of its output matches `ready`. */
const started: Array<ReturnType<typeof spawn>> = []
const start = (file: string, args: ReadonlyArray<string>, ready: RegExp) =>
  new Promise<ReturnType<typeof spawn>>((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], detached: true })
    started.push(child)
    let seen = ""
    const onData = (data: Buffer) => {
      seen += data.toString()
      if (ready.test(seen)) resolve(child)
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", (code) => reject(new Error(`${file} ${args.join(" ")} exited (${code}):\n${seen.slice(-2000)}`)))
    setTimeout(() => reject(new Error(`${file} not ready in 120 s:\n${seen.slice(-2000)}`)), 120_000).unref()
  })

/** CPU seconds (user + system) of a live process, from /proc/<pid>/stat (clock ticks of 1/100 s). */
const cpuOf = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const rssOf = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024

const seeder = () =>
  seederKind === "libtorrent"
    ? start("/usr/bin/python3", ["scripts/reference-clients/lt.py", "seed", torrent, dir, "--listen", `127.0.0.1:${port + 1}`, ...libtorrentSettings], /seeding/)
    : start(process.execPath, [bin, "seed", torrent, payload, "--host", "127.0.0.1", "--port", String(port + 1), "--no-dht"], /listening on/)

interface Sample {
  readonly seconds: number
  readonly cpu: number
  readonly systemCpu: number
  readonly rss: number
  readonly seederCpu: number
}

/** Runs to the end, its stderr collected (async: the seeders' output pipes are read meanwhile). */
const runToEnd = (file: string, args: ReadonlyArray<string>, childEnv: NodeJS.ProcessEnv) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(file, args, { env: childEnv, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (data: Buffer) => (stderr += data.toString()))
    child.on("exit", (code) => (code === 0 ? resolve(stderr) : reject(new Error(`${args.join(" ")} exited (${code}):\n${stderr.slice(-2000)}`))))
  })

const downloadOnce = async (runNumber: number, seederPid: number): Promise<Sample> => {
  const out = path.join(dir, `out-${runNumber}`)
  const state = path.join(dir, "state")
  fs.rmSync(out, { recursive: true, force: true })
  fs.rmSync(state, { recursive: true, force: true })
  const node = [...wrap, process.execPath, ...nodeArgs, ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`])]
  const before = cpuOf(seederPid)
  const started = Date.now()
  const args = ["-v", ...node, bin, "download", "-o", out, torrent, "--host", "127.0.0.1", "--port", String(port + 2 + runNumber), "--no-dht", "--quiet"]
  const report = await runToEnd("/usr/bin/time", args, { ...env, XDG_STATE_HOME: state })
  const seconds = (Date.now() - started) / 1000
  const seederCpu = cpuOf(seederPid) - before
  const field = (name: string) => Number(new RegExp(`${name}: ([\\d.]+)`).exec(report)?.[1] ?? NaN)
  if (fs.statSync(out).size !== sizeMib * 1024 * 1024) throw new Error(`download ${runNumber}: wrong size`)
  fs.rmSync(out, { force: true })
  const systemCpu = field("System time \\(seconds\\)")
  return { seconds, cpu: field("User time \\(seconds\\)") + systemCpu, systemCpu, rss: field("Maximum resident set size \\(kbytes\\)") / 1024, seederCpu }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const main = async () => {
  prepare()
  const gib = sizeMib / 1024
  await start(process.execPath, [ourBin, "tracker", "--host", "127.0.0.1", "--port", String(port), "--interval", "5"], /./)
  const seed = await seeder()
  const samples: Array<Sample> = []
  for (let run = 1; run <= runs; run++) {
    const s = await downloadOnce(run, seed.pid!)
    samples.push(s)
    console.log(`run ${run}: ${s.seconds.toFixed(2)} s, download ${(s.cpu / gib).toFixed(2)} CPU-s/GiB (system ${(s.systemCpu / gib).toFixed(2)}), peak RSS ${s.rss.toFixed(0)} MiB; ` +
      `${seederKind} seeder ${(s.seederCpu / gib).toFixed(2)} CPU-s/GiB`)
  }
  console.log(`median of ${runs}, ${sizeMib} MiB from ${seederKind} (${bin}): ${median(samples.map((s) => s.seconds)).toFixed(2)} s, ` +
    `download ${(median(samples.map((s) => s.cpu)) / gib).toFixed(2)} CPU-s/GiB, peak RSS ${Math.max(...samples.map((s) => s.rss)).toFixed(0)} MiB, ` +
    `seeder ${(median(samples.map((s) => s.seederCpu)) / gib).toFixed(2)} CPU-s/GiB (peak RSS ${rssOf(seed.pid!).toFixed(0)} MiB)`)
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e)
  process.exitCode = 1
}).finally(() => {
  for (const child of started) if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM")
})
