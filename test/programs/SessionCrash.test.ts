/**
 * Crash safety of a Session's state folder: a child process (test/support/sessionProcess.ts)
 * downloads three torrents (one of several files, pieces across file boundaries) from seeders in
 * this process on 127.0.0.1, its download rate held so that the download takes several seconds;
 * it is killed with SIGKILL at a random moment (each run's own seed), ten times, then left to
 * finish. Before each start the test reads the resume files and the files' stamps;
 * each start must then
 *   - find verified every piece any earlier run printed as verified (no verified piece is lost),
 *   - read no file whose saved stamp is unchanged and outside the racy window,
 * and the finished files must be the payloads, byte for byte.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Layer, Stream } from "effect"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { concatBytes, equalBytes, toHex } from "../../src/domain/Bytes.js"
import { type Info, parseTorrent } from "../../src/domain/Metainfo.js"
import { makePeerId } from "../../src/domain/Peer.js"
import * as ResumeData from "../../src/domain/ResumeData.js"
import { seededRandom } from "../../src/domain/SeededRandom.js"
import { tcpLayer } from "../../src/programs/ClientLayer.js"
import { seedPath } from "../../src/programs/Seed.js"
import { runProcess } from "../support/Process.js"
import { repoRoot } from "../support/cli.js"
import type { SessionProcessConfig } from "../support/sessionProcess.js"
import { multiFileInfo, payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const pieceLength = 64 * 1024
/** The child's download rate, across its torrents: about 7 MB take about 5 s. */
const downloadRate = 1536 * 1024
const kills = 10

interface Case {
  readonly info: Info
  readonly bytes: Uint8Array
  /** Each file's payload, in torrent order. */
  readonly files: ReadonlyArray<Uint8Array>
}

const makeCases = (): ReadonlyArray<Case> => {
  const single = (name: string, size: number, seed: number) => {
    const payload = payloadBytes(size, seed)
    return { dict: singleFileInfo(name, payload, pieceLength), files: [payload] }
  }
  const multiFiles = [1_500_000, 0, 700_001, 400_000].map((n, i) => ({ path: [`part${i}.bin`], data: payloadBytes(n, 70 + i) }))
  const specs = [
    single("alpha.bin", 2_600_000, 61),
    { dict: multiFileInfo("beta", multiFiles, pieceLength), files: multiFiles.map((f) => f.data) },
    single("gamma.bin", 2_100_000, 63)
  ]
  return specs.map(({ dict, files }) => {
    const bytes = torrentBytes(dict, {})
    return { info: Either.getOrThrow(parseTorrent(bytes)).info, bytes, files }
  })
}

const filePath = (root: string, info: Info, i: number) =>
  info.isMultiFile ? join(root, info.name, ...info.files[i]!.path) : join(root, info.name)

/** A file's stamp as the storage takes it: of the file, or of its `.part` while unfinished. */
const stampOf = (path: string): ResumeData.FileStamp | undefined => {
  for (const at of [path, `${path}.part`]) {
    const stats = statSync(at, { bigint: true, throwIfNoEntry: false })
    if (stats !== undefined) return { length: Number(stats.size), mtimeNs: stats.mtimeNs }
  }
  return undefined
}

/** The files a start must not read: unchanged since their resume record's save, and outside its racy window. */
const trustedFiles = (stateDir: string, downloadDir: string, info: Info): ReadonlyArray<number> => {
  const bytes = (() => {
    try {
      return readFileSync(join(stateDir, `${toHex(info.infoHash)}.resume`))
    } catch {
      return undefined
    }
  })()
  if (bytes === undefined) return []
  const record = Either.getOrThrow(ResumeData.decode(bytes))
  const now = info.files.map((_, i) => stampOf(filePath(downloadDir, info, i)))
  return ResumeData.unchangedFiles(record, now).flatMap((same, i) => (same && info.files[i]!.length > 0 ? [i] : []))
}

type Line =
  | { readonly resumed: { readonly infoHash: string; readonly have: ReadonlyArray<number>; readonly settled: number; readonly rechecked: ReadonlyArray<number> } }
  | { readonly verified: { readonly infoHash: string; readonly index: number } }
  | { readonly restored: ReadonlyArray<string> }
  | { readonly done: true }
  | { readonly error: string }
  | { readonly unrestored: string }

const linesOf = (stdout: string): ReadonlyArray<Line> =>
  stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Line)

/** One run of the child; SIGKILL-ed after `killAfterMs` unless that is undefined (then it finishes). */
const runChild = (configPath: string, killAfterMs: number | undefined) => {
  let timer: NodeJS.Timeout | undefined
  return runProcess(process.execPath, ["--import", "tsx", join(repoRoot, "test/support/sessionProcess.ts"), configPath], {
    timeoutMs: 90_000,
    onSpawn: (pid) => {
      if (killAfterMs === undefined) return
      timer = setTimeout(() => {
        try {
          process.kill(-pid, "SIGKILL")
        } catch {
          // Already gone.
        }
      }, killAfterMs)
    }
  }).pipe(Effect.ensuring(Effect.sync(() => clearTimeout(timer))))
}

