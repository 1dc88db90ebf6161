/**
 * The daemon's REST API and event stream over real HTTP on 127.0.0.1 (an in-process daemon, port
 * 0), its session on the in-memory network with a seeder there: each endpoint's answers, every
 * refusal's status and JSON error, the event stream from its snapshot to a finished download, a
 * slow follower's bounded backlog, and the web UI's folder (nothing outside it is served).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Scope, Stream } from "effect"
import * as path from "node:path"
import { toHex } from "../../src/domain/Bytes.js"
import { start } from "../../src/programs/Daemon.js"
import { serve } from "../../src/programs/daemon/DaemonServer.js"
import { makeDaemonSettings } from "../../src/programs/daemon/DaemonSettings.js"
import { eventFrames } from "../../src/programs/daemon/RestEvents.js"
import { webRoutes } from "../../src/programs/daemon/WebUi.js"
import { SessionEvent, type SessionService } from "../../src/programs/Session.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { StateStore } from "../../src/services/StateStore.js"
import { follow, postJson, request } from "../support/restClient.js"
import { makeTorrent, sessionHost, sessionPort, sessionServices } from "../support/SimulatedSession.js"
import { simSeeder } from "../support/SimulatedSwarm.js"
import { multiFileInfo, payloadBytes, torrentBytes } from "../support/torrent.js"

const maxBodyBytes = 64 * 1024

/** A daemon on 127.0.0.1 over a session on the in-memory network (a seeder may sit at 127.4.30.1). */
const daemon = (network: MemoryNetwork) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "bt-rest-" })
    const stateStore = yield* Effect.provide(StateStore, StateStore.Memory)
    const running = yield* start({
      http: { host: "127.0.0.1", port: 0, maxBodyBytes },
      session: { downloadDirectory: directory, listen: { host: sessionHost, port: sessionPort }, torrent: { giveUpAfter: "2 minutes" } },
      stateStore,
      version: "test"
    })
    return { ...running, directory, base: running.address.url }
  }).pipe(Effect.provide(sessionServices(network)))

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")

const threeFiles = () =>
  torrentBytes(multiFileInfo("trio", [
    { path: ["a.bin"], data: payloadBytes(40_000, 1) },
    { path: ["b.bin"], data: payloadBytes(20_000, 2) },
    { path: ["c.bin"], data: payloadBytes(10_000, 3) }
  ], 16 * 1024), {})

/** The daemon's settings beside a stub session. */
const stubSettings = makeDaemonSettings({
  downloadDirectory: "/tmp",
  version: "test",
  session: { maxConnections: 200, maxPeersPerTorrent: 50, dht: false, encryption: "prefer" }
})

const errorCode = (reply: { readonly status: number; readonly body: any }) => [reply.status, reply.body?.error?.code]

