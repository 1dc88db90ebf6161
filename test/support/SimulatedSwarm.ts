/**
 * A swarm on the in-memory network: our torrent core as the client and as honest or lying
 * seeders, plus peers that never unchoke, each on a simulated host of its own. Everything runs on
 * Effect's Clock, so under TestClock a whole swarm is deterministic for a given seed; `drive`
 * moves the clock on in steps until the download is done (bounded).
 */
import { Effect, Either, Fiber, Layer, Random, type Scope, Stream, TestClock } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { equalBytes } from "../../src/domain/Bytes.js"
import { type Info, pieceSize } from "../../src/domain/Metainfo.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { makePeerId } from "../../src/domain/Peer.js"
import { Message } from "../../src/domain/Wire.js"
import { type DownloadEvent, type EngineOptions, type PieceSink, runEngine } from "../../src/programs/Download.js"
import { seed, type SeedOptions } from "../../src/programs/Seed.js"
import { Hasher } from "../../src/services/Hasher.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { type EncryptionPolicy, PeerWire, skeyLookup } from "../../src/services/PeerWire.js"
import { Tracker, TrackerError } from "../../src/services/Tracker.js"
import { Transport } from "../../src/services/Transport.js"

export const port = 6881

/** A tracker that knows nobody: every peer is given. */
export const noTracker = Layer.succeed(Tracker, {
  announce: () => Effect.die("no tracker in this swarm"),
  tiers: () => Effect.succeed({ announce: () => Effect.die("no tracker in this swarm") })
})

/** A tracker that refuses every announce, as a dead torrent's does. */
export const refusingTracker = Layer.succeed(Tracker, {
  announce: (url) => Effect.fail(new TrackerError({ url, reason: "Failure", detail: "torrent not registered" })),
  tiers: (tiers) =>
    Effect.succeed({
      announce: () => Effect.fail(new TrackerError({ url: tiers[0]?.[0] ?? "", reason: "Failure", detail: "torrent not registered" }))
    })
})

/** PeerWire, Hasher and a tracker on one simulated host (its TCP, unless given another transport: a dual one, say). */
export const hostLayer = (
  network: MemoryNetwork,
  address: string,
  tracker: Layer.Layer<Tracker> = noTracker,
  transport: Transport["Type"] = network.host(address)
) => Layer.mergeAll(PeerWire.Live.pipe(Layer.provideMerge(Layer.succeed(Transport, transport))), Hasher.Sync, tracker)

const peerIdFor = (n: number) => makePeerId(() => Uint8Array.from({ length: 12 }, (_, i) => (n * 31 + i) % 256))

/** The payload as a sink that reads back (`corrupt`: every block read comes back with its bits flipped). */
const payloadStorage = (info: Info, payload: Uint8Array, corrupt: boolean) => ({
  readBlock: (index: number, begin: number, length: number) =>
    Effect.sync(() => {
      const at = index * info.pieceLength + begin
      const block = payload.slice(at, at + length)
      if (corrupt) for (let i = 0; i < block.length; i++) block[i] ^= 0xff
      return block
    })
})

/** A seeder of our own torrent core on `address` (a liar when `corrupt`), for the rest of the scope. */
export const simSeeder = (
  network: MemoryNetwork,
  address: string,
  info: Info,
  payload: Uint8Array,
  n: number,
  corrupt = false,
  options: Partial<SeedOptions> = {}
) =>
  seed({ info, trackers: [] }, payloadStorage(info, payload, corrupt), Bitfield.full(info.pieceCount), {
    peerId: peerIdFor(n),
    host: address,
    port,
    ...options
  }).pipe(Stream.runDrain, Effect.provide(hostLayer(network, address)), Effect.forkScoped)

/** How a `chokingPeer` takes connections: over which transport (its host's TCP by default), with which policy. */
export interface ChokingPeerOptions {
  readonly transport?: Transport["Type"]
  readonly encryption?: EncryptionPolicy
}

