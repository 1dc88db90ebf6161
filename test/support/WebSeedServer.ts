/**
 * An HTTP server on 127.0.0.1:0 that serves files with Range support (a web seed, BEP 19), as a
 * scoped resource. It can lie (every byte it serves flipped), answer one status to everything,
 * redirect, or wait before each answer; it counts the requests and the body bytes it sent.
 */
import { Effect, type Scope } from "effect"
import * as Http from "node:http"
import { scopedHttpServer } from "./ScopedHttpServer.js"

export interface WebSeedServerOptions {
  /** URL path (as requested, percent-encoded) -> content. */
  readonly files: Readonly<Record<string, Uint8Array>>
  /** Flip every byte served. */
  readonly lie?: boolean
  /** Answer every request with this status and no file. */
  readonly status?: number
  /** Wait this long (ms) before each answer. */
  readonly delayMillis?: number
  /** URL path -> where a 302 sends it. */
  readonly redirects?: Readonly<Record<string, string>>
}

export interface WebSeedServer {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string
  readonly requests: () => number
  readonly bytesServed: () => number
}

const rangeOf = (header: string | undefined, size: number) => {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header ?? "")
  if (m === null) return undefined
  const first = Number(m[1])
  const last = m[2] === "" ? size - 1 : Math.min(size - 1, Number(m[2]))
  return first <= last ? { first, last } : "unsatisfiable"
}

export const webSeedServer = (options: WebSeedServerOptions): Effect.Effect<WebSeedServer, never, Scope.Scope> =>
  Effect.gen(function* () {
    let requests = 0
    let bytesServed = 0
    const answer = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      const urlPath = (req.url ?? "").split("?")[0]!
      const location = options.redirects?.[urlPath]
      if (location !== undefined) {
        res.writeHead(302, { location })
        return res.end()
      }
      const file = options.files[urlPath]
      if (options.status !== undefined || file === undefined) {
        res.writeHead(options.status ?? 404, { "content-type": "text/plain" })
        return res.end("no such file")
      }
      const range = rangeOf(req.headers.range, file.length)
      if (range === "unsatisfiable") {
        res.writeHead(416, { "content-range": `bytes */${file.length}` })
        return res.end()
      }
      const body = range === undefined ? file : file.subarray(range.first, range.last + 1)
      const sent = options.lie === true ? body.map((b) => b ^ 0xff) : body
      res.writeHead(range === undefined ? 200 : 206, {
        "content-length": sent.length,
        ...(range === undefined ? {} : { "content-range": `bytes ${range.first}-${range.last}/${file.length}` })
      })
      bytesServed += sent.length
      res.end(sent)
    }
    const { port } = yield* scopedHttpServer((req, res) => {
      requests++
      if (options.delayMillis === undefined) answer(req, res)
      else setTimeout(() => answer(req, res), options.delayMillis)
    })
    return { origin: `http://127.0.0.1:${port}`, requests: () => requests, bytesServed: () => bytesServed }
  })
