/**
 * The daemon's JSON REST API under `/api/v1` (docs/api.md), its event stream and the web UI that
 * drives both. A torrent is named by the session's integer id or by its info hash. Every failure
 * is answered with a status and `{"error": {"code", "message"}}`: 400 for a bad body or argument,
 * 404 for an unknown torrent, 409 for a duplicate, 413 for a body over the server's bound, 415 for
 * a body of another type; a failure nobody expected is a 500 of the same shape, never a crash.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Clock, Data, Effect, Either, ParseResult, Ref, Schema } from "effect"
import * as path from "node:path"
import { filePriorities } from "../../domain/FileSelection.js"
import { fromBase64 } from "../../domain/Bytes.js"
import { applyFileChanges, parseFlag, parseTorrentRef } from "../../domain/RestApi.js"
import { type AddOptions, DuplicateTorrent, Session, TorrentInput } from "../Session.js"
import { DaemonSettings } from "./DaemonSettings.js"
import { boundedBody } from "./RequestBody.js"
import { eventStreamResponse } from "./RestEvents.js"
import { fileView, sessionView, torrentView } from "./RestViews.js"
import { webRoutes } from "./WebUi.js"

/** A request the API refuses, with the status and the code it answers with. */
export class RestError extends Data.TaggedError("RestError")<{
  readonly status: number
  readonly code: string
  readonly detail: string
  /** The torrent a duplicate is. */
  readonly torrentId?: number
}> {
  override get message() {
    return this.detail
  }
}

const refuse = (status: number, code: string, detail: string) => Effect.fail(new RestError({ status, code, detail }))

/** A typed error of the session as the API answers it; an error it does not know of is the server's fault. */
const restError = (e: { readonly _tag: string; readonly message: string }): RestError => {
  if (e instanceof RestError) return e
  if (e instanceof DuplicateTorrent) return new RestError({ status: 409, code: "duplicate_torrent", detail: e.message, torrentId: e.id })
  const as = (status: number, code: string) => new RestError({ status, code, detail: e.message })
  switch (e._tag) {
    case "UnknownTorrent":
      return as(404, "unknown_torrent")
    case "InvalidTorrentInput":
      return as(400, "invalid_torrent")
    case "FileSelectionError":
      return as(400, "invalid_file_selection")
    case "DataFilesError":
      return as(500, "data_files")
    default:
      return as(500, "internal")
  }
}

const errorResponse = (e: RestError) =>
  HttpServerResponse.unsafeJson(
    { error: { code: e.code, message: e.detail, ...(e.torrentId === undefined ? {} : { id: e.torrentId }) } },
    // The rest of a body too large is not read: the connection cannot carry another request.
    { status: e.status, ...(e.status === 413 ? { headers: { connection: "close" } } : {}) }
  )

/** Answers every failure of a handler in the API's shape (an interruption stays one: the client went). */
const handle = <E extends { readonly _tag: string; readonly message: string }, R>(
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  effect.pipe(
    Effect.catchAll((e) => {
      const refusal = restError(e)
      const response = Effect.succeed(errorResponse(refusal))
      return refusal.status >= 500 ? Effect.zipRight(Effect.logWarning(`daemon: REST request failed: ${refusal.detail}`), response) : response
    }),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : Effect.as(Effect.logWarning("daemon: a REST request failed", cause), errorResponse(new RestError({ status: 500, code: "internal", detail: "internal error" }))))
  )

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

/** The id of the torrent the path names (`:id`, an id or an info hash). */
const torrentId = Effect.gen(function* () {
  const text = (yield* HttpRouter.params)["id"] ?? ""
  const ref = parseTorrentRef(text)
  if (ref === undefined) return yield* refuse(400, "bad_torrent_id", `${JSON.stringify(text)} is neither a torrent id nor an info hash`)
  if (ref._tag === "Id") return ref.id
  const found = (yield* (yield* Session).list).find((t) => t.infoHash === ref.infoHash)
  return found?.id ?? (yield* refuse(404, "unknown_torrent", `no torrent with info hash ${ref.infoHash} in the session`))
})

