/**
 * An HTTP server on 127.0.0.1 at a free port for the life of a scope, for the fake trackers and
 * web seeds of the tests.
 */
import { Effect, type Scope } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** Listens with `handler`; the scope's end closes every connection (keep-alive and hanging ones
 * would hold `close()` open), then the server. */
export const scopedHttpServer = (handler: Http.RequestListener): Effect.Effect<{ readonly port: number }, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer(handler)
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    ),
    (server) => ({ port: (server.address() as AddressInfo).port })
  )
