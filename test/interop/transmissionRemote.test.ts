/**
 * Debian's transmission-remote (3.00) drives the real `bittorrent daemon` process over its
 * Transmission RPC, on 127.0.0.1: a .torrent and a magnet link added, both fetched from local
 * seeders of our own (found through our own tracker), listed, stopped and started, detailed,
 * removed; the session shown; a wrong password refused. Bad requests over plain HTTP get the right
 * status and the daemon goes on; killed with SIGKILL and started again, it lists its torrents as
 * they were, complete without fetching anything again. `--exit` (session-close) ends the daemon
 * cleanly, and it starts again with its torrents.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { cliPath, ensureBuilt } from "../support/cli.js"
import { runProcess, startProcess } from "../support/Process.js"
import { scopedHttpServer } from "../support/ScopedHttpServer.js"
import { payloadBytes } from "../support/torrent.js"

const remoteBin = "/usr/bin/transmission-remote"
const node = process.execPath

const cli = (args: ReadonlyArray<string>) =>
  Effect.flatMap(runProcess(node, [cliPath, ...args], { timeoutMs: 30_000 }), (r) =>
    r.code === 0 ? Effect.succeed(r.stdout) : Effect.dieMessage(`bittorrent ${args.join(" ")}: exit ${r.code}\n${r.stderr}`))

const background = (args: ReadonlyArray<string>, ready?: RegExp) =>
  startProcess(node, [cliPath, ...args], ready === undefined ? {} : { ready })

/** The daemon on loopback, any free ports; gives its RPC port. */
const daemon = (root: string, extra: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const args = ["daemon", "--rpc-port", "0", "--port", "0", "--host", "127.0.0.1", "--no-dht", "--state-dir", path.join(root, "state"), "--download-dir", path.join(root, "dl"), ...extra]
    const process = yield* background(args, /listening on http:\/\/127\.0\.0\.1:\d+/)
    const { stdout } = yield* process.output
    return { ...process, port: Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)![1]) }
  })

const remote = (port: number, ...args: ReadonlyArray<string>) =>
  Effect.map(runProcess(remoteBin, [`127.0.0.1:${port}`, ...args], { timeoutMs: 20_000 }), (r) => ({ ...r, out: r.stdout + r.stderr }))

interface Row {
  readonly id: number
  readonly done: string
  readonly have: string
  readonly status: string
  readonly name: string
}
type Rows = ReadonlyArray<Row>

/** `-l` rows by id: done, have, status, name. */
const listed = (port: number) =>
  Effect.map(remote(port, "-l"), ({ stdout }): Rows =>
    stdout.split("\n").flatMap((line) => {
      const m = /^\s+(\d+)\*?\s+(\S+)\s+(\S+ \S+|None)\s+\S+\s+\S+\s+\S+\s+\S+\s+(Stopped|Idle|Seeding|Downloading|Up & Down|Queued|Verifying|Will Verify|Finished)\s+(.+)$/.exec(line)
      return m === null ? [] : [{ id: Number(m[1]), done: m[2]!, have: m[3]!, status: m[4]!, name: m[5]!.trim() }]
    }))

/** Polls `-l` until `ok` holds (bounded: 120 turns of 500 ms). */
const listedUntil = (port: number, ok: (rows: Rows) => boolean) =>
  Effect.gen(function* () {
    let rows = yield* listed(port)
    for (let turn = 0; turn < 120 && !ok(rows); turn++) {
      yield* Effect.sleep("500 millis")
      rows = yield* listed(port)
    }
    return rows
  })

/** A raw RPC call: the session id from the 409 first (unless `sessionId` is given), then the body. */
const rpc = (port: number, body: string, sessionId?: string) =>
  Effect.promise(async () => {
    const url = `http://127.0.0.1:${port}/transmission/rpc`
    const id = sessionId ?? (await fetch(url, { method: "POST", body: "{}" })).headers.get("x-transmission-session-id") ?? ""
    const response = await fetch(url, { method: "POST", body, headers: { "x-transmission-session-id": id } })
    return { status: response.status, text: await response.text(), id, answeredId: response.headers.get("x-transmission-session-id") }
  })

