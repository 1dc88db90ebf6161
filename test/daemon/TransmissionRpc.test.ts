/**
 * The daemon's Transmission RPC in process: `Daemon.start` on 127.0.0.1 over a session on the
 * in-memory network (a seeder of our own core there), driven with plain HTTP requests: the
 * session-id handshake and the tag, adding by magnet link and by metainfo, the fields, the table
 * form, file selection and speed limits through torrent-set, session-set, stop and start, removal
 * with the data, and the answers to what is wrong; the queue moves (admission by the new order,
 * kept across a restart), free-space and session-close.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { start } from "../../src/programs/Daemon.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { StateStore } from "../../src/services/StateStore.js"
import { sessionHost, sessionPort, sessionServices } from "../support/SimulatedSession.js"
import { simSeeder } from "../support/SimulatedSwarm.js"
import { multiFileInfo, payloadBytes, torrentBytes } from "../support/torrent.js"

const files = [
  { path: ["a.bin"], data: payloadBytes(80_000, 81) },
  { path: ["b.bin"], data: payloadBytes(40_000, 82) }
]
const bytes = torrentBytes(multiFileInfo("pair", files, 16 * 1024), {})
const info = Either.getOrThrow(parseTorrent(bytes)).info
const payload = new Uint8Array([...files[0]!.data, ...files[1]!.data])

/** A client that does the handshake once and echoes nothing of its own. */
const client = (url: string) =>
  Effect.gen(function* () {
    const first = yield* Effect.promise(() => fetch(url, { method: "POST", body: "{}" }))
    const id = first.headers.get("x-transmission-session-id") ?? ""
    const call = (method: string, args: Record<string, unknown> = {}, tag?: unknown) =>
      Effect.promise(async () => {
        const response = await fetch(url, { method: "POST", body: JSON.stringify({ method, arguments: args, tag }), headers: { "X-Transmission-Session-Id": id } })
        return { status: response.status, body: (await response.json()) as { result: string; arguments: any; tag?: unknown } }
      })
    return { first, id, call }
  })

/** Polls until `ok` holds, bounded (100 turns of 100 ms). */
const until = <A>(get: Effect.Effect<A>, ok: (a: A) => boolean) =>
  Effect.gen(function* () {
    let value = yield* get
    for (let turn = 0; turn < 100 && !ok(value); turn++) {
      yield* Effect.sleep("100 millis")
      value = yield* get
    }
    return value
  })

