/**
 * Streaming a file of a session's torrent on the in-memory network (TestClock): a stream of the
 * middle of a file gives that file's bytes well before the download gets there (its window is
 * fetched first); two streams at once share the picker; a paused torrent streams what it has and
 * fails on what it lacks; removal ends a stream; bad files and ranges, and skipped files, are typed errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream } from "effect"
import { concatBytes, equalBytes } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { TorrentInput } from "../../src/programs/Session.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { simSession, until } from "../support/SimulatedSession.js"
import { addressOf, seeded, simSeeder } from "../support/SimulatedSwarm.js"
import { multiFileInfo, payloadBytes, torrentBytes } from "../support/torrent.js"

const pieceLength = 64 * 1024

/** Two files (the second starts mid-piece), 4 MiB in all. */
const twoFiles = () => {
  const files = [
    { path: ["intro.txt"], data: payloadBytes(1_000_000, 3) },
    { path: ["movie.mp4"], data: payloadBytes(4 * 1024 * 1024 - 1_000_000, 4) }
  ]
  const bytes = torrentBytes(multiFileInfo("show", files, pieceLength), {})
  const info = Either.getOrThrow(parseTorrent(bytes)).info
  return { bytes, info, files, payload: concatBytes(files.map((f) => f.data)) }
}

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => concatBytes(Chunk.toReadonlyArray(chunks)))

describe("Session file streams (TestClock)", () => {
  it.effect("a stream of the middle of a file gives its bytes before the download gets there; two streams share the picker", () =>
    seeded(61)(
      Effect.gen(function* () {
        // 128 KiB/s: the whole torrent takes about 32 s; each stream's range a second or two.
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", bandwidth: 128 * 1024 } })
        const t = twoFiles()
        yield* simSeeder(network, "127.4.9.1", t.info, t.payload, 90)
        const { session, events } = yield* simSession(network, { streaming: { aheadBytes: 256 * 1024 } })
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.9.1")] })
        const movie = yield* session.streamableFile(id, 1)
        expect(movie).toEqual({ index: 1, path: "show/movie.mp4", length: t.files[1]!.data.length })
        const middle = { start: 1_500_000, end: 1_700_000 }
        const later = { start: 2_600_000, end: 2_650_000 }
        const first = yield* Effect.fork(collect(session.fileStream(id, 1, middle)))
        const second = yield* Effect.fork(collect(session.fileStream(id, 1, later)))
        expect(yield* until(Effect.map(Effect.all([first.poll, second.poll]), (polls) => polls.every((p) => p._tag === "Some")), 50, 400)).toBe(true)
        const [a, b] = [yield* Fiber.join(first), yield* Fiber.join(second)]
        expect(equalBytes(a, t.files[1]!.data.subarray(middle.start, middle.end + 1))).toBe(true)
        expect(equalBytes(b, t.files[1]!.data.subarray(later.start, later.end + 1))).toBe(true)
        // Both ranges came with a small part of the torrent: their windows went first.
        const status = yield* session.get(id)
        expect(status.piecesDone).toBeLessThan(status.piecesTotal / 2)
        const needed = (r: { start: number; end: number }) => {
          const at = t.info.files[1]!.offset
          return Array.from({ length: Math.floor((at + r.end) / pieceLength) - Math.floor((at + r.start) / pieceLength) + 1 }, (_, k) => Math.floor((at + r.start) / pieceLength) + k)
        }
        // Their PieceVerified events follow in a batch (at most 200 ms after the pieces).
        const verified = () => new Set(events.flatMap((e) => (e._tag === "PieceVerified" ? [e.index] : [])))
        const told = Effect.sync(() => [...needed(middle), ...needed(later)].every((p) => verified().has(p)))
        expect(yield* until(told, 50, 8)).toBe(true)
      })
    ), 60_000)

  it.effect("a paused torrent streams its verified pieces and fails on missing ones; removal ends a stream; bad input and skipped files are typed", () =>
    seeded(62)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", bandwidth: 64 * 1024 } })
        const t = twoFiles()
        yield* simSeeder(network, "127.4.9.2", t.info, t.payload, 91)
        const { session } = yield* simSession(network, { streaming: { aheadBytes: 128 * 1024, startTimeout: "5 seconds" } })
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.9.2")] })
        const head = { start: 0, end: 99_999 }
        const reading = yield* Effect.fork(collect(session.fileStream(id, 0, head)))
        // The stream may open after the first requests (1 MiB, 16 s of this link) went out: the seeder
        // has put them on the link already, where cancels cannot reach. Bounded at 100 s of virtual time.
        expect(yield* until(Effect.map(reading.poll, (p) => p._tag === "Some"), 50, 2000)).toBe(true)
        expect(equalBytes(yield* Fiber.join(reading), t.files[0]!.data.subarray(0, 100_000))).toBe(true)
        yield* session.pause(id)
        // What it has still streams; what it lacks fails at once rather than waiting on a stopped torrent.
        expect(equalBytes(yield* collect(session.fileStream(id, 0, head)), t.files[0]!.data.subarray(0, 100_000))).toBe(true)
        const missing = yield* Effect.flip(collect(session.fileStream(id, 1, { start: 3_000_000, end: 3_000_010 })))
        expect(missing).toMatchObject({ _tag: "FileStreamError", reason: "NotRunning" })
        yield* session.resume(id)
        const far = yield* Effect.fork(Effect.either(collect(session.fileStream(id, 1, { start: 3_000_000, end: 3_100_000 }))))
        yield* until(Effect.succeed(false), 50, 4)
        yield* session.remove(id)
        expect(yield* until(Effect.map(far.poll, (p) => p._tag === "Some"), 50, 100)).toBe(true)
        const ended = yield* Fiber.join(far)
        expect(Either.isLeft(ended) && ended.left._tag).toBe("UnknownTorrent")
        expect(yield* Effect.flip(session.streamableFile(id, 0))).toMatchObject({ _tag: "UnknownTorrent" })
        const other = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { paused: true })
        expect(yield* Effect.flip(session.streamableFile(other, 2))).toMatchObject({ reason: "NoSuchFile" })
        expect(yield* Effect.flip(collect(session.fileStream(other, 0, { start: 10, end: 1_000_000 })))).toMatchObject({ reason: "BadRange" })
        expect(yield* Effect.flip(collect(session.fileStream(other, 0, { start: 10, end: 9 })))).toMatchObject({ reason: "BadRange" })
        yield* session.setFilePriorities(other, ["normal", "skip"])
        expect(yield* Effect.flip(collect(session.fileStream(other, 1, { start: 0, end: 9 })))).toMatchObject({ reason: "FileSkipped" })
        expect(yield* Effect.flip(session.streamableFile(other, 1))).toMatchObject({ reason: "FileSkipped" })
      })
    ), 60_000)
})
