/**
 * The daemon's HTTP server: one listener for every front end (Transmission RPC, the REST API and
 * its event stream, the web UI, file streaming, metrics), each a router of its own, behind one
 * guard: the `Host` header against an allowlist, optional HTTP Basic auth, a bound on request
 * bodies. A request that fails in a way no route expected gets a 500; the server goes on.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Data, Effect, Option, type Scope } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import { authorized, type Credentials, hostAllowed } from "../../domain/HttpAccess.js"
import { describeOsError } from "../../domain/OsError.js"

export interface DaemonHttpOptions {
  readonly host: string
  /** 0: any free port. */
  readonly port: number
  /** Basic auth for every route; absent: none. */
  readonly credentials?: Credentials
  /** Host names served besides IP literals and localhost (a name the daemon is reached by). */
  readonly allowedHosts?: ReadonlyArray<string>
  /** The largest request body taken (default 16 MiB: a .torrent in base64 fits). */
  readonly maxBodyBytes?: number
}

export interface DaemonAddress {
  readonly host: string
  readonly port: number
  /** `http://host:port`. */
  readonly url: string
}

/** The daemon could not listen where it was told. */
export class DaemonListenError extends Data.TaggedError("DaemonListenError")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message() {
    return `cannot serve the daemon's API on ${this.host}:${this.port}: ${describeOsError(this.cause)}`
  }
}

const defaultMaxBodyBytes = 16 * 1024 * 1024

const realm = 'Basic realm="effect-bittorrent", charset="UTF-8"'

/** Refuses what the guard refuses before any route sees it. */
const guard = (options: DaemonHttpOptions) =>
  HttpMiddleware.make((app) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (!hostAllowed(request.headers["host"], options.allowedHosts ?? [])) {
        // Transmission's answer to a name not on its list.
        return HttpServerResponse.text("421: Misdirected Request: this Host is not allowed (see --rpc-allowed-hosts)\n", { status: 421 })
      }
      const credentials = options.credentials
      if (credentials !== undefined && !authorized(request.headers["authorization"], credentials)) {
        return HttpServerResponse.text("401: Unauthorized\n", { status: 401, headers: { "www-authenticate": realm } })
      }
      return yield* app
    }))

/** What no route answered, or a failure no route handled: the server answers and goes on. */
const fallback = <E, R>(app: HttpApp.Default<E, R>) =>
  app.pipe(
    Effect.catchIf(
      (e) => e instanceof HttpServerError.RouteNotFound,
      () => Effect.succeed(HttpServerResponse.text("404: Not Found\n", { status: 404 }))
    ),
    Effect.catchAllCause((cause) =>
      Effect.as(Effect.logWarning("daemon: a request failed", cause), HttpServerResponse.text("500: Internal Server Error\n", { status: 500 })))
  )

/** Serves `router` in the current scope until it closes. */
export const serve = <E, R>(
  router: HttpRouter.HttpRouter<E, R>,
  options: DaemonHttpOptions
): Effect.Effect<DaemonAddress, DaemonListenError, Exclude<Exclude<R, HttpRouter.RouteContext>, HttpServerRequest.HttpServerRequest> | Scope.Scope> =>
  Effect.gen(function* () {
    const nodeServer = Http.createServer()
    const server = yield* NodeHttpServer.make(() => nodeServer, { host: options.host, port: options.port }).pipe(
      Effect.mapError((e) => new DaemonListenError({ host: options.host, port: options.port, cause: e.cause }))
    )
    // server.close() waits for open keep-alive connections (an SSE follower keeps one forever).
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
    const app = fallback(guard(options)(router)).pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(options.maxBodyBytes ?? defaultMaxBodyBytes))
    )
    yield* server.serve(app)
    const port = server.address._tag === "TcpAddress" ? server.address.port : options.port
    return { host: options.host, port, url: `http://${Net.isIPv6(options.host) ? `[${options.host}]` : options.host}:${port}` }
  })
