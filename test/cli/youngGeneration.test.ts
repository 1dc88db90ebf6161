/**
 * bin/bittorrent.cjs holds V8's young generation at its initial 2 MiB (a flag set after the code
 * cache check and put back before the cache is written). Run on a private copy of the bin and its
 * bundles, so that its code cache is its own.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { cliPath, ensureBuilt, fixturesDir, repoRoot } from "../support/cli.js"
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

const runBin = (args: ReadonlyArray<string>, nodeOptions = "") =>
  new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, timeout: 60_000, encoding: "utf8" }, (error, _stdout, stderr) =>
      error === null ? resolve(stderr) : reject(error)
    )
  )

const newSpaceMib = async (nodeOptions: string) => {
  const torrent = path.join(tmp, `${Math.random().toString(36).slice(2)}.torrent`)
  const stderr = await runBin(["create", "-o", torrent, payload], `--require ${reportNewSpace} ${nodeOptions}`)
  return Number(/new_space (\d+)/.exec(stderr)?.[1]) / (1024 * 1024)
}

describe("the CLI's young generation", () => {
  it("stays at 2 MiB through an allocation-heavy command, unless the user's node options size it", async () => {
    expect(await newSpaceMib("")).toBe(2)
    expect(await newSpaceMib("--max-semi-space-size=8")).toBeGreaterThan(2)
  }, 120_000)

  it("does not cost the code cache: the cache a run writes is accepted by the next run", async () => {
    const cache = path.join(tmp, "dist", "main.cjs.v8cache")
    rmSync(cache, { force: true })
    const sample = path.join(fixturesDir, "course-sample", "sample.torrent")
    await runBin(["info", sample])
    const written = statSync(cache).mtimeMs
    // A rejected cache is rewritten when the process exits.
    await runBin(["info", sample])
    await runBin(["info", sample])
    expect(statSync(cache).mtimeMs).toBe(written)
  }, 60_000)
})
