/**
 * A Session on the in-memory network: its host's Transport, files in a temporary folder, no
 * tracker (peers are given), and helpers to build torrents and move the TestClock on until a
 * condition holds (bounded).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Either, Layer, Stream, TestClock } from "effect"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { make, type SessionEvent, type SessionOptions } from "../../src/programs/Session.js"
import type { Dht } from "../../src/services/Dht.js"
import { Hasher } from "../../src/services/Hasher.js"
import type { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Storage } from "../../src/services/Storage.js"
import { Transport } from "../../src/services/Transport.js"
import { noTracker } from "./SimulatedSwarm.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "./torrent.js"

export const sessionHost = "127.4.0.100"
/** Not the seeders' 6881: a loopback peer with the port we announce is taken for ourselves. */
export const sessionPort = 7000

/** A single-file .torrent without trackers: its bytes, parsed info and payload. */
export const makeTorrent = (name: string, size: number, seed: number, pieceLength = 64 * 1024) => {
  const payload = payloadBytes(size, seed)
  const bytes = torrentBytes(singleFileInfo(name, payload, pieceLength), {})
  const meta = Either.getOrThrow(parseTorrent(bytes))
  return { bytes, info: meta.info, payload }
}

/** The services of a session on `host` of the network, with files on the real disk. */
export const sessionServices = (network: MemoryNetwork, host = sessionHost) =>
  Layer.mergeAll(PeerWire.Live, Storage.Live, noTracker).pipe(
    Layer.provideMerge(Layer.succeed(Transport, network.host(host))),
    Layer.provideMerge(Hasher.Sync),
    Layer.provideMerge(NodeFileSystem.layer)
  )

/** A temporary download folder and a session over it, listening on the session host; its events are collected. */
export const simSession = (network: MemoryNetwork, options: Partial<SessionOptions> = {}, dht: Layer.Layer<Dht> | Layer.Layer<never> = Layer.empty) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(Layer.merge(sessionServices(network), dht))
    const directory = yield* FileSystem.FileSystem.pipe(
      Effect.flatMap((fs) => fs.makeTempDirectoryScoped({ prefix: "bt-session-" })),
      Effect.provide(context)
    )
    const session = yield* make({
      downloadDirectory: directory,
      listen: { host: sessionHost, port: sessionPort },
      torrent: { giveUpAfter: "10 minutes" },
      ...options
    }).pipe(Effect.provide(context))
    const events: Array<SessionEvent> = []
    // Subscribed before anything is added: no event is missed.
    const stream = yield* session.subscribe
    yield* stream.pipe(Stream.runForEach((e) => Effect.sync(() => events.push(e))), Effect.forkScoped)
    return { session, directory, events, context }
  })

/** Moves the TestClock on `step` ms at a time until `done` holds, at most `maxSteps` times; gives whether it held. */
export const until = <E, R>(done: Effect.Effect<boolean, E, R>, step: number, maxSteps: number, each?: Effect.Effect<void, E, R>) =>
  Effect.gen(function* () {
    for (let i = 0; i < maxSteps; i++) {
      if (yield* done) return true
      if (each !== undefined) yield* each
      yield* TestClock.adjust(step)
    }
    return yield* done
  })
