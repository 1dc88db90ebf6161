/**
 * The methods of Transmission's RPC we answer, over the session and the daemon's settings. Each
 * gives its answer's `arguments`, or fails with the message Transmission's `result` carries.
 * Ids that name no torrent are passed over, as Transmission does.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import { Deferred, Effect, Ref, Stream } from "effect"
import {
  applyFileChanges,
  asTable,
  decodeBase64,
  freeSpaceAnswer,
  hasFileChanges,
  type IdSelector,
  nextLimit,
  readFileChanges,
  readFlag,
  readFreeSpacePath,
  readIds,
  readNumber,
  readString,
  readStringList,
  RpcArgumentError,
  selects,
  toKBps
} from "../../domain/TransmissionRpc.js"
import type { QueueMove } from "../../domain/TorrentQueue.js"
import { type SessionService, type SessionTorrent, TorrentInput, type TorrentRateLimits } from "../Session.js"
import type { DaemonSettingsService } from "./DaemonSettings.js"
import { fileSystemSize } from "./FreeSpace.js"
import { fieldsOf, knownFields, torrentData } from "./TransmissionRpcFields.js"

export type Args = Readonly<Record<string, unknown>>

/** What every method may use. */
export interface RpcContext {
  readonly session: SessionService
  readonly settings: DaemonSettingsService
  readonly fs: FileSystem.FileSystem
  readonly http: HttpClient.HttpClient
  readonly sessionId: string
  /** The session-wide limits while they are off, kB/s: what turning them on again restores. */
  readonly remembered: { down: number; up: number }
}

export type Method = (args: Args, ctx: RpcContext) => Effect.Effect<Record<string, unknown>, { readonly message: string }>

const fail = (reason: string) => new RpcArgumentError({ reason })

/** The largest .torrent fetched from a URL, and how long the fetch may take. */
const maxFetchedBytes = 10 * 1024 * 1024
const fetchTimeout = "30 seconds"

const selected = (session: SessionService, selector: IdSelector) =>
  Effect.map(session.list, (list) =>
    list.filter((t) => selects(selector, t) && (selector._tag !== "RecentlyActive" || recentlyActive(t))))

const recentlyActive = (t: SessionTorrent) =>
  t.downloadRate > 0 || t.uploadRate > 0 || t.status === "downloading" || t.status === "checking" || t.status === "metadata"

/** Runs `f` on every torrent `ids` names (a torrent removed meanwhile is passed over). */
const eachTorrent = <E extends { readonly _tag: string; readonly message: string }>(
  args: Args,
  ctx: RpcContext,
  f: (t: SessionTorrent) => Effect.Effect<void, E>
) =>
  Effect.gen(function* () {
    const torrents = yield* selected(ctx.session, yield* readIds(args["ids"]))
    yield* Effect.forEach(torrents, (t) => Effect.catchIf(f(t), (e) => e._tag === "UnknownTorrent", () => Effect.void), { discard: true })
    return {}
  })

/** A .torrent over HTTP(S): the URL given and nothing else (no redirect), bounded in size and time. */
const fetchTorrent = (http: HttpClient.HttpClient, url: string) =>
  Effect.gen(function* () {
    const response = yield* HttpClient.filterStatusOk(http).get(url)
    const chunks: Array<Uint8Array> = []
    let size = 0
    yield* response.stream.pipe(
      Stream.runForEach((chunk) => {
        size += chunk.length
        chunks.push(chunk)
        return size > maxFetchedBytes ? Effect.fail(fail(`${url}: more than ${maxFetchedBytes} bytes`)) : Effect.void
      })
    )
    return Buffer.concat(chunks)
  }).pipe(
    Effect.timeoutFail({ duration: fetchTimeout, onTimeout: () => fail(`${url}: no torrent within ${fetchTimeout}`) }),
    Effect.catchTags({
      RequestError: (e) => Effect.fail(fail(`cannot fetch ${url}: ${e.message}`)),
      ResponseError: (e) => Effect.fail(fail(`cannot fetch ${url}: HTTP ${e.response.status}`))
    })
  )