describe("REST API", () => {
  it.scopedLive("adds, lists, changes and removes torrents; refuses bad input with a status and a JSON error", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make({ link: { latency: "1 millis" } })
      const { base } = yield* daemon(network)
      expect((yield* request(base, "GET", "/api/v1/torrents")).body).toEqual({ torrents: [] })
      const trio = threeFiles()
      const added = yield* postJson(base, "/api/v1/torrents", { metainfo: base64(trio), paused: true })
      expect(added.status).toBe(201)
      expect(added.type).toContain("application/json")
      expect(added.body).toMatchObject({ id: 1, name: "trio", status: "paused", progress: 0, sizes: { total: 70_000, verified: 0 }, eta: null, error: null })
      const infoHash: string = added.body.infoHash
      const duplicate = yield* postJson(base, "/api/v1/torrents", { metainfo: base64(trio) })
      expect(duplicate.body.error).toMatchObject({ code: "duplicate_torrent", id: 1 })
      expect(duplicate.status).toBe(409)

      // Refusals of an add.
      const refusals: ReadonlyArray<[unknown, number, string]> = [
        [{ magnet: 1 }, 400, "bad_request"],
        [{ bogus: true, magnet: "magnet:?xt=urn:btih:" + "ab".repeat(20) }, 400, "bad_request"],
        [{}, 400, "bad_request"],
        [{ magnet: "magnet:?xt=urn:btih:" + "ab".repeat(20), infoHash: "ab".repeat(20) }, 400, "bad_request"],
        [{ metainfo: "not base64!" }, 400, "bad_request"],
        [{ metainfo: base64(new TextEncoder().encode("d4:spam4:eggse")) }, 400, "invalid_torrent"],
        [{ magnet: "magnet:?dn=x" }, 400, "invalid_torrent"],
        [{ infoHash: "xyz" }, 400, "invalid_torrent"],
        [{ magnet: "magnet:?xt=urn:btih:" + "cd".repeat(20), directory: "relative/dir" }, 400, "bad_request"]
      ]
      for (const [body, status, code] of refusals) expect(errorCode(yield* postJson(base, "/api/v1/torrents", body)), JSON.stringify(body)).toEqual([status, code])
      expect(errorCode(yield* request(base, "POST", "/api/v1/torrents", "{", "application/json"))).toEqual([400, "bad_json"])
      expect(errorCode(yield* request(base, "POST", "/api/v1/torrents", "magnet:?x", "text/plain"))).toEqual([415, "unsupported_media_type"])
      expect(errorCode(yield* request(base, "POST", "/api/v1/torrents", "{}"))).toEqual([415, "unsupported_media_type"])
      const huge = JSON.stringify({ magnet: "x".repeat(maxBodyBytes) })
      expect(errorCode(yield* request(base, "POST", "/api/v1/torrents", huge, "application/json"))).toEqual([413, "body_too_large"])
      // Chunked, without a Content-Length: the bound is found while reading.
      const chunked = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(huge))
          c.close()
        }
      })
      expect(errorCode(yield* request(base, "POST", "/api/v1/torrents", chunked, "application/json"))).toEqual([413, "body_too_large"])

      // A raw .torrent body, its options in the query.
      const single = makeTorrent("single.bin", 50_000, 7)
      expect(errorCode(yield* request(base, "POST", "/api/v1/torrents?paused=maybe", single.bytes, "application/x-bittorrent"))).toEqual([400, "bad_request"])
      const raw = yield* request(base, "POST", "/api/v1/torrents?paused=true", single.bytes, "application/x-bittorrent")
      expect(raw.body).toMatchObject({ id: 2, name: "single.bin", status: "paused" })

      // One torrent, by id or by info hash.
      expect((yield* request(base, "GET", "/api/v1/torrents/1")).body).toEqual(added.body)
      expect((yield* request(base, "GET", `/api/v1/torrents/${infoHash.toUpperCase()}`)).body.id).toBe(1)
      expect(errorCode(yield* request(base, "GET", "/api/v1/torrents/99"))).toEqual([404, "unknown_torrent"])
      expect(errorCode(yield* request(base, "GET", `/api/v1/torrents/${"0".repeat(40)}`))).toEqual([404, "unknown_torrent"])
      expect(errorCode(yield* request(base, "GET", "/api/v1/torrents/abc"))).toEqual([400, "bad_torrent_id"])
      expect(errorCode(yield* request(base, "POST", "/api/v1/torrents/99/pause"))).toEqual([404, "unknown_torrent"])
      expect((yield* request(base, "GET", "/api/v1/torrents")).body.torrents.map((t: { id: number }) => t.id)).toEqual([1, 2])

      // Files: wanted and unwanted.
      const files = yield* request(base, "GET", "/api/v1/torrents/1/files")
      expect(files.body.files.map((f: { path: string; wanted: boolean }) => [f.path, f.wanted])).toEqual([["trio/a.bin", true], ["trio/b.bin", true], ["trio/c.bin", true]])
      const changed = yield* request(base, "PUT", "/api/v1/torrents/1/files", JSON.stringify({ unwanted: [1], priorities: [{ index: 2, priority: "high" }] }), "application/json")
      expect(changed.body.files.map((f: { priority: string }) => f.priority)).toEqual(["normal", "skip", "high"])
      const again = yield* postJson(base, "/api/v1/torrents/1/files", { wanted: [1] })
      expect(again.body.files.map((f: { priority: string }) => f.priority)).toEqual(["normal", "normal", "high"])
      expect(errorCode(yield* postJson(base, "/api/v1/torrents/1/files", { unwanted: [3] }))).toEqual([400, "invalid_file_selection"])
      expect(errorCode(yield* postJson(base, "/api/v1/torrents/1/files", { wanted: "all" }))).toEqual([400, "bad_request"])
      expect(errorCode(yield* postJson(base, "/api/v1/torrents/1/files", { priorities: [{ index: 0, priority: "urgent" }] }))).toEqual([400, "bad_request"])
      const magnet = yield* postJson(base, "/api/v1/torrents", { magnet: `magnet:?xt=urn:btih:${"ef".repeat(20)}&dn=later`, paused: true })
      expect(magnet.body).toMatchObject({ id: 3, name: "later", sizes: { total: 0 } })
      expect((yield* request(base, "GET", "/api/v1/torrents/3/files")).body).toEqual({ files: [] })
      expect(errorCode(yield* postJson(base, "/api/v1/torrents/3/files", { wanted: [0] }))).toEqual([409, "metadata_pending"])

      // Peers, actions, the session.
      expect((yield* request(base, "GET", "/api/v1/torrents/1/peers")).body).toEqual({ peers: [] })
      expect((yield* request(base, "POST", "/api/v1/torrents/1/resume")).body.status).not.toBe("paused")
      expect((yield* request(base, "POST", "/api/v1/torrents/1/pause")).body.status).toBe("paused")
      expect((yield* request(base, "POST", "/api/v1/torrents/1/verify")).status).toBe(200)
      const session = yield* request(base, "GET", "/api/v1/session")
      expect(session.body).toMatchObject({ version: "test", peerPort: sessionPort, torrents: { total: 3 }, rates: { download: 0, upload: 0 }, limits: { download: null, upload: null } })
      expect(errorCode(yield* request(base, "GET", "/api/v1/nothing/here"))).toEqual([404, "not_found"])
      expect(errorCode(yield* request(base, "GET", "/api/v1/torrents/1/pause"))).toEqual([404, "not_found"])

      // Removal (with its data: the single file's torrent; the multi-file one keeps its folder).
      expect(errorCode(yield* request(base, "DELETE", "/api/v1/torrents/2?deleteData=maybe"))).toEqual([400, "bad_request"])
      const removed = yield* request(base, "DELETE", "/api/v1/torrents/2?deleteData=true")
      expect([removed.status, removed.body]).toEqual([204, undefined])
      expect((yield* request(base, "DELETE", "/api/v1/torrents/1")).status).toBe(204)
      expect(errorCode(yield* request(base, "GET", "/api/v1/torrents/1"))).toEqual([404, "unknown_torrent"])
      expect(errorCode(yield* request(base, "DELETE", "/api/v1/torrents/2"))).toEqual([404, "unknown_torrent"])
      expect((yield* request(base, "GET", "/api/v1/torrents")).body.torrents.map((t: { id: number }) => t.id)).toEqual([3])
    }).pipe(Effect.provide(NodeFileSystem.layer)), 60_000)

  it.scopedLive("the event stream: a snapshot, then the session's events as a magnet link downloads, stats; it ends when the daemon stops", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make({ link: { latency: "1 millis" } })
      const t = makeTorrent("stream.bin", 400_000, 11, 16 * 1024)
      yield* simSeeder(network, "127.4.30.1", t.info, t.payload, 90)
      const daemonScope = yield* Scope.make()
      const { base } = yield* Scope.extend(daemon(network), daemonScope)
      const events = yield* follow(`${base}/api/v1/events`)
      const snapshot = yield* events.next("snapshot", (f) => f.event === "snapshot")
      expect(snapshot.data).toMatchObject({ torrents: [], session: { version: "test", torrents: { total: 0 } } })
      const magnet = `magnet:?xt=urn:btih:${toHex(t.info.infoHash)}&dn=stream.bin&x.pe=127.4.30.1:6881`
      const added = yield* postJson(base, "/api/v1/torrents", { magnet })
      expect(added.status).toBe(201)
      expect((yield* events.next("Added", (f) => f.event === "Added")).data).toEqual({ id: 1, infoHash: toHex(t.info.infoHash), name: "stream.bin" })
      expect((yield* events.next("StateChanged", (f) => f.event === "StateChanged")).data).toMatchObject({ id: 1 })
      expect((yield* events.next("Completed", (f) => f.event === "Completed")).data).toEqual({ id: 1, name: "stream.bin" })
      const stats = yield* events.next("stats", (f) => f.event === "stats")
      expect(stats.data).toMatchObject({ torrents: { total: 1 } })
      expect((yield* request(base, "GET", "/api/v1/torrents/1")).body).toMatchObject({ progress: 1, sizes: { verified: 400_000 } })
      yield* request(base, "POST", "/api/v1/torrents/1/pause")
      expect((yield* events.next("paused", (f) => f.event === "StateChanged" && f.data.to === "paused")).data).toMatchObject({ id: 1 })
      yield* request(base, "DELETE", "/api/v1/torrents/1")
      expect((yield* events.next("Removed", (f) => f.event === "Removed")).data).toEqual({ id: 1, deletedData: false })
      // A second follower that hangs up leaves the first and the daemon as they were.
      yield* Effect.scoped(Effect.flatMap(follow(`${base}/api/v1/events`), (other) => other.next("snapshot", (f) => f.event === "snapshot")))
      expect((yield* request(base, "GET", "/api/v1/torrents")).body).toEqual({ torrents: [] })
      yield* Scope.close(daemonScope, Exit.void)
      expect(yield* events.ended()).toBe(true)
    }).pipe(Effect.provide(NodeFileSystem.layer)), 60_000)

  it.scopedLive("between events, stats and heartbeat comments come at their pace", () =>
    Effect.gen(function* () {
      const settings = yield* stubSettings
      const session = { list: Effect.succeed([]), port: undefined, subscribe: Effect.succeed(Stream.never) } as unknown as SessionService
      const frames = yield* eventFrames(session, settings, { statsEvery: "30 millis", heartbeatEvery: "20 millis", backlog: 8 }).pipe(
        Stream.takeUntil((frame) => frame.startsWith("event: stats")),
        Stream.runCollect,
        Effect.timeout("10 seconds")
      )
      const all = Chunk.toReadonlyArray(frames)
      expect(all[0]).toMatch(/^event: snapshot\ndata: \{"torrents":\[\],"session":\{"version":"test"/)
      expect(all).toContain(": heartbeat\n\n")
      expect(all[all.length - 1]).toMatch(/^event: stats\ndata: \{"version":"test".*\}\n\n$/)
    }))

  it.scoped("a follower that reads late gets the newest events, at most its backlog (and what is on its way)", () =>
    Effect.gen(function* () {
      const settings = yield* stubSettings
      const sent = yield* Deferred.make<void>()
      const many = Array.from({ length: 5_000 }, (_, i) => SessionEvent.Error({ id: 1, message: `e${i}` }))
      const events = Stream.fromIterable(many).pipe(Stream.rechunk(1), Stream.concat(Stream.drain(Stream.fromEffect(Deferred.succeed(sent, undefined)))))
      const session = { list: Effect.succeed([]), port: undefined, subscribe: Effect.succeed(events) } as unknown as SessionService
      const pull = yield* Stream.toPull(eventFrames(session, settings, { statsEvery: "1 hour", heartbeatEvery: "1 hour", backlog: 64 }))
      yield* pull // the stream starts on the first pull; then this reader waits until every event is out
      yield* Deferred.await(sent)
      const frames: Array<string> = []
      for (;;) {
        const chunk = yield* Effect.either(pull)
        if (chunk._tag === "Left") break
        frames.push(...Chunk.toReadonlyArray(chunk.right))
      }
      // The backlog, and at most what the merge of the event and tick streams holds (16) and one in hand.
      expect(frames.length).toBeLessThanOrEqual(64 + 17)
      expect(frames[frames.length - 1]).toContain('"message":"e4999"')
    }))
})

