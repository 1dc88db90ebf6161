/**
 * Transmission's RPC at `POST /transmission/rpc`, so that `transmission-remote` and the tools
 * built on it drive the daemon. A client first gets 409 with the `X-Transmission-Session-Id` it
 * must send back (a page of another site cannot read that header, so it cannot forge requests);
 * then each JSON request `{method, arguments, tag}` is answered `{result, arguments, tag}`, with
 * `result` "success" or what went wrong. A body that is not JSON is a 400, one too large a 413.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Either, Layer, Option } from "effect"
import { decodeRequest, toKBps } from "../../domain/TransmissionRpc.js"
import { Session } from "../Session.js"
import { DaemonSettings, type DaemonSettingsService } from "./DaemonSettings.js"
import { boundedBody } from "./RequestBody.js"
import { methods, type RpcContext } from "./TransmissionRpcMethods.js"

export const rpcPath = "/transmission/rpc"
const sessionIdHeader = "x-transmission-session-id"

/** Per daemon (its settings stand for it): the session id and the limits remembered while off. */
const states = new WeakMap<DaemonSettingsService, Pick<RpcContext, "sessionId" | "remembered">>()

const stateOf = (settings: DaemonSettingsService) => {
  let state = states.get(settings)
  if (state === undefined) {
    const id = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url")
    // Transmission's default limit, 100 kB/s, until one is set.
    const remembered = (rate: number | undefined) => (rate === undefined ? 100 : toKBps(rate))
    state = { sessionId: id, remembered: { down: remembered(settings.limits.download.bytesPerSecond), up: remembered(settings.limits.upload.bytesPerSecond) } }
    states.set(settings, state)
  }
  return state
}

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(`${status}: ${body}\n`, { status, headers })

const answer = (result: string, args: Record<string, unknown>, tag: unknown) =>
  HttpServerResponse.unsafeJson({ result, arguments: args, ...(tag === undefined ? {} : { tag }) })

/** No redirect is followed: only the URL the user gave is fetched. */
const fetchClient = FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.RequestInit, { redirect: "manual" })))

/** A body of a declared length is read to its end and dropped (the client can read the answer once it is sent); one without is cut off. */
const tooLarge = (declared: boolean) => text(413, "Payload Too Large", declared ? {} : { connection: "close" })

/** The body as text, or the response that refuses it. */
const readBody = boundedBody.pipe(
  Effect.map((bytes): Either.Either<string, HttpServerResponse.HttpServerResponse> => Either.right(Buffer.from(bytes).toString("utf8"))),
  Effect.catchTags({
    BodyTooLarge: (e) => Effect.succeed(Either.left(tooLarge(e.declared))),
    BodyUnreadable: () => Effect.succeed(Either.left(text(400, "Bad Request: the body could not be read")))
  })
)

const handle = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const settings = yield* DaemonSettings
  const state = stateOf(settings)
  if (request.headers[sessionIdHeader] !== state.sessionId) {
    return text(409, "Conflict: your request had an invalid session-id header; send the one this answer carries", {
      "X-Transmission-Session-Id": state.sessionId
    })
  }
  const body = yield* readBody
  if (Either.isLeft(body)) return body.left
  const json = Either.try(() => JSON.parse(body.right) as unknown)
  if (Either.isLeft(json)) return text(400, "Bad Request: the body is not JSON")
  const decoded = decodeRequest(json.right)
  if (Either.isLeft(decoded)) return answer(decoded.left.message, {}, (json.right as { tag?: unknown } | null)?.tag)
  const { method, arguments: args, tag } = decoded.right
  const run = methods[method]
  if (run === undefined) return answer("method name not recognized", {}, tag)
  const http = yield* Effect.serviceOption(HttpClient.HttpClient)
  const ctx: RpcContext = {
    session: yield* Session,
    settings,
    fs: yield* FileSystem.FileSystem,
    http: Option.isSome(http) ? http.value : yield* Effect.provide(HttpClient.HttpClient, fetchClient),
    ...state
  }
  return yield* run(args, ctx).pipe(
    Effect.match({ onSuccess: (result) => answer("success", result, tag), onFailure: (e) => answer(e.message, {}, tag) })
  )
})

export const transmissionRpc = HttpRouter.empty.pipe(HttpRouter.post(rpcPath, handle))
