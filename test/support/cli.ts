/**
 * Runs the bundled CLI (bin/bittorrent.cjs, which runs dist/main.cjs or dist/decode.cjs) as a subprocess, the way users and harnesses run it.
 * Paths are computed from this file's location: the repository root and the sample torrents in
 * test/fixtures/codecrafters.
 */
import { execFile } from "node:child_process"
import { readdirSync, statSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
export const fixturesDir = path.join(repoRoot, "test/fixtures/codecrafters")
export const cliPath = path.join(repoRoot, "bin/bittorrent.cjs")
const bundlePaths = [path.join(repoRoot, "dist/main.cjs"), path.join(repoRoot, "dist/decode.cjs")]

export interface CliResult {
  /** Exit code, or null when the process was killed (e.g. by the timeout). */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const run = (args: ReadonlyArray<string>, timeoutMs: number): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: repoRoot, timeout: timeoutMs, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error === null) return resolve({ code: 0, stdout, stderr })
      // A process that ran and exited non-zero has a numeric code; anything else failed to start.
      if (typeof error.code === "number" || error.killed) {
        return resolve({ code: typeof error.code === "number" ? error.code : null, stdout, stderr })
      }
      reject(error)
    })
  })

const newestMtime = (dir: string): number => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs)
  }
  return newest
}

const isFresh = (): boolean => {
  try {
    const built = Math.min(...bundlePaths.map((bundle) => statSync(bundle).mtimeMs))
    return built >= newestMtime(path.join(repoRoot, "src")) && built >= statSync(path.join(repoRoot, "package-lock.json")).mtimeMs
  } catch {
    return false
  }
}

let building: Promise<void> | undefined

/** Bundles the CLI unless its bundles are newer than every source file; once per test process. */
export const ensureBuilt = (): Promise<void> =>
  (building ??= isFresh()
    ? Promise.resolve()
    : run(["scripts/build.mjs"], 120_000).then((r) => {
        if (r.code !== 0) throw new Error(`build failed (exit ${r.code}): ${r.stderr}`)
      }))

/** Runs `node bin/bittorrent.cjs ...args`, bounded by a timeout. */
export const runCli = (args: ReadonlyArray<string>, timeoutMs = 30_000): Promise<CliResult> =>
  run([cliPath, ...args], timeoutMs)