/** What `filename` names: a magnet link, an info hash, a URL, or a .torrent on the daemon's host. */
const inputOf = (filename: string, ctx: RpcContext): Effect.Effect<TorrentInput, RpcArgumentError> => {
  if (filename.startsWith("magnet:")) return Effect.succeed(TorrentInput.Magnet({ uri: filename }))
  if (/^[0-9a-f]{40}$/i.test(filename)) return Effect.succeed(TorrentInput.InfoHash({ hex: filename.toLowerCase() }))
  if (/^https?:\/\//i.test(filename)) return Effect.map(fetchTorrent(ctx.http, filename), (bytes) => TorrentInput.Metainfo({ bytes }))
  return ctx.fs.readFile(filename).pipe(
    Effect.map((bytes) => TorrentInput.Metainfo({ bytes })),
    Effect.mapError((e) => fail(`cannot read ${filename}: ${e.message}`))
  )
}

const torrentAdd: Method = (args, ctx) =>
  Effect.gen(function* () {
    const metainfo = yield* readString(args, "metainfo")
    const filename = yield* readString(args, "filename")
    const paused = yield* readFlag(args, "paused")
    const directory = (yield* readString(args, "download-dir")) ?? (yield* Ref.get(ctx.settings.downloadDirectory))
    const input = metainfo !== undefined
      ? TorrentInput.Metainfo({ bytes: yield* decodeBase64(metainfo) })
      : filename !== undefined
      ? yield* inputOf(filename, ctx)
      : yield* fail("no filename or metainfo specified")
    const added = yield* ctx.session.add(input, { directory, ...(paused === undefined ? {} : { paused }) }).pipe(
      Effect.map((id) => ({ id, key: "torrent-added" })),
      Effect.catchTags({
        DuplicateTorrent: (e) => Effect.succeed({ id: e.id, key: "torrent-duplicate" }),
        InvalidTorrentInput: (e) => Effect.fail(fail(`invalid or corrupt torrent file: ${e.detail}`))
      })
    )
    const t = yield* ctx.session.get(added.id)
    return { [added.key]: { id: t.id, name: t.name ?? t.infoHash, hashString: t.infoHash } }
  })

/** Each torrent's own limits, by id. */
const limitsById = (session: SessionService) =>
  Effect.map(session.records, (records) => new Map<number, TorrentRateLimits>(records.map((r) => [r.id, r.options.rateLimits ?? {}])))

const torrentGet: Method = (args, ctx) =>
  Effect.gen(function* () {
    const asked = yield* readStringList(args, "fields")
    if (asked === undefined) return yield* fail("no fields specified")
    const format = (yield* readString(args, "format")) ?? "objects"
    if (format !== "objects" && format !== "table") return yield* fail(`format ${JSON.stringify(format)} is not objects or table`)
    const selector = yield* readIds(args["ids"])
    const fields = knownFields(asked)
    const limits = yield* limitsById(ctx.session)
    const gathered = yield* Effect.forEach(yield* selected(ctx.session, selector), (t) =>
      torrentData(ctx.session, t, fields, limits.get(t.id) ?? {}).pipe(Effect.option))
    const torrents = gathered.flatMap((d) => (d._tag === "Some" ? [fieldsOf(d.value, fields)] : []))
    return {
      torrents: format === "table" ? asTable(fields, torrents) : torrents,
      ...(selector._tag === "RecentlyActive" ? { removed: [] } : {})
    }
  })

const torrentSet: Method = (args, ctx) =>
  Effect.gen(function* () {
    const changes = yield* readFileChanges(args)
    const down = { kBps: yield* readNumber(args, "downloadLimit"), limited: yield* readFlag(args, "downloadLimited") }
    const up = { kBps: yield* readNumber(args, "uploadLimit"), limited: yield* readFlag(args, "uploadLimited") }
    const limitsChange = [down.kBps, down.limited, up.kBps, up.limited].some((v) => v !== undefined)
    const limits = yield* limitsById(ctx.session)
    return yield* eachTorrent(args, ctx, (t) =>
      Effect.gen(function* () {
        if (hasFileChanges(changes)) {
          const files = yield* ctx.session.files(t.id)
          if (files.length === 0) return yield* fail(`torrent ${t.id}: its files are not known yet (no metadata)`)
          const next = yield* applyFileChanges(files.map((f) => f.priority), changes)
          yield* ctx.session.setFilePriorities(t.id, next)
        }
        if (!limitsChange) return
        const current = limits.get(t.id) ?? {}
        yield* ctx.session.setRateLimits(t.id, {
          download: nextLimit(current.download || undefined, down.kBps, down.limited),
          upload: nextLimit(current.upload || undefined, up.kBps, up.limited)
        })
      }))
  })

const torrentSetLocation: Method = (args, ctx) =>
  Effect.gen(function* () {
    const location = yield* readString(args, "location")
    if (location === undefined) return yield* fail("no location specified")
    return yield* eachTorrent(args, ctx, (t) => ctx.session.move(t.id, location))
  })

const torrentRemove: Method = (args, ctx) =>
  Effect.flatMap(readFlag(args, "delete-local-data"), (deleteData) =>
    eachTorrent(args, ctx, (t) => ctx.session.remove(t.id, { deleteData: deleteData === true })))

/** The session-wide limits as Transmission shows them: a value in kB/s and whether it is on. */
const sessionLimits = (ctx: RpcContext) => {
  const { download, upload } = ctx.settings.limits
  return {
    "speed-limit-down": download.limited ? toKBps(download.bytesPerSecond) : ctx.remembered.down,
    "speed-limit-down-enabled": download.limited,
    "speed-limit-up": upload.limited ? toKBps(upload.bytesPerSecond) : ctx.remembered.up,
    "speed-limit-up-enabled": upload.limited
  }
}

/** Transmission's words for our encryption policies. */
const encryptionName = (policy: string) => (policy === "require" ? "required" : policy === "prefer" ? "preferred" : "tolerated")

const sessionGet: Method = (_, ctx) =>
  Effect.gen(function* () {
    return {
      ...sessionLimits(ctx),
      "alt-speed-enabled": false,
      "alt-speed-down": 50,
      "alt-speed-up": 50,
      "alt-speed-time-enabled": false,
      "alt-speed-time-begin": 540,
      "alt-speed-time-end": 1020,
      "alt-speed-time-day": 127,
      "download-dir": yield* Ref.get(ctx.settings.downloadDirectory),
      "peer-limit-global": ctx.settings.session.maxConnections,
      "peer-limit-per-torrent": ctx.settings.session.maxPeersPerTorrent,
      "dht-enabled": ctx.settings.session.dht,
      "pex-enabled": true,
      "utp-enabled": true,
      "port-forwarding-enabled": false,
      encryption: encryptionName(ctx.settings.session.encryption),
      "peer-port": ctx.session.port ?? 0,
      "rpc-version": 16,
      "rpc-version-minimum": 1,
      "seedRatioLimit": 2,
      "seedRatioLimited": false,
      "session-id": ctx.sessionId,
      "start-added-torrents": true,
      version: `${ctx.settings.version} (effect-bittorrent)`,
      units: {
        "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
        "speed-bytes": 1000,
        "size-units": ["kB", "MB", "GB", "TB"],
        "size-bytes": 1000,
        "memory-units": ["KiB", "MiB", "GiB", "TiB"],
        "memory-bytes": 1024
      }
    }
  })

const sessionSet: Method = (args, ctx) =>
  Effect.gen(function* () {
    const directory = yield* readString(args, "download-dir")
    const apply = (limiter: DaemonSettingsService["limits"]["download"], key: "down" | "up", kBps: number | undefined, on: boolean | undefined) => {
      if (kBps !== undefined) ctx.remembered[key] = kBps
      const enabled = on ?? limiter.limited
      limiter.set(enabled ? ctx.remembered[key] * 1000 : undefined)
    }
    const down = [yield* readNumber(args, "speed-limit-down"), yield* readFlag(args, "speed-limit-down-enabled")] as const
    const up = [yield* readNumber(args, "speed-limit-up"), yield* readFlag(args, "speed-limit-up-enabled")] as const
    if (down.some((v) => v !== undefined)) apply(ctx.settings.limits.download, "down", ...down)
    if (up.some((v) => v !== undefined)) apply(ctx.settings.limits.upload, "up", ...up)
    if (directory !== undefined) yield* Ref.set(ctx.settings.downloadDirectory, directory)
    return {}
  })

const sessionStats: Method = (_, ctx) =>
  Effect.gen(function* () {
    const list = yield* ctx.session.list
    const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const sum = (f: (t: SessionTorrent) => number) => Math.round(list.reduce((n, t) => n + f(t), 0))
    const stats = {
      uploadedBytes: sum((t) => t.uploadedBytes),
      downloadedBytes: sum((t) => t.downloadedBytes),
      filesAdded: list.length,
      sessionCount: 1,
      secondsActive: Math.floor((now - ctx.settings.startedAtMs) / 1000)
    }
    const paused = list.filter((t) => t.status === "paused" || t.status === "finished").length
    return {
      torrentCount: list.length,
      activeTorrentCount: list.length - paused,
      pausedTorrentCount: paused,
      downloadSpeed: sum((t) => t.downloadRate),
      uploadSpeed: sum((t) => t.uploadRate),
      "current-stats": stats,
      // Not kept across restarts: the totals are this run's.
      "cumulative-stats": stats
    }
  })

const start: Method = (args, ctx) => eachTorrent(args, ctx, (t) => ctx.session.resume(t.id))

/** `queue-move-top` and the like: the torrents `ids` names, moved together. */
const queueMove = (move: QueueMove): Method => (args, ctx) =>
  Effect.gen(function* () {
    const torrents = yield* selected(ctx.session, yield* readIds(args["ids"]))
    yield* ctx.session.moveInQueue(torrents.map((t) => t.id), move)
    return {}
  })

const freeSpace: Method = (args) =>
  Effect.gen(function* () {
    const path = yield* readFreeSpacePath(args)
    return freeSpaceAnswer(path, yield* fileSystemSize(path))
  })

/** Answered first: the daemon shuts down once the answer has had time to leave. */
const sessionClose: Method = (_, ctx) => Effect.as(Deferred.succeed(ctx.settings.closeRequested, undefined), {})

export const methods: Readonly<Record<string, Method>> = {
  "torrent-add": torrentAdd,
  "torrent-get": torrentGet,
  "torrent-set": torrentSet,
  "torrent-set-location": torrentSetLocation,
  "torrent-start": start,
  "torrent-start-now": start,
  "torrent-stop": (args, ctx) => eachTorrent(args, ctx, (t) => ctx.session.pause(t.id)),
  "torrent-verify": (args, ctx) => eachTorrent(args, ctx, (t) => ctx.session.verify(t.id)),
  "torrent-remove": torrentRemove,
  "session-get": sessionGet,
  "session-set": sessionSet,
  "session-stats": sessionStats,
  "session-close": sessionClose,
  "free-space": freeSpace,
  "queue-move-top": queueMove("top"),
  "queue-move-up": queueMove("up"),
  "queue-move-down": queueMove("down"),
  "queue-move-bottom": queueMove("bottom")
}
