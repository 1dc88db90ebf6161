/**
 * Metainfo compatibility with libtorrent (issue 14): every torrent of test/support/metainfoCases.ts is
 * read by our `info --json` and by libtorrent's torrent_info (python3-libtorrent). Both accept or both
 * refuse it, with the same info hash, name and sanitised file list (paths, lengths, BEP 47
 * attributes, symlink targets), unless the case names a deliberate difference.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { ensureBuilt, repoRoot, runCli } from "../support/cli.js"
import { metainfoCases, type CreateSpec } from "../support/metainfoCases.js"
import { debianPython } from "../support/ReferenceClients.js"

const ltScript = path.join(repoRoot, "scripts/reference-clients/lt_metainfo.py")
const run = promisify(execFile)

interface Reading {
  readonly accepted: boolean
  readonly error?: string
  readonly infoHash?: string
  readonly name?: string
  readonly multiFile?: boolean
  readonly totalLength?: number
  readonly files?: ReadonlyArray<{ path: string; length: number; padding: boolean; executable: boolean; hidden: boolean; symlink: string | null }>
}

/** What is compared: everything but the error's wording. */
const comparable = ({ error: _error, ...reading }: Reading) => reading

const createWithLibtorrent = async (spec: CreateSpec, out: string) => {
  const child = execFile(debianPython, [ltScript, "create", out])
  child.stdin!.end(JSON.stringify(spec))
  await new Promise<void>((resolve, reject) =>
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`lt_metainfo.py create exited ${code}`)))))
}

const readWithLibtorrent = async (files: ReadonlyArray<string>): Promise<ReadonlyArray<Reading>> => {
  const { stdout } = await run(debianPython, [ltScript, "read", ...files], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })
  return stdout.trim().split("\n").map((line) => JSON.parse(line) as Reading)
}

const readWithUs = async (file: string): Promise<Reading> => {
  const r = await runCli(["info", "--json", file])
  if (r.code !== 0) return { accepted: false, error: r.stderr.trim() }
  const doc = JSON.parse(r.stdout)
  return {
    accepted: true,
    infoHash: doc.infoHash,
    name: doc.name,
    multiFile: doc.multiFile,
    totalLength: doc.length,
    files: doc.files.map(({ executable, hidden, length, padding, path, symlink }: Record<string, never>) =>
      ({ path, length, padding, executable, hidden, symlink }))
  }
}

/** Our CLI on every file, a few at a time (each run is a process start). */
const readAllWithUs = async (files: ReadonlyArray<string>): Promise<ReadonlyArray<Reading>> => {
  const readings: Array<Reading> = []
  for (let at = 0; at < files.length; at += 4) readings.push(...(await Promise.all(files.slice(at, at + 4).map(readWithUs))))
  return readings
}

describe("metainfo compatibility with libtorrent's torrent_info", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "metainfo-compat-"))
  const files = metainfoCases.map((_, i) => path.join(dir, `case-${i}.torrent`))
  let theirs: ReadonlyArray<Reading> = []

  let ours: ReadonlyArray<Reading> = []

  beforeAll(async () => {
    await ensureBuilt()
    await Promise.all(metainfoCases.map((c, i) =>
      "bytes" in c.torrent ? Promise.resolve(writeFileSync(files[i]!, c.torrent.bytes)) : createWithLibtorrent(c.torrent.libtorrent, files[i]!)))
    theirs = await readWithLibtorrent(files)
    ours = await readAllWithUs(files)
  })

  it.each(metainfoCases.map((c, i) => ({ ...c, i })))("$name", ({ i, knownDifference }) => {
    expect(theirs, "libtorrent read every case").toHaveLength(metainfoCases.length)
    const context = `ours: ${JSON.stringify(ours[i])}\nlibtorrent: ${JSON.stringify(theirs[i])}`
    if (knownDifference === undefined) expect(comparable(ours[i]!), context).toEqual(comparable(theirs[i]!))
    else expect(comparable(ours[i]!), `${knownDifference}\n${context}`).not.toEqual(comparable(theirs[i]!))
  })
})
