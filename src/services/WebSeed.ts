/**
 * The WebSeed service: fetches ranges of a torrent's payload from a web seed (BEP 19), a plain
 * HTTP server holding the torrent's files, with Range requests (one per file the range covers;
 * the URL rules are in src/domain/WebSeedUrl.ts).
 *
 * - Redirects are followed, at most `maxRedirects` of them; the HTTP client must hand 3xx answers
 *   back rather than follow them itself (fetch's `redirect: "manual"`), or its own bound applies.
 * - A request whose answer or next body chunk takes longer than `stallTimeout` fails as stalled.
 * - A body is read into a buffer of the length asked for, never more: a longer body is an error,
 *   and so is a shorter one. A server that ignores Range (200 and the whole file) is read past at
 *   most `maxSkipBytes` before the range, then the rest of its answer is left unread.
 * - 404, 408, 429, 5xx, unreachable and stalled requests are retried on `retry`; once it gives
 *   up, the last error comes out (the caller then drops the web seed).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Context, Data, Duration, Effect, Layer, Schedule, Stream } from "effect"
import { concatBytes } from "../domain/Bytes.js"
import type { Info } from "../domain/Metainfo.js"
import { isPadding } from "../domain/Padding.js"
import { type WebSeedRequest, webSeedRequests } from "../domain/WebSeedUrl.js"

export type WebSeedErrorReason = "Status" | "Unreachable" | "Stalled" | "TooManyRedirects" | "RangeIgnored" | "BodyLength"

export class WebSeedError extends Data.TaggedError("WebSeedError")<{
  /** The URL requested (a file's URL under the web seed's). */
  readonly url: string
  readonly reason: WebSeedErrorReason
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    const status = this.status === undefined ? "" : `HTTP ${this.status}: `
    return `web seed ${this.url}: ${status}${this.detail}`
  }

  /** Whether trying again later may work: a missing file may appear (a mirror syncing), a busy server recover. */
  get transient(): boolean {
    if (this.reason === "Unreachable" || this.reason === "Stalled") return true
    const s = this.status ?? 0
    return this.reason === "Status" && (s === 404 || s === 408 || s === 429 || s >= 500)
  }
}

export interface WebSeedOptions {
  /** Redirects followed per request (default 5). */
  readonly maxRedirects?: number
  /** How long the answer, and then each body chunk, may take (default 20 s). */
  readonly stallTimeout?: Duration.DurationInput
  /** Retries of transient failures (default: 3, exponential from 500 ms with jitter). */
  readonly retry?: Schedule.Schedule<unknown, WebSeedError>
  /** Bytes before the range a server that ignores Range may make us read and drop (default 1 MiB). */
  readonly maxSkipBytes?: number
}

export const defaultWebSeedRetry: Schedule.Schedule<unknown, WebSeedError> = Schedule.exponential("500 millis", 2).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3))
)

export interface WebSeedClient {
  /**
   * Payload bytes `[offset, offset + length)` of `info`'s torrent from the web seed at `seed`:
   * one request per file the range covers, each retried on transient failures.
   */
  readonly fetch: (seed: string, info: Info, offset: number, length: number) => Effect.Effect<Uint8Array, WebSeedError>
}

const fail = (url: string, reason: WebSeedErrorReason, detail: string, status?: number, cause?: unknown) =>
  new WebSeedError({ url, reason, status, detail, ...(cause === undefined ? {} : { cause }) })

/** `Content-Range: bytes <first>-<last>/<size>`: its first byte, or undefined when it does not parse. */
const contentRangeStart = (header: string | undefined): number | undefined => {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? "")
  return m === null ? undefined : Number(m[1])
}

/**
 * Reads `length` body bytes after dropping the first `skip`, into one buffer. With `exact`, more
 * body than that is an error (a 206 must be the range); else the rest is left unread.
 */
const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  url: string,
  skip: number,
  length: number,
  exact: boolean,
  stall: Duration.Duration
): Effect.Effect<Uint8Array, WebSeedError> => {
  const out = new Uint8Array(length)
  let seen = 0
  let filled = 0
  const take = (chunk: Uint8Array): Effect.Effect<boolean, WebSeedError> => {
    const from = Math.max(0, skip - seen)
    seen += chunk.length
    const part = chunk.subarray(from, from + (length - filled))
    out.set(part, filled)
    filled += part.length
    if (exact && from + part.length < chunk.length) {
      return Effect.fail(fail(url, "BodyLength", `the body is longer than the ${length} bytes asked for`, response.status))
    }
    return Effect.succeed(filled < length || exact)
  }
  return response.stream.pipe(
    Stream.mapError((cause) => fail(url, "Unreachable", "the body broke off", response.status, cause)),
    Stream.timeoutFail(() => fail(url, "Stalled", `no data for ${Duration.format(stall)}`, response.status), stall),
    Stream.runForEachWhile(take),
    Effect.filterOrFail(
      () => filled === length,
      () => fail(url, "BodyLength", `the body ended after ${filled} of the ${length} bytes asked for`, response.status)
    ),
    Effect.as(out)
  )
}

