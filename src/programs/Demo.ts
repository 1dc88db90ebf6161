/**
 * The built-in demo swarm: in one process, a random payload, a torrent of it, an embedded HTTP
 * tracker and a few seeders of this client on 127.0.0.1, then a download of the torrent through
 * the full pipeline, checked byte for byte against the payload. Nothing leaves the loopback.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { randomBytes } from "node:crypto"
import { Data, Effect, Stream } from "effect"
import { Bitfield } from "../domain/Bitfield.js"
import { equalBytes } from "../domain/Bytes.js"
import { makePeerId } from "../domain/Peer.js"
import { makeTrackerServer } from "../services/TrackerServer.js"
import { createTorrent } from "./CreateTorrent.js"
import { download, type DownloadEvent } from "./Download.js"
import { seedPath } from "./Seed.js"

export interface DemoOptions {
  readonly sizeMib: number
  readonly seeders: number
  /** Keep the payload, torrent and download in this folder instead of a temporary one. */
  readonly keep?: string
  /** Called with the download's events, a chunk at a time (the CLI renders progress with it). */
  readonly onEvents?: (events: Iterable<DownloadEvent>) => Effect.Effect<void>
  /** Called once the swarm is up, before the download starts. */
  readonly onReady?: (swarm: { readonly pieces: number; readonly tracker: string }) => Effect.Effect<void>
}

export interface DemoSummary {
  readonly bytes: number
  readonly seconds: number
  readonly peersUsed: number
  readonly folder: string | undefined
}

/** The downloaded file differs from the payload: a bug, reported with where it starts. */
export class DemoMismatch extends Data.TaggedError("DemoMismatch")<{ readonly offset: number }> {
  override get message() {
    return `the downloaded file differs from the payload from byte ${this.offset}`
  }
}

const random = (n: number) => new Uint8Array(randomBytes(n))

/** Writes `size` random bytes a MiB at a time, so the demo's memory does not grow with its size. */
const writeRandomFile = (fs: FileSystem.FileSystem, file: string, size: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const handle = yield* fs.open(file, { flag: "w" })
      for (let written = 0; written < size; written += 1 << 20) {
        yield* handle.writeAll(random(Math.min(1 << 20, size - written)))
      }
    })
  )

/** First byte at which two files differ, comparing a MiB at a time; undefined when equal. */
const firstDifference = (fs: FileSystem.FileSystem, a: string, b: string, size: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const fa = yield* fs.open(a, { flag: "r" })
      const fb = yield* fs.open(b, { flag: "r" })
      for (let at = 0; at < size; at += 1 << 20) {
        const length = Math.min(1 << 20, size - at)
        const [x, y] = [yield* fa.readAlloc(length), yield* fb.readAlloc(length)]
        if (x._tag === "None" || y._tag === "None" || !equalBytes(x.value, y.value)) return at
      }
      return undefined
    })
  )

export const runDemo = (options: DemoOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const folder = options.keep ?? (yield* fs.makeTempDirectoryScoped({ prefix: "bittorrent-demo-" }))
      const seedDir = path.join(folder, "seed")
      const downloadDir = path.join(folder, "download")
      yield* fs.makeDirectory(seedDir, { recursive: true })
      yield* fs.makeDirectory(downloadDir, { recursive: true })
      const size = Math.round(options.sizeMib * 1024 * 1024)
      const payload = path.join(seedDir, "demo.bin")
      yield* writeRandomFile(fs, payload, size)

      const tracker = yield* makeTrackerServer({ host: "127.0.0.1", port: 0, interval: 5 })
      const torrent = yield* createTorrent(payload, { announce: [tracker.url] })
      yield* fs.writeFile(path.join(folder, "demo.torrent"), torrent.bytes)
      const source = { info: torrent.metainfo.info, trackers: [[tracker.url]] }
      yield* options.onReady?.({ pieces: source.info.pieceCount, tracker: tracker.url }) ?? Effect.void

      // The seeders know their data is complete (we just wrote it): no need to hash it first.
      const all = Bitfield.full(source.info.pieceCount)
      const started = yield* Effect.forEach(
        Array.from({ length: options.seeders }, () => makePeerId(random)),
        (peerId) =>
          Effect.gen(function* () {
            const listening = yield* Effect.makeLatch(false)
            yield* seedPath(source, payload, { peerId, port: 0, host: "127.0.0.1", announceInterval: "1 second" }, all).pipe(
              Stream.runForEach((e) => (e._tag === "Announced" ? listening.open : Effect.void)),
              Effect.forkScoped
            )
            return listening
          })
      )
      yield* Effect.forEach(started, (latch) => latch.await, { discard: true }).pipe(
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the demo seeders did not start") }),
        Effect.orDie
      )

      const peers = new Set<string>()
      const out = path.join(downloadDir, "demo.bin")
      const startedAt = Date.now()
      yield* download(source, out, { peerId: makePeerId(random), port: 6881 }).pipe(
        Stream.runForEachChunk((events) => {
          for (const event of events) if (event._tag === "PeerConnected") peers.add(event.peer)
          return options.onEvents?.(events) ?? Effect.void
        })
      )
      const seconds = (Date.now() - startedAt) / 1000
      const differs = yield* firstDifference(fs, payload, out, size)
      if (differs !== undefined) return yield* new DemoMismatch({ offset: differs })
      return { bytes: size, seconds, peersUsed: peers.size, folder: options.keep } satisfies DemoSummary
    })
  )
