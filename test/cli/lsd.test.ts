/**
 * Local service discovery (BEP 14) between two of our processes, inside a network namespace this
 * test creates (`ip netns`, root only): its loopback is its only interface, with multicast on and
 * the multicast range routed to it, so no datagram reaches the host's interfaces. A seeder and a
 * downloader of a torrent without trackers, given no peers, find each other with `--lsd` alone:
 * the downloader announces at its start, the seeder hears it and dials it.
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

describe("local service discovery in a network namespace", () => {
  it.scoped.skipIf(problem !== undefined)("a downloader and a seeder with --lsd and no tracker find each other; the download completes", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "bt-lsd-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const base = join(fixturesDir, "seeder/base")
      const torrent = Bencode.decode(readFileSync(join(base, "sample.txt.torrent")))
      if (torrent._tag === "Left" || !Bencode.isDict(torrent.right)) return expect.fail("the fixture is not a torrent")
      const trackerless = join(dir, "sample.torrent")
      writeFileSync(trackerless, Bencode.encode(Bencode.dict({ info: Bencode.get(torrent.right, "info") })))

      yield* startProcess("ip", inNamespace(["seed", trackerless, join(base, "sample.txt"), "--host", "127.0.0.1", "--port", "6990", "--lsd"]), {
        ready: /seeding .* listening on/,
        readyTimeoutMs: 30_000
      })
      const out = join(dir, "sample.txt")
      const download = yield* runProcess("ip", inNamespace(["download", "-o", out, trackerless, "--host", "127.0.0.1", "--port", "6991", "--lsd", "--json"]), {
        timeoutMs: 60_000
      })
      expect(download.code, download.stdout + download.stderr).toBe(0)
      expect(download.stdout).toMatch(/"event":"peer_connected"[^\n]*"peer":"127\.0\.0\.1:\d+"[^\n]*"inbound":true/)
      expect(readFileSync(out).equals(readFileSync(join(base, "sample.txt")))).toBe(true)
    }))
})