export const make = (options: WebSeedOptions = {}): Effect.Effect<WebSeedClient, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const maxRedirects = options.maxRedirects ?? 5
    const stall = Duration.decode(options.stallTimeout ?? "20 seconds")
    const maxSkip = options.maxSkipBytes ?? 1024 * 1024
    const retry = options.retry ?? defaultWebSeedRetry
    const http = (yield* HttpClient.HttpClient).pipe(HttpClient.followRedirects(maxRedirects))

    const unreachable = (url: string) => (e: HttpClientError.HttpClientError) =>
      fail(url, "Unreachable", e.reason === "Transport" ? `cannot connect (${transportProblem(e.cause)})` : e.message, undefined, e)

    const fetchOne = (r: WebSeedRequest): Effect.Effect<Uint8Array, WebSeedError> =>
      Effect.gen(function* () {
        const last = r.fileOffset + r.length - 1
        const request = HttpClientRequest.get(r.url).pipe(HttpClientRequest.setHeader("range", `bytes=${r.fileOffset}-${last}`))
        const response = yield* http.execute(request).pipe(
          Effect.mapError(unreachable(r.url)),
          Effect.timeoutFail({ duration: stall, onTimeout: () => fail(r.url, "Stalled", `no answer for ${Duration.format(stall)}`) })
        )
        const { status } = response
        if (status >= 300 && status < 400) return yield* fail(r.url, "TooManyRedirects", `more than ${maxRedirects} redirects`, status)
        if (status === 206) {
          const start = contentRangeStart(response.headers["content-range"])
          if (start !== r.fileOffset) {
            return yield* fail(r.url, "BodyLength", `asked for bytes ${r.fileOffset}-${last}, got ${response.headers["content-range"] ?? "no Content-Range"}`, status)
          }
          return yield* readBody(response, r.url, 0, r.length, true, stall)
        }
        if (status === 200) {
          // The whole file: worth reading through only when the range starts near its beginning.
          if (r.fileOffset > maxSkip) return yield* fail(r.url, "RangeIgnored", `ignores Range requests (asked for bytes ${r.fileOffset}-${last})`, status)
          return yield* readBody(response, r.url, r.fileOffset, r.length, false, stall)
        }
        return yield* fail(r.url, "Status", statusText(status), status)
      }).pipe(Effect.retry({ schedule: retry, while: (e) => e.transient }))

    return {
      fetch: (seed, info, offset, length) =>
        Effect.map(
          // Padding (BEP 47) is zeros by definition: a web seed holds no such file.
          Effect.forEach(webSeedRequests(seed, info, offset, length), (r) =>
            isPadding(info.files[r.fileIndex]!) ? Effect.succeed(new Uint8Array(r.length)) : fetchOne(r)),
          (parts) => (parts.length === 1 ? parts[0]! : concatBytes(parts))
        )
    }
  })

/** What fetch's "fetch failed" hides: the system error below it (ECONNREFUSED, ENOTFOUND...). */
const transportProblem = (cause: unknown): string => {
  const below = cause instanceof Error ? cause.cause : undefined
  if (below instanceof Error) return "code" in below && typeof below.code === "string" ? below.code : below.message
  return cause instanceof Error ? cause.message : String(cause)
}

const statusText = (status: number): string =>
  status === 404 ? "not found" : status >= 500 ? "server error" : status === 416 ? "range not satisfiable" : "unexpected status"

/** One web seed of one torrent, ready to fetch from: what the torrent core is given. */
export interface WebSeedSource {
  readonly url: string
  /** Payload bytes `[offset, offset + length)`. */
  readonly fetch: (offset: number, length: number) => Effect.Effect<Uint8Array, WebSeedError>
}

/** The torrent's web seeds (its `url-list`) as sources over the WebSeed service. */
export const webSeedSources = (urls: ReadonlyArray<string>, info: Info): Effect.Effect<ReadonlyArray<WebSeedSource>, never, WebSeed> =>
  Effect.map(WebSeed, (client) => urls.map((url) => ({ url, fetch: (offset, length) => client.fetch(url, info, offset, length) })))

/**
 * A stand-in HTTP server for tests: `respond` answers each request (its URL and headers in
 * `request`) with a web `Response`, which may redirect, stall (a body that never ends) or lie.
 */
export type WebSeedResponder = (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<Response>

export class WebSeed extends Context.Tag("bt/WebSeed")<WebSeed, WebSeedClient>() {
  static layer = (options: WebSeedOptions = {}): Layer.Layer<WebSeed, never, HttpClient.HttpClient> =>
    Layer.effect(WebSeed, make(options))
  static Live: Layer.Layer<WebSeed, never, HttpClient.HttpClient> = WebSeed.layer()
  /** The live service over `respond` instead of a network (runs under TestClock). */
  static layerTest = (respond: WebSeedResponder, options: WebSeedOptions = {}): Layer.Layer<WebSeed> =>
    WebSeed.layer(options).pipe(
      Layer.provide(Layer.succeed(HttpClient.HttpClient, HttpClient.make((request) =>
        Effect.map(respond(request), (web) => HttpClientResponse.fromWeb(request, web)))))
    )
}