describe("web UI files", () => {
  it.scopedLive("serves the folder's files with their types, and nothing outside it", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const outside = yield* fs.makeTempDirectoryScoped({ prefix: "bt-web-" })
      const root = path.join(outside, "web")
      yield* fs.makeDirectory(path.join(root, "img"), { recursive: true })
      yield* fs.writeFileString(path.join(root, "index.html"), "<!doctype html><title>t</title>")
      yield* fs.writeFileString(path.join(root, "app.js"), "void 0")
      yield* fs.writeFileString(path.join(root, "img", "x.svg"), "<svg/>")
      yield* fs.writeFileString(path.join(outside, "secret.txt"), "secret")
      yield* fs.symlink(path.join(outside, "secret.txt"), path.join(root, "link.txt"))
      const address = yield* serve(webRoutes(root), { host: "127.0.0.1", port: 0 })
      const get = (p: string) => request(address.url, "GET", p)
      const index = yield* get("/web/")
      expect([index.status, index.type, index.body]).toEqual([200, "text/html; charset=utf-8", "<!doctype html><title>t</title>"])
      expect((yield* get("/web/app.js")).type).toBe("text/javascript; charset=utf-8")
      expect((yield* get("/web/img/x.svg")).status).toBe(200)
      expect((yield* get("/web/index.html")).status).toBe(200)
      for (const p of ["/web/../secret.txt", "/web/%2e%2e/secret.txt", "/web/img/..%2f..%2fsecret.txt", "/web/link.txt", "/web/missing.js", "/web/.hidden.js", "/web/img"]) {
        const reply = yield* get(p)
        expect(reply.status, p).toBe(404)
        expect(String(reply.body), p).not.toContain("secret")
      }
      const redirect = yield* Effect.promise(() => fetch(`${address.url}/web`, { redirect: "manual" }))
      expect([redirect.status, redirect.headers.get("location")]).toEqual([301, "/web/"])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