describe("Transmission RPC (in process, in-memory swarm)", () => {
  it.live("handshake, add, get, set, session settings, stop/start, remove", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make({ link: { latency: "1 millis" } })
      yield* simSeeder(network, "127.4.11.1", info, payload, 40)
      const services = sessionServices(network)
      const fs = yield* Effect.provide(FileSystem.FileSystem, services)
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "bt-rpc-" })
      const other = `${dir}/other`
      const stateStore = yield* Effect.provide(StateStore, StateStore.Memory)
      const daemon = yield* start({
        http: { host: "127.0.0.1", port: 0 },
        session: { downloadDirectory: dir, listen: { host: sessionHost, port: sessionPort }, torrent: { giveUpAfter: "10 minutes" } },
        stateStore,
        version: "9.9.9"
      }).pipe(Effect.provide(services))
      const { first, id, call } = yield* client(`${daemon.address.url}/transmission/rpc`)
      expect(first.status).toBe(409)
      expect(id).toMatch(/^\S{16,}$/)

      expect((yield* call("session-set", { "download-dir": other }, "t-1")).body).toEqual({ result: "success", arguments: {}, tag: "t-1" })
      const hash = toHex(info.infoHash)
      const added = yield* call("torrent-add", { filename: `magnet:?xt=urn:btih:${hash}&dn=pair&x.pe=127.4.11.1:6881` })
      expect(added.body.arguments).toEqual({ "torrent-added": { id: 1, name: "pair", hashString: hash } })
      const get = (fields: ReadonlyArray<string>) => Effect.map(call("torrent-get", { fields, ids: [1] }), (r) => r.body.arguments.torrents[0])
      const done = yield* until(get(["percentDone", "status", "downloadDir", "totalSize", "files"]), (t) => t?.status === 6)
      expect(done).toEqual({
        percentDone: 1,
        status: 6,
        downloadDir: other,
        totalSize: 120_000,
        files: [{ name: "pair/a.bin", length: 80_000, bytesCompleted: 80_000 }, { name: "pair/b.bin", length: 40_000, bytesCompleted: 40_000 }]
      })
      const base64 = Buffer.from(bytes).toString("base64")
      expect((yield* call("torrent-add", { metainfo: base64, paused: true })).body.arguments).toEqual({ "torrent-duplicate": { id: 1, name: "pair", hashString: hash } })
      const table = yield* call("torrent-get", { fields: ["id", "hashString", "nonsense"], format: "table", ids: [hash] })
      expect(table.body.arguments.torrents).toEqual([["id", "hashString"], [1, hash]])

      yield* call("torrent-set", { ids: 1, "files-unwanted": [1], "priority-high": [0], downloadLimit: 10, downloadLimited: true })
      expect(yield* get(["fileStats", "priorities", "downloadLimit", "downloadLimited", "uploadLimited", "sizeWhenDone"])).toEqual({
        fileStats: [{ bytesCompleted: 80_000, wanted: true, priority: 1 }, { bytesCompleted: 40_000, wanted: false, priority: 0 }],
        priorities: [1, 0],
        downloadLimit: 10,
        downloadLimited: true,
        uploadLimited: false,
        sizeWhenDone: 80_000
      })
      expect((yield* daemon.session.records)[0]!.options).toMatchObject({ files: ["high", "skip"], rateLimits: { download: 10_000 } })

      yield* call("session-set", { "speed-limit-up": 20, "speed-limit-up-enabled": true })
      const session = (yield* call("session-get")).body.arguments
      expect(session).toMatchObject({ "speed-limit-up": 20, "speed-limit-up-enabled": true, "speed-limit-down-enabled": false, version: "9.9.9 (effect-bittorrent)", "session-id": id })
      yield* call("session-set", { "speed-limit-up-enabled": false })
      expect((yield* call("session-get")).body.arguments).toMatchObject({ "speed-limit-up": 20, "speed-limit-up-enabled": false })

      yield* call("torrent-stop", { ids: [1] })
      expect((yield* get(["status"])).status).toBe(0)
      expect((yield* call("torrent-get", { fields: ["id"], ids: "recently-active" })).body.arguments).toEqual({ torrents: [], removed: [] })
      yield* call("torrent-start", { ids: [hash] })
      expect((yield* until(get(["status"]), (t) => t.status === 6)).status).toBe(6)
      expect((yield* call("torrent-verify", { ids: [1] })).body.result).toBe("success")
      const stats = (yield* call("session-stats")).body.arguments
      expect(stats).toMatchObject({ torrentCount: 1, "current-stats": { downloadedBytes: 120_000, sessionCount: 1 } })

      expect((yield* call("torrent-set", { ids: [1], "files-wanted": [5] })).body.result).toBe("file index 5 does not exist: the torrent has 2 files")
      expect((yield* call("torrent-get", {})).body).toEqual({ result: "no fields specified", arguments: {} })
      expect((yield* call("torrent-add", { metainfo: "!!" })).body.result).toBe("metainfo is not base64")
      expect((yield* call("torrent-add", { metainfo: Buffer.from("d4:infoi1ee").toString("base64") })).body.result).toMatch(/^invalid or corrupt torrent file: /)
      expect((yield* call("torrent-stop", { ids: [99] })).body.result).toBe("success")

      expect((yield* call("torrent-remove", { ids: [1], "delete-local-data": true })).body.result).toBe("success")
      expect((yield* call("torrent-get", { fields: ["id"] })).body.arguments.torrents).toEqual([])
      expect(yield* fs.exists(`${other}/pair`)).toBe(false)
    }).pipe(Effect.scoped), 60_000)

  it.live("queue-move-*, free-space, session-close", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make({ link: { latency: "1 millis" } })
      const services = sessionServices(network)
      const fs = yield* Effect.provide(FileSystem.FileSystem, services)
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "bt-rpc-queue-" })
      const stateStore = yield* Effect.provide(StateStore, StateStore.Memory)
      const daemonAt = start({
        http: { host: "127.0.0.1", port: 0 },
        session: { downloadDirectory: dir, listen: { host: sessionHost, port: sessionPort }, maxActiveDownloads: 1, torrent: { giveUpAfter: "10 minutes" } },
        stateStore,
        version: "9.9.9"
      }).pipe(Effect.provide(services))
      const hashes = ["aa", "bb", "cc", "dd"].map((h) => h.repeat(20))
      const queue = (call: (method: string, args?: Record<string, unknown>) => Effect.Effect<{ body: { arguments: any } }>) =>
        Effect.map(call("torrent-get", { fields: ["id", "queuePosition", "status"] }), (r) =>
          (r.body.arguments.torrents as Array<{ id: number; queuePosition: number; status: number }>).sort((a, b) => a.queuePosition - b.queuePosition))
      const ids = (q: ReadonlyArray<{ id: number }>) => q.map((t) => t.id)

      yield* Effect.gen(function* () {
        const daemon = yield* daemonAt
        const { call } = yield* client(`${daemon.address.url}/transmission/rpc`)
        // Magnet links to a peer that is not there: fetching their metadata, they wait for it (a slot taken).
        for (const hash of hashes) expect((yield* call("torrent-add", { filename: `magnet:?xt=urn:btih:${hash}&x.pe=127.4.11.9:6881` })).body.result).toBe("success")
        expect(yield* queue(call)).toMatchObject([{ id: 1, queuePosition: 0, status: 4 }, { id: 2, queuePosition: 1, status: 3 }, { id: 3, queuePosition: 2 }, { id: 4, queuePosition: 3 }])

        expect((yield* call("queue-move-top", { ids: [3, hashes[3]] })).body).toEqual({ result: "success", arguments: {} })
        expect(ids(yield* queue(call))).toEqual([3, 4, 1, 2])
        yield* call("queue-move-down", { ids: [3] })
        expect(ids(yield* queue(call))).toEqual([4, 3, 1, 2])
        yield* call("queue-move-up", { ids: [2, 99] })
        expect(ids(yield* queue(call))).toEqual([4, 3, 2, 1])
        yield* call("queue-move-bottom", { ids: 4 })
        expect(ids(yield* queue(call))).toEqual([3, 2, 1, 4])
        // The running torrent keeps its slot; stopped, the slot goes to the first in the new order.
        yield* call("torrent-stop", { ids: [1] })
        expect((yield* queue(call)).map((t) => [t.id, t.status])).toEqual([[3, 4], [2, 3], [1, 0], [4, 3]])
        expect((yield* call("queue-move-up", { ids: ["nonsense"] })).body.result).toBe('ids: "nonsense" is not a torrent id or an info hash')

        const space = (yield* call("free-space", { path: dir })).body
        expect(space.arguments).toMatchObject({ path: dir })
        expect(space.arguments["size-bytes"]).toBeGreaterThan(0)
        expect(space.arguments.total_size).toBeGreaterThanOrEqual(space.arguments["size-bytes"])
        expect((yield* call("free-space", { path: `${dir}/missing` })).body).toEqual({ result: `${dir}/missing: no such file or directory`, arguments: {} })
        expect((yield* call("free-space", {})).body.result).toBe("directory path argument is missing")
        expect((yield* call("free-space", { path: "rel" })).body.result).toBe("directory path is not absolute")

        const waiting = yield* Effect.fork(daemon.closeRequested)
        expect((yield* call("session-close")).body).toEqual({ result: "success", arguments: {} })
        yield* Fiber.join(waiting).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("session-close did not end the daemon") }))
      }).pipe(Effect.scoped)

      // Restarted on the same state: the queue as it was left (ids in order of addition).
      const again = yield* daemonAt
      const { call } = yield* client(`${again.address.url}/transmission/rpc`)
      expect(ids(yield* queue(call))).toEqual([3, 2, 1, 4])
    }).pipe(Effect.scoped), 60_000)
})