const mediaType = (request: HttpServerRequest.HttpServerRequest) => (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()

/** The request's body, within the server's bound. */
const bodyBytes = boundedBody.pipe(
  Effect.catchTags({
    BodyTooLarge: (e) => Effect.fail(new RestError({ status: 413, code: "body_too_large", detail: e.message })),
    BodyUnreadable: (e) => Effect.fail(new RestError({ status: 400, code: "bad_body", detail: e.message }))
  })
)

/** The JSON body, decoded by `schema` (unknown keys refused, so that a misspelt one is not silently ignored). */
const jsonBody = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.gen(function* () {
    const type = mediaType(yield* HttpServerRequest.HttpServerRequest)
    if (type !== "application/json") return yield* refuse(415, "unsupported_media_type", `expected application/json, got ${type === "" ? "no Content-Type" : type}`)
    const bytes = yield* bodyBytes
    const parsed = Either.try(() => JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as unknown)
    if (Either.isLeft(parsed)) return yield* refuse(400, "bad_json", `the body is not JSON: ${String(parsed.left)}`)
    return yield* Schema.decodeUnknown(schema, { onExcessProperty: "error" })(parsed.right).pipe(
      Effect.mapError((e) => new RestError({ status: 400, code: "bad_request", detail: ParseResult.TreeFormatter.formatErrorSync(e) }))
    )
  })

const AddBody = Schema.Struct({
  magnet: Schema.optional(Schema.String),
  infoHash: Schema.optional(Schema.String),
  /** A .torrent file's bytes, base64. */
  metainfo: Schema.optional(Schema.String),
  paused: Schema.optional(Schema.Boolean),
  directory: Schema.optional(Schema.String)
})

const addOptions = (paused: boolean | undefined, directory: string | undefined): Effect.Effect<AddOptions, RestError> =>
  directory !== undefined && !path.isAbsolute(directory)
    ? refuse(400, "bad_request", `the directory must be an absolute path: ${JSON.stringify(directory)}`)
    : Effect.succeed({ ...(paused === undefined ? {} : { paused }), ...(directory === undefined ? {} : { directory }) })

/** What a JSON add names: exactly one of a magnet link, an info hash, a .torrent in base64. */
const jsonInput = (body: typeof AddBody.Type): Effect.Effect<TorrentInput, RestError> => {
  const given = [body.magnet, body.infoHash, body.metainfo].filter((x) => x !== undefined).length
  if (given !== 1) return refuse(400, "bad_request", "give exactly one of magnet, infoHash and metainfo")
  if (body.magnet !== undefined) return Effect.succeed(TorrentInput.Magnet({ uri: body.magnet }))
  if (body.infoHash !== undefined) return Effect.succeed(TorrentInput.InfoHash({ hex: body.infoHash }))
  const bytes = fromBase64(body.metainfo!)
  return bytes === undefined ? refuse(400, "bad_request", "metainfo is not base64") : Effect.succeed(TorrentInput.Metainfo({ bytes }))
}

/** An add's input and options: a JSON body, or a .torrent file's bytes as the body with the options in the query. */
const addRequest = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  if (mediaType(request) === "application/x-bittorrent") {
    const query = yield* HttpServerRequest.ParsedSearchParams
    const one = (key: string) => (typeof query[key] === "string" ? query[key] : undefined)
    const paused = parseFlag(one("paused"))
    if (paused === undefined) return yield* refuse(400, "bad_request", "paused must be true or false")
    return { input: TorrentInput.Metainfo({ bytes: yield* bodyBytes }), options: yield* addOptions(paused, one("directory")) }
  }
  const body = yield* jsonBody(AddBody)
  return { input: yield* jsonInput(body), options: yield* addOptions(body.paused, body.directory) }
})

const FileChangesBody = Schema.Struct({
  priorities: Schema.optional(Schema.Array(Schema.Struct({ index: Schema.Int, priority: Schema.Literal(...filePriorities) }))),
  wanted: Schema.optional(Schema.Array(Schema.Int)),
  unwanted: Schema.optional(Schema.Array(Schema.Int))
})

