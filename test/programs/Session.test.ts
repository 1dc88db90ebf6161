/**
 * The Session on the in-memory network, under TestClock: several torrents at once from simulated
 * seeders, pause and resume, removal with the data, the queue's limit, a seeding goal, and the
 * one listen port routing inbound peers (plain and MSE) to their torrents.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { equalBytes, toHex } from "../../src/domain/Bytes.js"
import { TorrentInput, type SessionEvent, type SessionTorrent } from "../../src/programs/Session.js"
import { Dht } from "../../src/services/Dht.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { makeMemoryUdpNetwork } from "../../src/services/MemoryUdpNetwork.js"
import { Udp } from "../../src/services/Udp.js"
import { makeTorrent, sessionHost, sessionPort, simSession, until } from "../support/SimulatedSession.js"
import { addressOf, drive, seeded, simClient, simSeeder } from "../support/SimulatedSwarm.js"

const ofTag = <T extends SessionEvent["_tag"]>(events: ReadonlyArray<SessionEvent>, tag: T) =>
  events.filter((e): e is Extract<SessionEvent, { _tag: T }> => e._tag === tag)

const allSeeding = (list: ReadonlyArray<SessionTorrent>) => list.length > 0 && list.every((t) => t.status === "seeding")

const readFile = (path: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFile(path))

describe("Session on the in-memory network (TestClock)", () => {
  it.effect("downloads several torrents at once, each from its own seeder, into its files", () =>
    seeded(21)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", bandwidth: 1024 * 1024 } })
        const torrents = [1, 2, 3].map((n) => ({ ...makeTorrent(`t${n}.bin`, 300_000 + n * 1000, n), seeder: `127.4.1.${n}` }))
        for (const [i, t] of torrents.entries()) yield* simSeeder(network, t.seeder, t.info, t.payload, 10 + i)
        const { session, directory, events, context } = yield* simSession(network)
        const ids = yield* Effect.forEach(torrents, (t) => session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf(t.seeder)] }))
        expect(ids).toEqual([1, 2, 3])
        expect(yield* until(Effect.map(session.list, allSeeding), 100, 600)).toBe(true)
        for (const t of torrents) {
          const written = yield* readFile(`${directory}/${t.info.name}`).pipe(Effect.provide(context))
          expect(equalBytes(written, t.payload)).toBe(true)
        }
        const list = yield* session.list
        expect(list.map((t) => t.name)).toEqual(["t1.bin", "t2.bin", "t3.bin"])
        expect(list.every((t) => t.piecesDone === t.piecesTotal && t.verifiedBytes === t.totalBytes)).toBe(true)
        expect(ofTag(events, "Added").map((e) => e.id)).toEqual([1, 2, 3])
        expect(ofTag(events, "Completed").map((e) => e.id).sort()).toEqual([1, 2, 3])
      })
    ), 60_000)

  it.effect("pause stops a torrent where it stands, resume goes on without a re-check", () =>
    seeded(22)(
      Effect.gen(function* () {
        // 64 KiB/s: a 1 MiB torrent takes about 16 s.
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", bandwidth: 64 * 1024 } })
        const t = makeTorrent("slow.bin", 1024 * 1024, 5)
        yield* simSeeder(network, "127.4.2.1", t.info, t.payload, 20)
        const { session, directory, events, context } = yield* simSession(network)
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.2.1")] })
        const partway = Effect.map(session.get(id), (s) => s.verifiedBytes > 0)
        expect(yield* until(partway, 100, 200)).toBe(true)
        yield* session.pause(id)
        const paused = yield* session.get(id)
        expect(paused.status).toBe("paused")
        expect(paused.peers).toBe(0)
        expect(paused.verifiedBytes).toBeLessThan(paused.totalBytes)
        yield* until(Effect.succeed(false), 100, 50)
        expect((yield* session.get(id)).verifiedBytes).toBe(paused.verifiedBytes)
        const before = events.length
        yield* session.resume(id)
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 600)).toBe(true)
        const after = ofTag(events.slice(before), "StateChanged").map((e) => e.to)
        expect(after).toEqual(["queued", "downloading", "seeding"])
        const written = yield* readFile(`${directory}/slow.bin`).pipe(Effect.provide(context))
        expect(equalBytes(written, t.payload)).toBe(true)
      })
    ), 60_000)

  it.effect("remove with data deletes the files; duplicates, unknown ids and bad input are typed errors", () =>
    seeded(23)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const t = makeTorrent("gone.bin", 200_000, 6)
        yield* simSeeder(network, "127.4.3.1", t.info, t.payload, 30)
        const { session, directory, events, context } = yield* simSession(network)
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.3.1")] })
        const duplicate = yield* Effect.flip(session.add(TorrentInput.Metainfo({ bytes: t.bytes })))
        expect(duplicate).toMatchObject({ _tag: "DuplicateTorrent", id })
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 300)).toBe(true)
        const path = `${directory}/gone.bin`
        const fs = yield* Effect.provide(FileSystem.FileSystem, context)
        expect(yield* fs.exists(path)).toBe(true)
        yield* session.remove(id, { deleteData: true })
        expect(yield* fs.exists(path)).toBe(false)
        expect(yield* fs.exists(`${path}.part`)).toBe(false)
        expect(yield* session.list).toEqual([])
        expect(ofTag(events, "Removed")).toEqual([expect.objectContaining({ id, deletedData: true })])
        expect(yield* Effect.flip(session.get(id))).toMatchObject({ _tag: "UnknownTorrent", id })
        expect(yield* Effect.flip(session.pause(99))).toMatchObject({ _tag: "UnknownTorrent", id: 99 })
        const garbage = yield* Effect.flip(session.add(TorrentInput.Metainfo({ bytes: new TextEncoder().encode("not bencode") })))
        expect(garbage).toMatchObject({ _tag: "InvalidTorrentInput", input: "Metainfo" })
        expect(yield* Effect.flip(session.add(TorrentInput.Magnet({ uri: "magnet:?dn=x" })))).toMatchObject({ _tag: "InvalidTorrentInput", input: "Magnet" })
        expect(yield* Effect.flip(session.add(TorrentInput.InfoHash({ hex: "abc" })))).toMatchObject({ _tag: "InvalidTorrentInput", input: "InfoHash" })
        // Ids are not reused: the next torrent gets a new one.
        expect(yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { paused: true })).toBe(id + 1)
      })
    ), 60_000)

  it.effect("the queue runs at most N downloads at once; the others wait, then all complete", () =>
    seeded(24)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", bandwidth: 256 * 1024 } })
        const torrents = [1, 2, 3, 4].map((n) => ({ ...makeTorrent(`q${n}.bin`, 256 * 1024, 40 + n), seeder: `127.4.4.${n}` }))
        for (const [i, t] of torrents.entries()) yield* simSeeder(network, t.seeder, t.info, t.payload, 40 + i)
        const { session, events } = yield* simSession(network, { maxActiveDownloads: 2 })
        for (const t of torrents) yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf(t.seeder)] })
        let most = 0
        let waitedWhileFull = false
        const count = Effect.map(session.list, (list) => {
          const active = list.filter((t) => t.status === "downloading" || t.status === "checking").length
          most = Math.max(most, active)
          if (active === 2 && list.filter((t) => t.status === "queued").length === 2) waitedWhileFull = true
        })
        expect(yield* until(Effect.map(session.list, allSeeding), 50, 1200, count)).toBe(true)
        expect(most).toBe(2)
        expect(waitedWhileFull).toBe(true)
        // The first two in queue order ran first.
        const completed = ofTag(events, "Completed").map((e) => e.id)
        expect(completed.slice(0, 2).sort()).toEqual([1, 2])
      })
    ), 60_000)

  it.effect("a seeding ratio goal stops a seed once it has uploaded its size", () =>
    seeded(25)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const t = makeTorrent("ratio.bin", 300_000, 7)
        const { session, directory, events, context } = yield* simSession(network, { seedingGoal: { ratio: 1 } })
        yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFile(`${directory}/ratio.bin`, t.payload)).pipe(Effect.provide(context))
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }))
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 50)).toBe(true)
        const leecher = yield* simClient(network, "127.4.5.1", t.info, [{ host: sessionHost, port: sessionPort }], { port: 7777 })
        const { exit } = yield* drive(leecher.fiber, 100, 600)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
        expect(equalBytes(leecher.bytes, t.payload)).toBe(true)
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "finished"), 100, 50)).toBe(true)
        const done = yield* session.get(id)
        expect(done.ratio).toBeGreaterThanOrEqual(1)
        expect(ofTag(events, "StateChanged").at(-1)).toMatchObject({ id, from: "seeding", to: "finished" })
      })
    ), 60_000)

  it.effect("one listen port: inbound peers reach the torrent their handshake names, plain and MSE", () =>
    seeded(26)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const a = makeTorrent("a.bin", 200_000, 8)
        const b = makeTorrent("b.bin", 250_000, 9)
        const { session, directory, context } = yield* simSession(network)
        for (const t of [a, b]) {
          yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFile(`${directory}/${t.info.name}`, t.payload)).pipe(Effect.provide(context))
          yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }))
        }
        expect(yield* until(Effect.map(session.list, allSeeding), 100, 50)).toBe(true)
        expect(session.port).toBe(sessionPort)
        const at = [{ host: sessionHost, port: sessionPort }]
        const forA = yield* simClient(network, "127.4.6.1", a.info, at, { port: 7777 })
        const forB = yield* simClient(network, "127.4.6.2", b.info, at, { port: 7777, encryption: "require" })
        for (const [leecher, t] of [[forA, a], [forB, b]] as const) {
          const { exit } = yield* drive(leecher.fiber, 100, 600)
          expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
          expect(equalBytes(leecher.bytes, t.payload)).toBe(true)
        }
        const list = yield* session.list
        expect(list.map((t) => t.uploadedBytes >= t.totalBytes)).toEqual([true, true])
        const encrypted = forB.events.find((e) => e._tag === "PeerConnected")
        expect(encrypted).toMatchObject({ encryption: "mse-rc4" })
      })
    ), 60_000)

  it.effect("a magnet link gets its metadata from the swarm first, then downloads", () =>
    seeded(27)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const t = makeTorrent("magnet.bin", 300_000, 10)
        yield* simSeeder(network, "127.4.7.1", t.info, t.payload, 70)
        const { session, directory, events, context } = yield* simSession(network)
        const uri = `magnet:?xt=urn:btih:${toHex(t.info.infoHash)}&dn=magnet.bin&x.pe=127.4.7.1:6881`
        const id = yield* session.add(TorrentInput.Magnet({ uri }))
        expect((yield* session.get(id)).name).toBe("magnet.bin")
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 300)).toBe(true)
        const states = ofTag(events, "StateChanged").map((e) => e.to)
        expect(states).toEqual(["metadata", "checking", "downloading", "seeding"])
        const written = yield* readFile(`${directory}/magnet.bin`).pipe(Effect.provide(context))
        expect(equalBytes(written, t.payload)).toBe(true)
        // The same torrent by its info hash is a duplicate.
        const again = yield* Effect.flip(session.add(TorrentInput.InfoHash({ hex: toHex(t.info.infoHash) })))
        expect(again).toMatchObject({ _tag: "DuplicateTorrent", id })
      })
    ), 60_000)

  it.effect("a global connection limit holds across torrents", () =>
    seeded(28)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis", bandwidth: 128 * 1024 } })
        const torrents = [1, 2, 3].map((n) => ({ ...makeTorrent(`c${n}.bin`, 200_000, 80 + n), seeder: `127.4.8.${n}` }))
        for (const [i, t] of torrents.entries()) yield* simSeeder(network, t.seeder, t.info, t.payload, 80 + i)
        // Three torrents, one seeder each, two connections in all: one torrent waits for a permit.
        const { session } = yield* simSession(network, { maxConnections: 2 })
        for (const t of torrents) yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf(t.seeder)] })
        let most = 0
        const count = Effect.map(session.list, (list) => void (most = Math.max(most, list.reduce((n, t) => n + t.peers, 0))))
        expect(yield* until(Effect.map(session.list, allSeeding), 100, 600, count)).toBe(true)
        expect(most).toBe(2)
      })
    ), 60_000)

  it.effect("verify checks the data again (a damaged piece is fetched again); move puts the files in another folder", () =>
    seeded(29)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const t = makeTorrent("moved.bin", 300_000, 11)
        yield* simSeeder(network, "127.4.10.1", t.info, t.payload, 90)
        const { session, directory, events, context } = yield* simSession(network)
        const fs = yield* Effect.provide(FileSystem.FileSystem, context)
        const id = yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }), { peers: [addressOf("127.4.10.1")] })
        const seeding = Effect.map(session.get(id), (s) => s.status === "seeding")
        expect(yield* until(seeding, 100, 300)).toBe(true)

        // One byte of the first piece flipped behind the session's back: the check finds it, the swarm mends it.
        const damaged = t.payload.slice()
        damaged[10] ^= 0xff
        yield* fs.writeFile(`${directory}/moved.bin`, damaged)
        const before = events.length
        yield* session.verify(id)
        expect(yield* until(seeding, 100, 300)).toBe(true)
        expect(ofTag(events.slice(before), "StateChanged").map((e) => e.to)).toEqual(["checking", "downloading", "seeding"])
        expect(equalBytes(yield* fs.readFile(`${directory}/moved.bin`), t.payload)).toBe(true)

        const elsewhere = `${directory}/elsewhere`
        yield* session.move(id, elsewhere)
        expect(yield* until(seeding, 100, 300)).toBe(true)
        expect(yield* fs.exists(`${directory}/moved.bin`)).toBe(false)
        expect(equalBytes(yield* fs.readFile(`${elsewhere}/moved.bin`), t.payload)).toBe(true)
        const moved = yield* session.get(id)
        expect(moved.directory).toBe(elsewhere)
        expect(moved.piecesDone).toBe(moved.piecesTotal)
      })
    ), 60_000)

  it.effect("at most M seeds run at once; pausing one lets the next in the queue seed", () =>
    seeded(30)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const torrents = [1, 2, 3].map((n) => makeTorrent(`s${n}.bin`, 100_000, 100 + n))
        const { session, directory, context } = yield* simSession(network, { maxActiveSeeds: 1 })
        for (const t of torrents) {
          yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFile(`${directory}/${t.info.name}`, t.payload)).pipe(Effect.provide(context))
          yield* session.add(TorrentInput.Metainfo({ bytes: t.bytes }))
        }
        const statuses = Effect.map(session.list, (list) => list.map((t) => t.status).join(" "))
        // Each is checked (as a download) before the queue knows it is a seed; then only the first seeds.
        const checked = Effect.map(session.list, (list) => list.every((t) => t.piecesDone === t.piecesTotal))
        expect(yield* until(Effect.zipWith(checked, statuses, (c, s) => c && s === "seeding queued queued"), 100, 100)).toBe(true)
        yield* session.pause(1)
        expect(yield* until(Effect.map(statuses, (s) => s === "paused seeding queued"), 100, 100)).toBe(true)
        yield* session.resume(1)
        // The running seed keeps its slot; the resumed one waits.
        expect(yield* until(Effect.map(statuses, (s) => s === "queued seeding queued"), 100, 100)).toBe(true)
      })
    ), 60_000)

  it.effect("an info hash alone: the session's one DHT node finds the swarm, the metadata, then the data", () =>
    seeded(31)(
      Effect.gen(function* () {
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const udp = yield* makeMemoryUdpNetwork()
        const t = makeTorrent("dht.bin", 200_000, 12)
        const seederHost = "127.4.12.1"
        yield* simSeeder(network, seederHost, t.info, t.payload, 110)
        const dhtOn = (host: string) =>
          Dht.layer.pipe(Layer.provide(Layer.succeed(Udp, udp.host(host))), Layer.provide(FileSystem.layerNoop({})))
        const router = { host: "127.6.0.1", port: 6881 }
        yield* Effect.flatMap(Dht, (dht) => dht.start({ ...router, bootstrap: [] })).pipe(Effect.provide(dhtOn(router.host)))
        const seederNode = yield* Effect.flatMap(Dht, (dht) => dht.start({ host: seederHost, port: 6881, bootstrap: [router] })).pipe(
          Effect.provide(dhtOn(seederHost))
        )
        const announced = yield* Effect.fork(seederNode.announce(t.info.infoHash, 6881))
        expect(yield* until(Effect.map(announced.poll, (o) => o._tag === "Some"), 10, 1000)).toBe(true)
        const dht = yield* Effect.provide(Dht, dhtOn(sessionHost))
        const { session, directory, context } = yield* simSession(network, { dht: { bootstrap: [router] } }, Layer.succeed(Dht, dht))
        const id = yield* session.add(TorrentInput.InfoHash({ hex: toHex(t.info.infoHash) }))
        expect(yield* until(Effect.map(session.get(id), (s) => s.status === "seeding"), 100, 600)).toBe(true)
        expect((yield* session.get(id)).name).toBe("dht.bin")
        const written = yield* readFile(`${directory}/dht.bin`).pipe(Effect.provide(context))
        expect(equalBytes(written, t.payload)).toBe(true)
      })
    ), 60_000)
})
