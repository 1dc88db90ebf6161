/**
 * The library as README.md shows it: everything imported from the public entry point, the live
 * layers composed the same way, a download of a torrent read from disk (by a Torrent handle, and
 * through a Session). The swarm is one fake seeder on 127.0.0.1 behind a fake HTTP tracker.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { createHash } from "node:crypto"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Bencode, layer, Metainfo, Peer, Session, Storage, Torrent, TorrentInput } from "../src/index.js"
import { compactPeers, fakeHttpTracker } from "./support/FakeTracker.js"
import { makeFakePeer, seeder } from "./support/FakePeer.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "./support/torrent.js"

const pieceLength = 64 * 1024

/** A folder holding `<name>.torrent`, whose tracker lists one fake seeder of its payload. */
const swarm = (name: string, size: number, seed: number) =>
  Effect.gen(function* () {
    const payload = payloadBytes(size, seed)
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(path.join(tmpdir(), "bt-lib-"))),
      (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
    )
    const peer = yield* makeFakePeer({ handler: seeder({ data: payload, pieceLength }) })
    const tracker = yield* fakeHttpTracker({
      body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers([peer.address]) }))
    })
    const torrentPath = path.join(dir, `${name}.torrent`)
    yield* Effect.promise(() =>
      writeFile(torrentPath, torrentBytes(singleFileInfo(name, payload, pieceLength), { announce: Bencode.text(tracker.url) }))
    )
    return { payload, dir, torrentPath }
  })

describe("library entry point", () => {
  it.live("downloads a torrent with the documented program: the ready layer, a Torrent handle, its events and stats", () =>
    Effect.gen(function* () {
      const { payload, dir, torrentPath } = yield* swarm("lib.bin", 20 * pieceLength + 999, 3)
      const out = path.join(dir, "lib.bin")

      // The README's program, verbatim but for the paths, the listening address and what it logs.
      const verified: Array<number> = []
      const program = Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const meta = yield* Metainfo.parseTorrent(yield* fs.readFile(torrentPath))
        const peerId = Peer.makePeerId((n) => crypto.getRandomValues(new Uint8Array(n)))
        const storage = yield* (yield* Storage).open(meta.info, out)
        const torrent = yield* Torrent.start({ info: meta.info, trackers: Metainfo.trackerTiers(meta) }, storage, yield* storage.scan, {
          peerId,
          listen: { host: "127.0.0.1", port: 0 }
        })
        yield* torrent.events.pipe(
          Stream.runForEach((event) => (event._tag === "PieceVerified" ? Effect.sync(() => verified.push(event.index)) : Effect.void)),
          Effect.fork
        )
        yield* torrent.done
        return yield* torrent.stats
      })
      const stats = yield* program.pipe(Effect.scoped, Effect.provide(layer), Effect.provide(NodeContext.layer))

      assert.strictEqual(stats.piecesDone, 21)
      assert.strictEqual(stats.verifiedBytes, payload.length)
      assert.isAbove(stats.port ?? 0, 0)
      assert.isAtMost(verified.length, 21)
      const written = yield* Effect.promise(() => readFile(out))
      const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
      assert.strictEqual(sha(written), sha(payload))
    }).pipe(Effect.scoped))

  it.live("runs the README's Session program: a session on the live layers, a torrent added by its bytes, followed to completion", () =>
    Effect.gen(function* () {
      const { payload, dir, torrentPath } = yield* swarm("session.bin", 12 * pieceLength + 321, 4)

      // The README's program, verbatim but for the paths, the listening address and what it logs.
      const progress: Array<number> = []
      const program = Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const session = yield* Session
        const events = yield* session.subscribe
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: yield* fs.readFile(torrentPath) }))
        yield* events.pipe(
          Stream.takeUntil((event) => event._tag === "Completed" && event.id === id),
          Stream.runForEach((event) => (event._tag === "Progress" ? Effect.sync(() => progress.push(event.verifiedBytes)) : Effect.void))
        )
        return yield* session.get(id)
      })
      const SessionLive = Session.layer({ downloadDirectory: dir, listen: { host: "127.0.0.1", port: 0 } })
      const torrent = yield* program.pipe(
        Effect.scoped,
        Effect.provide(SessionLive),
        Effect.provide(layer),
        Effect.provide(NodeContext.layer)
      )

      assert.strictEqual(torrent.status, "seeding")
      assert.strictEqual(torrent.name, "session.bin")
      assert.strictEqual(torrent.verifiedBytes, payload.length)
      assert.isTrue(progress.every((bytes) => bytes <= payload.length))
      const written = yield* Effect.promise(() => readFile(path.join(dir, "session.bin")))
      const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
      assert.strictEqual(sha(written), sha(payload))
    }).pipe(Effect.scoped))
})