const oneTorrent = (id: number) => Effect.flatMap(Session, (session) => Effect.map(session.get(id), (t) => json(torrentView(t))))

const files = (id: number) => Effect.flatMap(Session, (session) => Effect.map(session.files(id), (fs) => json({ files: fs.map(fileView) })))

const changeFiles = Effect.gen(function* () {
  const session = yield* Session
  const id = yield* torrentId
  const changes = yield* jsonBody(FileChangesBody)
  const current = (yield* session.files(id)).map((f) => f.priority)
  if (current.length === 0) return yield* refuse(409, "metadata_pending", `torrent ${id}'s files are not known yet (its metadata has not arrived)`)
  yield* session.setFilePriorities(id, yield* applyFileChanges(current, changes))
  return yield* files(id)
})

/** A change to one torrent (pause, resume, verify), answered with the torrent as it is then. */
const action = <E extends { readonly _tag: string; readonly message: string }, R>(f: (id: number) => Effect.Effect<void, E, R>) =>
  handle(Effect.gen(function* () {
    const id = yield* torrentId
    yield* f(id)
    return yield* oneTorrent(id)
  }))

const withSession = <A, E, R>(f: (session: typeof Session.Service) => Effect.Effect<A, E, R>) => Effect.flatMap(Session, f)

const torrentRoutes = HttpRouter.empty.pipe(
  HttpRouter.get("/api/v1/torrents", handle(withSession((s) => Effect.map(s.list, (ts) => json({ torrents: ts.map(torrentView) }))))),
  HttpRouter.post("/api/v1/torrents", handle(Effect.gen(function* () {
    const { input, options } = yield* addRequest
    const session = yield* Session
    return json(torrentView(yield* session.get(yield* session.add(input, options))), 201)
  }))),
  HttpRouter.get("/api/v1/torrents/:id", handle(Effect.flatMap(torrentId, oneTorrent))),
  HttpRouter.del("/api/v1/torrents/:id", handle(Effect.gen(function* () {
    const id = yield* torrentId
    const deleteData = parseFlag((yield* HttpServerRequest.ParsedSearchParams)["deleteData"] as string | undefined)
    if (deleteData === undefined) return yield* refuse(400, "bad_request", "deleteData must be true or false")
    yield* (yield* Session).remove(id, { deleteData })
    return HttpServerResponse.empty({ status: 204 })
  }))),
  HttpRouter.post("/api/v1/torrents/:id/pause", action((id) => withSession((s) => s.pause(id)))),
  HttpRouter.post("/api/v1/torrents/:id/resume", action((id) => withSession((s) => s.resume(id)))),
  HttpRouter.post("/api/v1/torrents/:id/verify", action((id) => withSession((s) => s.verify(id)))),
  HttpRouter.get("/api/v1/torrents/:id/files", handle(Effect.flatMap(torrentId, files))),
  HttpRouter.put("/api/v1/torrents/:id/files", handle(changeFiles)),
  HttpRouter.post("/api/v1/torrents/:id/files", handle(changeFiles)),
  HttpRouter.get("/api/v1/torrents/:id/peers", handle(Effect.gen(function* () {
    const id = yield* torrentId
    return json({ peers: yield* (yield* Session).peers(id) })
  })))
)

const sessionRoutes = HttpRouter.empty.pipe(
  HttpRouter.get("/api/v1/session", handle(Effect.gen(function* () {
    const session = yield* Session
    const settings = yield* DaemonSettings
    const view = sessionView(yield* session.list, settings, yield* Ref.get(settings.downloadDirectory), session.port, yield* Clock.currentTimeMillis)
    return json(view)
  }))),
  HttpRouter.get("/api/v1/events", Effect.gen(function* () {
    return eventStreamResponse(yield* Session, yield* DaemonSettings)
  })),
  HttpRouter.all("/api/v1/*", handle(Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    return yield* refuse(404, "not_found", `no endpoint ${request.method} ${request.url.split("?")[0]}`)
  })))
)

/** The REST API, its event stream and the web UI: the routes `DaemonRoutes` adds. */
export const restRoutes = HttpRouter.concatAll(torrentRoutes, sessionRoutes, webRoutes())