/**
 * A peer that has everything and never unchokes anyone: it only reads what it is sent. Gives how
 * many connections reached it (before any handshake).
 */
export const chokingPeer = (network: MemoryNetwork, address: string, info: Info, n: number, options: ChokingPeerOptions = {}) =>
  Effect.gen(function* () {
    const wire = yield* PeerWire
    const transport = yield* Transport
    const listening = yield* transport.listen({ host: address, port })
    const local = { peerId: peerIdFor(n), reserved: new Uint8Array(8), pieceCount: info.pieceCount }
    const accept = { lookup: () => local, skey: skeyLookup([info.infoHash]), encryption: options.encryption ?? "allow" }
    let reached = 0
    const serve = (duplex: Parameters<typeof wire.accept>[0]) =>
      Effect.scoped(
        Effect.gen(function* () {
          reached++
          const conn = yield* wire.accept(duplex, accept)
          conn.sendNow([Message.bitfield(Bitfield.full(info.pieceCount).bytes)])
          yield* Stream.runDrain(conn.messages)
        })
      ).pipe(Effect.ignore, Effect.forkScoped)
    yield* listening.connections.pipe(Stream.runForEach(serve), Effect.forkScoped)
    return { reached: () => reached }
  }).pipe(Effect.provide(hostLayer(network, address, noTracker, options.transport)))

/** Where our client's verified pieces land. */
export const memorySink = (info: Info) => {
  const bytes = new Uint8Array(info.totalLength)
  const sink: PieceSink = {
    writePiece: (index, data) => Effect.sync(() => bytes.set(data.subarray(0, pieceSize(info, index)), index * info.pieceLength))
  }
  return { bytes, sink }
}

/** Where a `simClient` runs: over which transport (its host's TCP by default), and with which pieces (none by default). */
export interface SimClientHost {
  readonly transport?: Transport["Type"]
  readonly have?: Bitfield
}

/** Our client on `address`, downloading from `peers`; its events are collected. */
export const simClient = (
  network: MemoryNetwork,
  address: string,
  info: Info,
  peers: ReadonlyArray<PeerAddress>,
  options: Partial<EngineOptions> = {},
  tracker?: Layer.Layer<Tracker>,
  host: SimClientHost = {}
) =>
  Effect.gen(function* () {
    const events: Array<DownloadEvent> = []
    const { bytes, sink } = memorySink(info)
    const trackers = tracker === undefined ? [] : [["http://127.9.9.9/announce"]]
    const fiber = yield* runEngine({ info, trackers, peers }, sink, host.have ?? Bitfield.empty(info.pieceCount), {
      peerId: peerIdFor(0),
      // Not the seeders' port: a loopback address with the port we announce is taken for ourselves.
      port: port + 1,
      ...options
    }).pipe(
      Stream.runForEach((e) => Effect.sync(() => events.push(e))),
      Effect.either,
      Effect.provide(hostLayer(network, address, tracker, host.transport)),
      Effect.forkScoped
    )
    return { events, bytes, fiber }
  })

/**
 * Moves the TestClock on `step` at a time until the fiber is done, at most `maxSteps` times.
 * Returns its result and the virtual milliseconds it took.
 */
export const drive = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: number, maxSteps: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < maxSteps; i++) {
      const done = fiber.unsafePoll()
      if (done !== null) return { exit: done, millis: i * step }
      yield* TestClock.adjust(step)
    }
    return { exit: fiber.unsafePoll(), millis: maxSteps * step }
  })

export const addressOf = (host: string): PeerAddress => ({ host, port })

/** Runs `body` with Effect's Random seeded, so the picker and the choker choose alike each time. */
export const seeded = (n: number) => <A, E, R>(body: Effect.Effect<A, E, R | Scope.Scope>) =>
  Effect.scoped(body).pipe(Effect.withRandom(Random.make(n)))

export const matches = (a: Uint8Array, b: Uint8Array) => equalBytes(a, b)
export { Either }