/** A body of `bytes` sent chunked (no length up front); gives the status answered (the write may be cut off after it). */
const chunkedPost = (port: number, sessionId: string, bytes: number) =>
  Effect.async<number>((resume) => {
    const request = http.request({ host: "127.0.0.1", port, path: "/transmission/rpc", method: "POST", headers: { "x-transmission-session-id": sessionId } })
    request.on("response", (response) => {
      response.resume()
      resume(Effect.succeed(response.statusCode ?? 0))
    })
    request.on("error", () => undefined) // EPIPE/ECONNRESET once the server stops reading
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    for (let sent = 0; sent < bytes; sent += chunk.length) request.write(chunk)
    request.end()
    return Effect.sync(() => request.destroy())
  }).pipe(Effect.timeout("20 seconds"))

/** Serves one file over HTTP on loopback for the rest of the scope. */
const serveFile = (file: string) =>
  Effect.map(scopedHttpServer((_, res) => res.end(readFileSync(file))), ({ port }) => `http://127.0.0.1:${port}/alpha.torrent`)

const tempRoot = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(path.join(tmpdir(), "bt-rpc-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Two torrents (one single-file, one multi-file), their tracker and a seeder of each. */
const swarm = (root: string) =>
  Effect.gen(function* () {
    const pay = path.join(root, "pay")
    mkdirSync(path.join(pay, "beta"), { recursive: true })
    writeFileSync(path.join(pay, "alpha.bin"), payloadBytes(300_000, 71))
    writeFileSync(path.join(pay, "beta", "one.bin"), payloadBytes(100_000, 72))
    writeFileSync(path.join(pay, "beta", "two.bin"), payloadBytes(50_000, 73))
    const tracker = yield* background(["tracker", "--port", "0"], /Tracker URL: \S+/)
    const url = /Tracker URL: (\S+)/.exec((yield* tracker.output).stdout)![1]!
    const torrents = { alpha: path.join(root, "alpha.torrent"), beta: path.join(root, "beta.torrent") }
    yield* cli(["create", "-a", url, "-o", torrents.alpha, path.join(pay, "alpha.bin")])
    yield* cli(["create", "-a", url, "-o", torrents.beta, path.join(pay, "beta")])
    const hash = (t: string) => Effect.map(cli(["info", t]), (out) => /Info Hash: ([0-9a-f]{40})/.exec(out)![1]!)
    const hashes = { alpha: yield* hash(torrents.alpha), beta: yield* hash(torrents.beta) }
    for (const [t, p] of [[torrents.alpha, "alpha.bin"], [torrents.beta, "beta"]] as const) {
      yield* background(["seed", "--port", "0", "--host", "127.0.0.1", "--no-dht", "-q", t, path.join(pay, p)])
    }
    return { torrents, hashes, magnet: `magnet:?xt=urn:btih:${hashes.beta}&dn=beta&tr=${encodeURIComponent(url)}` }
  })

const bothComplete = (rows: Rows) => rows.length === 2 && rows.every((r) => r.done === "100%")

describe("transmission-remote drives the daemon", () => {
  it.live("add (file, magnet, URL), list, stop/start, details, session, bad requests, SIGKILL and restart, remove", () =>
    Effect.gen(function* () {
      yield* Effect.promise(ensureBuilt)
      const root = yield* tempRoot
      const { torrents, hashes, magnet } = yield* swarm(root)
      const first = yield* daemon(root)
      assert.match((yield* remote(first.port, "-a", torrents.alpha)).out, /responded: "success"/)
      assert.match((yield* remote(first.port, "-a", magnet)).out, /responded: "success"/)
      const rows = yield* listedUntil(first.port, bothComplete)
      assert.deepStrictEqual(rows.map((r) => [r.id, r.name, r.have, r.done]), [[1, "alpha.bin", "300.0 kB", "100%"], [2, "beta", "150.0 kB", "100%"]])

      // The same torrent by URL: a duplicate, answered with its id.
      const url = yield* serveFile(torrents.alpha)
      const dup = yield* rpc(first.port, JSON.stringify({ method: "torrent-add", arguments: { filename: url }, tag: 7 }))
      assert.deepStrictEqual(JSON.parse(dup.text), { result: "success", arguments: { "torrent-duplicate": { id: 1, name: "alpha.bin", hashString: hashes.alpha } }, tag: 7 })

      assert.match((yield* remote(first.port, "-t", "1", "-S")).out, /success/)
      assert.strictEqual((yield* listed(first.port))[0]!.status, "Stopped")
      assert.match((yield* remote(first.port, "-t", "1", "-s")).out, /success/)
      const started = yield* listedUntil(first.port, (r) => r[0]?.status !== "Stopped")
      assert.notStrictEqual(started[0]!.status, "Stopped")

      const details = (yield* remote(first.port, "-t", "1", "-i")).stdout
      for (const line of ["Name: alpha.bin", `Hash: ${hashes.alpha}`, "Percent Done: 100%", "Total size: 300.0 kB (300.0 kB wanted)", `Location: ${path.join(root, "dl")}`]) {
        assert.include(details, line)
      }
      const files = (yield* remote(first.port, "-t", "2", "-f")).stdout
      assert.match(files, /0: 100% Normal\s+Yes\s+100\.0 kB\s+beta\/one\.bin/)
      const session = (yield* remote(first.port, "-si")).stdout
      assert.include(session, `Download directory: ${path.join(root, "dl")}`)
      assert.match(session, /RPC version: 16/)
      assert.match(session, /Peer limit: 200/)

      // Settings: a file unwanted, a torrent's limit, the session's limit, all read back.
      assert.match((yield* remote(first.port, "-t", "2", "-G", "1")).out, /success/)
      assert.match((yield* remote(first.port, "-t", "2", "-f")).stdout, /1: 100% Normal\s+No\s+50\.00 kB\s+beta\/two\.bin/)
      assert.match((yield* remote(first.port, "-t", "1", "-d", "50")).out, /success/)
      assert.include((yield* remote(first.port, "-t", "1", "-i")).stdout, "Download Limit: 50 kB/s")
      assert.match((yield* remote(first.port, "-d", "200", "-u", "30")).out, /success/)
      const limits = (yield* remote(first.port, "-si")).stdout
      assert.match(limits, /Download speed limit: 200 kB\/s/)
      assert.match(limits, /Upload speed limit: 30 kB\/s/)
      assert.match((yield* remote(first.port, "-D", "-U")).out, /success/)
      assert.match((yield* remote(first.port, "-si")).stdout, /Download speed limit: Unlimited/)
      const table = yield* rpc(first.port, JSON.stringify({ method: "torrent-get", arguments: { fields: ["id", "name", "wanted"], format: "table" } }))
      assert.deepStrictEqual(JSON.parse(table.text).arguments.torrents, [["id", "name", "wanted"], [1, "alpha.bin", [true]], [2, "beta", [true, false]]])

      // Bad requests: each its status, and the daemon serves on.
      const { id } = yield* rpc(first.port, "{}")
      assert.strictEqual((yield* rpc(first.port, "{not json", id)).status, 400)
      assert.strictEqual((yield* rpc(first.port, `{"method":"session-get","pad":"${"x".repeat(17 * 1024 * 1024)}"}`, id)).status, 413)
      assert.strictEqual(yield* chunkedPost(first.port, id, 17 * 1024 * 1024), 413)
      const unknown = yield* rpc(first.port, `{"method":"no-such-method","tag":3}`, id)
      assert.deepStrictEqual([unknown.status, JSON.parse(unknown.text)], [200, { result: "method name not recognized", arguments: {}, tag: 3 }])
      const badArgs = yield* rpc(first.port, `{"method":"torrent-get","arguments":{"fields":["id"],"ids":[{}]}}`, id)
      assert.match(JSON.parse(badArgs.text).result, /^ids: /)
      const missing = yield* rpc(first.port, `{"method":"session-get"}`, "")
      assert.strictEqual(missing.status, 409)
      assert.strictEqual(missing.answeredId, id)
      assert.isTrue(bothComplete(yield* listed(first.port)))

      // SIGKILL: no shutdown at all; the state folder brings the torrents back as they were.
      process.kill(-first.pid, "SIGKILL")
      yield* Effect.sleep("500 millis")
      const second = yield* daemon(root)
      const again = yield* listedUntil(second.port, bothComplete)
      assert.deepStrictEqual(again.map((r) => [r.id, r.name, r.done]), [[1, "alpha.bin", "100%"], [2, "beta", "100%"]])
      const get = yield* rpc(second.port, JSON.stringify({ method: "torrent-get", arguments: { fields: ["id", "hashString", "downloadedEver", "percentDone"] } }))
      assert.deepStrictEqual(JSON.parse(get.text).arguments.torrents, [
        { id: 1, hashString: hashes.alpha, downloadedEver: 0, percentDone: 1 },
        { id: 2, hashString: hashes.beta, downloadedEver: 0, percentDone: 1 }
      ])
      // Its settings too: the file left out, the torrent's own limit.
      assert.match((yield* remote(second.port, "-t", "2", "-f")).stdout, /1: 100% Normal\s+No\s+50\.00 kB\s+beta\/two\.bin/)
      assert.include((yield* remote(second.port, "-t", "1", "-i")).stdout, "Download Limit: 50 kB/s")
      assert.match((yield* remote(second.port, "-t", "1", "-it")).stdout, /Tracker 0: http:\/\/127\.0\.0\.1:\d+/)

      assert.match((yield* remote(second.port, "-t", "1", "-r")).out, /success/)
      assert.deepStrictEqual((yield* listed(second.port)).map((r) => r.name), ["beta"])
    }).pipe(Effect.scoped), 240_000)

  it.live("with --rpc-auth, a wrong password is refused and the right one works", () =>
    Effect.gen(function* () {
      yield* Effect.promise(ensureBuilt)
      const root = yield* tempRoot
      const { port } = yield* daemon(root, ["--rpc-auth", "alice:s3cret:x"])
      const wrong = yield* remote(port, "--auth", "alice:nope", "-l")
      assert.match(wrong.out, /401|Unauthorized/)
      assert.notInclude(wrong.stdout, "Sum:")
      const none = yield* remote(port, "-l")
      assert.match(none.out, /401|Unauthorized/)
      const right = yield* remote(port, "--auth", "alice:s3cret:x", "-l")
      assert.include(right.stdout, "Sum:")
    }).pipe(Effect.scoped), 60_000)

  it.live("--exit shuts the daemon down cleanly; started again, it has its torrents", () =>
    Effect.gen(function* () {
      yield* Effect.promise(ensureBuilt)
      const root = yield* tempRoot
      const first = yield* daemon(root)
      const magnet = `magnet:?xt=urn:btih:${"ab".repeat(20)}&dn=kept`
      assert.match((yield* remote(first.port, "--start-paused", "-a", magnet)).out, /success/)
      assert.match((yield* remote(first.port, "--exit")).out, /success/)
      // Gone within a bounded wait: its port refuses, its process has exited.
      const alive = Effect.map(Effect.either(Effect.try(() => process.kill(first.pid, 0))), Either.isRight)
      let running = yield* alive
      for (let turn = 0; turn < 100 && running; turn++) {
        yield* Effect.sleep("100 millis")
        running = yield* alive
      }
      assert.isFalse(running, "the daemon still runs after --exit")
      assert.include((yield* first.output).stdout, "daemon: shutting down (session-close)")
      const refused = yield* Effect.either(Effect.tryPromise(() => fetch(`http://127.0.0.1:${first.port}/transmission/rpc`, { method: "POST" })))
      assert.strictEqual(refused._tag, "Left")

      const second = yield* daemon(root)
      assert.deepStrictEqual((yield* listed(second.port)).map((r) => [r.id, r.status, r.name]), [[1, "Stopped", "kept"]])
    }).pipe(Effect.scoped), 60_000)
})
