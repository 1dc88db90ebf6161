/**
 * `GET /stream/<info hash or id>/<file index>`: a torrent's file over HTTP while it downloads, for
 * a video player or a browser. Range requests (one range) get a 206, others the whole file; every
 * answer says `Accept-Ranges: bytes`, the file's media type and an inline disposition with its
 * name. HEAD gets the same headers and no body. The URL names a torrent and a file index, never a
 * path: a segment that is not one is a 400, a torrent or file the session lacks a 404, a skipped
 * file a 409, a magnet link whose metadata does not come in time a 503.
 *
 * The body is the session's `fileStream`, pulled as the client takes it (its window moves with
 * the bytes sent). Headers go out first; a stream that fails later (the torrent removed or paused
 * with data missing) ends the response short of its Content-Length, which players report as such.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Stream } from "effect"
import { contentRange, parseRange, unsatisfiedRange } from "../../domain/HttpRange.js"
import { contentTypeOf, inlineDisposition } from "../../domain/MediaType.js"
import { parseStreamTarget, type TorrentRef } from "../../domain/StreamTarget.js"
import { Session, type SessionService, type StreamableFile } from "../Session.js"

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(`${status}: ${body}\n`, { status, headers })

const notFound = text(404, "Not Found: no such torrent")

/** The session id the reference names (an info hash the session lacks names none). */
const resolve = (session: SessionService, ref: TorrentRef): Effect.Effect<number | undefined> =>
  ref._tag === "Id"
    ? Effect.succeed(ref.id)
    : Effect.map(session.list, (list) => list.find((t) => t.infoHash === ref.hex)?.id)

/** The answer for a file the session can stream, given the request's Range. */
const answer = (session: SessionService, id: number, file: StreamableFile, request: HttpServerRequest.HttpServerRequest) => {
  const name = file.path.slice(file.path.lastIndexOf("/") + 1)
  const headers = {
    "accept-ranges": "bytes",
    "content-disposition": inlineDisposition(name),
    "cache-control": "no-store",
    // A torrent's bytes are anyone's: never sniffed into a page, and a page among them runs
    // sandboxed (no script, no access to this origin's API), whatever a browser makes of it.
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox"
  }
  // Without validators of ours an If-Range never matches: the whole file, as the rules ask.
  const range = parseRange(request.headers["if-range"] === undefined ? request.headers["range"] : undefined, file.length)
  if (range._tag === "Unsatisfiable") return text(416, "Range Not Satisfiable", { ...headers, "content-range": unsatisfiedRange(file.length) })
  const [start, end] = range._tag === "Partial" ? [range.start, range.end] : [0, file.length - 1]
  const length = end - start + 1
  const partial = range._tag === "Partial" ? { "content-range": contentRange(start, end, file.length) } : {}
  const status = range._tag === "Partial" ? 206 : 200
  const contentType = contentTypeOf(name)
  if (request.method === "HEAD" || length === 0) {
    return HttpServerResponse.empty({ status, headers: { ...headers, ...partial, "content-type": contentType, "content-length": String(length) } })
  }
  const body = session.fileStream(id, file.index, { start, end }).pipe(
    Stream.tapError((e) => Effect.logWarning(`stream of torrent ${id} file ${file.index} ended early: ${e.message}`))
  )
  return HttpServerResponse.stream(body, { status, headers: { ...headers, ...partial }, contentType, contentLength: length })
}

const streamFile = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const params = yield* HttpRouter.params
  const target = parseStreamTarget(params["torrent"], params["file"])
  if (target === undefined) return text(400, "Bad Request: /stream/<info hash or id>/<file index>")
  const session = yield* Session
  const id = yield* resolve(session, target.torrent)
  if (id === undefined) return notFound
  return yield* session.streamableFile(id, target.fileIndex).pipe(
    Effect.map((file) => answer(session, id, file, request)),
    Effect.catchTags({
      UnknownTorrent: () => Effect.succeed(notFound),
      FileStreamError: (e) =>
        Effect.succeed(
          e.reason === "NoSuchFile"
            ? text(404, `Not Found: ${e.detail}`)
            : e.reason === "FileSkipped"
            ? text(409, `Conflict: ${e.detail}`)
            : text(503, `Service Unavailable: ${e.detail}`, { "retry-after": "5" })
        )
    })
  )
})

export const streamRoutes = HttpRouter.empty.pipe(HttpRouter.get("/stream/:torrent/:file", streamFile))