/** Seeds each case from `root` on 127.0.0.1; gives their ports. */
const startSeeders = (cases: ReadonlyArray<Case>, root: string) =>
  Effect.forEach(cases, (c) =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<number>()
      const peerId = makePeerId((n) => crypto.getRandomValues(new Uint8Array(n)))
      yield* seedPath({ info: c.info, trackers: [] }, join(root, c.info.name), { peerId, port: 0, host: "127.0.0.1" }, Bitfield.full(c.info.pieceCount)).pipe(
        Stream.runForEach((e) => (e._tag === "Started" ? Deferred.succeed(started, e.port) : Effect.void)),
        Effect.orDie,
        Effect.forkScoped
      )
      return yield* Deferred.await(started)
    }))

describe("Session crash safety (SIGKILL)", () => {
  it.scoped(`${kills} kills at random points lose no verified piece and re-read no unchanged file`, () =>
    Effect.gen(function* () {
      const work = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "bt-crash-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      const [seedDir, downloadDir, stateDir] = ["seed", "download", "state"].map((d) => join(work, d)) as [string, string, string]
      const cases = makeCases()
      for (const c of cases) {
        c.info.files.forEach((_, i) => {
          const path = filePath(seedDir, c.info, i)
          mkdirSync(join(path, ".."), { recursive: true })
          writeFileSync(path, c.files[i]!)
        })
      }
      const ports = yield* startSeeders(cases, seedDir).pipe(Effect.provide(Layer.provideMerge(tcpLayer, NodeFileSystem.layer)))
      const config: SessionProcessConfig = {
        downloadRate,
        stateDir,
        downloadDir,
        torrents: cases.map((c, i) => {
          const torrentPath = join(work, `${c.info.name}.torrent`)
          writeFileSync(torrentPath, c.bytes)
          return { torrentPath, peers: [{ host: "127.0.0.1", port: ports[i]! }] }
        })
      }
      const configPath = join(work, "config.json")
      writeFileSync(configPath, JSON.stringify(config))

      /** Every piece some run printed as verified, by info hash. */
      const claimed = new Map(cases.map((c) => [toHex(c.info.infoHash), new Set<number>()]))
      let checkedStarts = 0
      let settledPieces = 0
      let restoredTorrents = 0
      let keptPieces = 0
      for (let run = 0; run <= kills; run++) {
        const saved = cases.filter((c) => existsSync(join(stateDir, `${toHex(c.info.infoHash)}.session`))).map((c) => toHex(c.info.infoHash))
        // What earlier runs printed (this run's own lines may come before its check's).
        const claimedBefore = new Map([...claimed].map(([k, v]) => [k, [...v]]))
        const trusted = new Map(cases.map((c) => [toHex(c.info.infoHash), trustedFiles(stateDir, downloadDir, c.info)]))
        // Each run's own seed: a kill between 0.5 s and 5 s after the start (start-up, check and download included).
        const killAfterMs = run < kills ? Math.floor(500 + seededRandom(9000 + run)() * 4500) : undefined
        const result = yield* runChild(configPath, killAfterMs)
        const lines = linesOf(result.stdout)
        expect(lines.filter((l) => "error" in l || "unrestored" in l)).toEqual([])
        for (const line of lines) {
          if ("restored" in line) {
            expect([...line.restored].sort(), `restored (run ${run})`).toEqual([...saved].sort())
            restoredTorrents += line.restored.length
          } else if ("resumed" in line) {
            const { infoHash, have, rechecked } = line.resumed
            checkedStarts++
            settledPieces += line.resumed.settled
            for (const index of claimedBefore.get(infoHash)!) {
              expect(have, `${infoHash} piece ${index} (run ${run})`).toContain(index)
              keptPieces++
            }
            for (const file of trusted.get(infoHash)!) expect(rechecked, `${infoHash} file ${file} re-read (run ${run})`).not.toContain(file)
          } else if ("verified" in line) {
            claimed.get(line.verified.infoHash)!.add(line.verified.index)
          }
        }
        if (run === kills) {
          expect(result.code, result.stderr).toBe(0)
          expect(lines.some((l) => "done" in l)).toBe(true)
        }
      }
      for (const c of cases) {
        const written = concatBytes(c.info.files.map((_, i) => readFileSync(filePath(downloadDir, c.info, i))))
        expect(equalBytes(written, concatBytes(c.files))).toBe(true)
      }
      // The runs did what the test is about: restarts that restored torrents, checked earlier runs'
      // pieces, and settled some without reading.
      expect(checkedStarts).toBeGreaterThanOrEqual(cases.length * 2)
      expect(settledPieces).toBeGreaterThan(0)
      expect(restoredTorrents).toBeGreaterThan(0)
      expect(keptPieces).toBeGreaterThan(0)
    }), 120_000)
})
