/**
 * bin/bittorrent.cjs sizes V8's heap for a long-running client: the young generation held at its
 * initial 2 MiB, the old generation grown by half between full collections (flags set after the
 * code cache check and put back before the cache is written). The first is checked here; the
 * second's effect on a download's peak RSS is measured (README, Measurements), as V8's schedule of
 * full collections is not one a short test can pin down. Run on a private copy of the bin and its
 * bundles, so that its code cache is its own.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { cliPath, ensureBuilt, fixturesDir, repoRoot } from "../support/cli.js"
import { runProcess } from "../support/Process.js"
import { payloadBytes } from "../support/torrent.js"

let tmp: string
let bin: string
let payload: string
let reportNewSpace: string

beforeAll(async () => {
  await ensureBuilt()
  tmp = mkdtempSync(path.join(tmpdir(), "bt-young-generation-"))
  mkdirSync(path.join(tmp, "bin"))
  mkdirSync(path.join(tmp, "dist"))
  bin = path.join(tmp, "bin", "bittorrent.cjs")
  copyFileSync(cliPath, bin)
  for (const bundle of ["main.cjs", "decode.cjs"]) copyFileSync(path.join(repoRoot, "dist", bundle), path.join(tmp, "dist", bundle))
  // Hashing 32 MiB in `create` allocates enough short-lived objects to grow an unheld young generation.
  payload = path.join(tmp, "payload.bin")
  writeFileSync(payload, payloadBytes(32 * 1024 * 1024, 7))
  reportNewSpace = path.join(tmp, "report-new-space.cjs")
  writeFileSync(
    reportNewSpace,
    `process.on("exit", () => process.stderr.write("new_space " + require("node:v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size + "\\n"))\n`
  )
  return () => rmSync(tmp, { recursive: true, force: true })
})

/** Runs the private bin to a successful exit; its stderr. */
const runBin = (args: ReadonlyArray<string>, nodeOptions = "") =>
  runProcess(process.execPath, [bin, ...args], { timeoutMs: 60_000, env: { NODE_OPTIONS: nodeOptions } }).pipe(
    Effect.tap((r) => expect(r.code, r.stderr).toBe(0)),
    Effect.map((r) => r.stderr)
  )

let torrents = 0
const newSpaceMib = (nodeOptions: string) =>
  runBin(["create", "-o", path.join(tmp, `${++torrents}.torrent`), payload], `--require ${reportNewSpace} ${nodeOptions}`).pipe(
    Effect.map((stderr) => Number(/new_space (\d+)/.exec(stderr)?.[1]) / (1024 * 1024))
  )

describe("the CLI's young generation", () => {
  it.effect("stays at 2 MiB through an allocation-heavy command, unless the user's node options size it", () =>
    Effect.gen(function*() {
      expect(yield* newSpaceMib("")).toBe(2)
      expect(yield* newSpaceMib("--max-semi-space-size=8")).toBeGreaterThan(2)
    }), 120_000)

  it.effect("does not cost the code cache: the cache a run writes is accepted by the next run", () =>
    Effect.gen(function*() {
      const cache = path.join(tmp, "dist", "main.cjs.v8cache")
      rmSync(cache, { force: true })
      const sample = path.join(fixturesDir, "course-sample", "sample.torrent")
      yield* runBin(["info", sample])
      const written = statSync(cache).mtimeMs
      // A rejected cache is rewritten when the process exits.
      yield* runBin(["info", sample])
      yield* runBin(["info", sample])
      expect(statSync(cache).mtimeMs).toBe(written)
    }), 60_000)
})
