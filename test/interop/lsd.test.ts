/**
 * Local service discovery (BEP 14) between two of our processes, inside a network namespace this
 * test creates (`ip netns`, root only): its loopback is its only interface, with multicast on and
 * the multicast range routed to it, so no datagram reaches the host's interfaces. A seeder and a
 * downloader of a torrent without trackers, given no peers, find each other with `--lsd` alone:
 * the downloader announces at its start, the seeder hears it and dials it. The same with
 * libtorrent (`enable_lsd`) on either side: it hears our announcements, and we hear its. An interop
 * test: it needs root and python3-libtorrent (the install script), not the unit tests' bare machine.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { cliPath, fixturesDir } from "../support/cli.js"
import { runProcess, startProcess } from "../support/Process.js"
import { debianPython, libtorrent } from "../support/ReferenceClients.js"

const namespace = `bt-lsd-${process.pid}`
const ip = (...args: ReadonlyArray<string>) => spawnSync("ip", args, { encoding: "utf8", timeout: 10_000 })

/** Makes the namespace; gives why it cannot be had here, or undefined once it is ready. */
const makeNamespace = (): string | undefined => {
  if (process.getuid?.() !== 0) return "not root"
  const made = ip("netns", "add", namespace)
  if (made.status !== 0) return `ip netns add failed: ${made.stderr || made.error?.message}`
  for (const step of [["link", "set", "lo", "up"], ["link", "set", "lo", "multicast", "on"], ["route", "add", "224.0.0.0/4", "dev", "lo"]]) {
    const r = ip("netns", "exec", namespace, "ip", ...step)
    if (r.status !== 0) return `ip ${step.join(" ")} in the namespace failed: ${r.stderr}`
  }
  return undefined
}

const problem = makeNamespace()
if (problem !== undefined) console.warn(`lsd.test.ts: the network namespace test is skipped: ${problem}`)
afterAll(() => {
  if (problem === undefined) ip("netns", "del", namespace)
})

/** Our CLI inside the namespace. */
const inNamespace = (args: ReadonlyArray<string>) => ["netns", "exec", namespace, process.execPath, cliPath, ...args]
/** libtorrent inside the namespace, with LSD on. */
const libtorrentInNamespace = (mode: "seed" | "leech", torrent: string, dir: string, port: number) => {
  const command = libtorrent(mode, torrent, dir, "127.0.0.1", port, { settings: { enable_lsd: true }, timeoutS: 60 })
  return ["netns", "exec", namespace, debianPython, ...command.args]
}

const base = join(fixturesDir, "seeder/base")
const payload = join(base, "sample.txt")

/** A scratch folder for the test, and in it the fixture's torrent without its tracker. */
const scratch = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "bt-lsd-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const torrent = Bencode.decode(readFileSync(join(base, "sample.txt.torrent")))
  if (torrent._tag === "Left" || !Bencode.isDict(torrent.right)) return yield* Effect.dieMessage("the fixture is not a torrent")
  const trackerless = join(dir, "sample.torrent")
  writeFileSync(trackerless, Bencode.encode(Bencode.dict({ info: Bencode.get(torrent.right, "info") })))
  return { dir, trackerless }
})

/** Our download with --lsd and nothing else to go on; it must complete with the fixture's bytes. */
const downloadWithLsd = (dir: string, trackerless: string) =>
  Effect.gen(function* () {
    const out = join(dir, "sample.txt")
    const download = yield* runProcess("ip", inNamespace(["download", "-o", out, trackerless, "--host", "127.0.0.1", "--port", "6991", "--lsd", "--json"]), {
      timeoutMs: 60_000
    })
    expect(download.code, download.stdout + download.stderr).toBe(0)
    expect(readFileSync(out).equals(readFileSync(payload))).toBe(true)
    return download.stdout
  })

describe("local service discovery in a network namespace", () => {
  it.scoped.skipIf(problem !== undefined)("a downloader and a seeder of ours with --lsd and no tracker find each other; the download completes", () =>
    Effect.gen(function* () {
      const { dir, trackerless } = yield* scratch
      yield* startProcess("ip", inNamespace(["seed", trackerless, payload, "--host", "127.0.0.1", "--port", "6990", "--lsd"]), {
        ready: /seeding .* listening on/,
        readyTimeoutMs: 30_000
      })
      const events = yield* downloadWithLsd(dir, trackerless)
      expect(events).toMatch(/"event":"peer_connected"[^\n]*"peer":"127\.0\.0\.1:\d+"[^\n]*"inbound":true/)
    }))

  it.scoped.skipIf(problem !== undefined)("libtorrent seeding with LSD hears our downloader's announcement and dials it", () =>
    Effect.gen(function* () {
      const { dir, trackerless } = yield* scratch
      yield* startProcess("ip", libtorrentInNamespace("seed", trackerless, base, 6992), { ready: /^lt: seeding/m, readyTimeoutMs: 30_000 })
      const events = yield* downloadWithLsd(dir, trackerless)
      expect(events).toMatch(/"event":"peer_connected"[^\n]*"client":"LT[^"]*","inbound":true/)
    }))

  it.scoped.skipIf(problem !== undefined)("our seeder with --lsd hears libtorrent's announcement and dials it; libtorrent completes", () =>
    Effect.gen(function* () {
      const { dir, trackerless } = yield* scratch
      yield* startProcess("ip", inNamespace(["seed", trackerless, payload, "--host", "127.0.0.1", "--port", "6993", "--lsd"]), {
        ready: /seeding .* listening on/,
        readyTimeoutMs: 30_000
      })
      const leech = yield* runProcess("ip", libtorrentInNamespace("leech", trackerless, dir, 6994), { timeoutMs: 90_000 })
      expect(leech.code, leech.stdout + leech.stderr).toBe(0)
      expect(readFileSync(join(dir, "sample.txt")).equals(readFileSync(payload))).toBe(true)
    }))
})
