/**
 * The WebSeed service over a stand-in HTTP server (`WebSeed.layerTest`), under TestClock: Range
 * requests per file, redirects (followed, bounded), stalls (timed out), 404s (retried, then the
 * error with its URL and status), servers that ignore Range or send the wrong length.
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { WebSeed, type WebSeedResponder } from "../../src/services/WebSeed.js"
import { handInfo } from "../support/handInfo.js"

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

const fileA = bytes(3000, 1)
const fileB = bytes(500, 2)
const multi = handInfo(1024, [{ path: ["a.bin"], data: fileA }, { path: ["sub", "b.bin"], data: fileB }]).info
const single = handInfo(1024, [{ path: ["one.bin"], data: fileA }]).info

/** `bytes=<first>-<last>` of a request, or undefined. */
const rangeOf = (request: HttpClientRequest.HttpClientRequest) => {
  const m = /^bytes=(\d+)-(\d+)$/.exec(request.headers["range"] ?? "")
  return m === null ? undefined : { first: Number(m[1]), last: Number(m[2]) }
}

/** Answers like a server holding `files` (path -> bytes), with Range support. */
const serving = (files: Record<string, Uint8Array>, seen: Array<string> = []): WebSeedResponder => (request) =>
  Effect.sync(() => {
    seen.push(`${request.url} ${request.headers["range"] ?? ""}`)
    const file = files[new URL(request.url).pathname]
    if (file === undefined) return new Response("no", { status: 404 })
    const range = rangeOf(request)
    if (range === undefined) return new Response(file, { status: 200 })
    const last = Math.min(range.last, file.length - 1)
    return new Response(file.slice(range.first, last + 1), {
      status: 206,
      headers: { "content-range": `bytes ${range.first}-${last}/${file.length}` }
    })
  })

const fetchWith = (respond: WebSeedResponder, seed: string, info = multi, offset = 0, length = info.totalLength) =>
  Effect.flatMap(WebSeed, (ws) => ws.fetch(seed, info, offset, length)).pipe(Effect.provide(WebSeed.layerTest(respond)))

describe("WebSeed", () => {
  it.effect("a range across two files of a multi-file torrent: one Range request per file, the exact bytes", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const got = yield* fetchWith(serving({ "/pub/hand/a.bin": fileA, "/pub/hand/sub/b.bin": fileB }, seen), "http://127.0.0.1/pub/", multi, 2900, 200)
      expect(got).toEqual(new Uint8Array([...fileA.subarray(2900), ...fileB.subarray(0, 100)]))
      expect(seen).toEqual(["http://127.0.0.1/pub/hand/a.bin bytes=2900-2999", "http://127.0.0.1/pub/hand/sub/b.bin bytes=0-99"])
    }))

  it.effect("padding (BEP 47) is zeros, never asked of the server", () =>
    Effect.gen(function* () {
      const padded = handInfo(1024, [
        { path: ["a.bin"], data: fileA },
        { path: [".pad", "72"], data: new Uint8Array(72), attributes: { padding: true } },
        { path: ["b.bin"], data: fileB }
      ]).info
      const seen: Array<string> = []
      const got = yield* fetchWith(serving({ "/pub/hand/a.bin": fileA, "/pub/hand/b.bin": fileB }, seen), "http://127.0.0.1/pub/", padded, 2900, 300)
      expect(got).toEqual(new Uint8Array([...fileA.subarray(2900), ...new Uint8Array(72), ...fileB.subarray(0, 128)]))
      expect(seen).toEqual(["http://127.0.0.1/pub/hand/a.bin bytes=2900-2999", "http://127.0.0.1/pub/hand/b.bin bytes=0-127"])
    }))

  it.effect("redirects are followed", () =>
    Effect.gen(function* () {
      const files = serving({ "/real/one.bin": fileA })
      const respond: WebSeedResponder = (request) =>
        new URL(request.url).pathname === "/old/one.bin"
          ? Effect.succeed(new Response(null, { status: 302, headers: { location: "/real/one.bin" } }))
          : files(request)
      expect(yield* fetchWith(respond, "http://127.0.0.1/old/one.bin", single, 100, 50)).toEqual(fileA.subarray(100, 150))
    }))

  it.effect("a redirect loop fails after the bound, naming the URL and the status", () =>
    Effect.gen(function* () {
      let requests = 0
      const loop: WebSeedResponder = () => Effect.sync(() => (requests++, new Response(null, { status: 301, headers: { location: "/again" } })))
      const e = yield* Effect.flip(fetchWith(loop, "http://127.0.0.1/one.bin", single))
      expect(e.reason).toBe("TooManyRedirects")
      expect(e.status).toBe(301)
      expect(e.message).toBe("web seed http://127.0.0.1/one.bin: HTTP 301: more than 5 redirects")
      expect(requests).toBe(6)
    }))

  it.effect("a 404 is retried with backoff, then fails with the URL and the status", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const fiber = yield* Effect.fork(Effect.flip(fetchWith(serving({}, seen), "http://127.0.0.1/gone.bin", single)))
      yield* TestClock.adjust("1 minute")
      const e = yield* Fiber.join(fiber)
      expect(e.reason).toBe("Status")
      expect(e.status).toBe(404)
      expect(e.message).toBe("web seed http://127.0.0.1/gone.bin: HTTP 404: not found")
      expect(seen.length).toBe(4) // the first try and 3 retries
    }))

  it.effect("a 403 is not retried", () =>
    Effect.gen(function* () {
      let requests = 0
      const e = yield* Effect.flip(fetchWith(() => Effect.sync(() => (requests++, new Response("no", { status: 403 }))), "http://127.0.0.1/x", single))
      expect([e.status, requests]).toEqual([403, 1])
    }))

  it.effect("a body that stops coming times out as stalled (after the retries)", () =>
    Effect.gen(function* () {
      let requests = 0
      const stalling: WebSeedResponder = () =>
        Effect.sync(() => {
          requests++
          const body = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(fileA.subarray(0, 10)) }) // never closed
          return new Response(body, { status: 206, headers: { "content-range": `bytes 0-99/${fileA.length}` } })
        })
      const fiber = yield* Effect.fork(Effect.flip(fetchWith(stalling, "http://127.0.0.1/one.bin", single, 0, 100)))
      yield* TestClock.adjust("5 minutes")
      const e = yield* Fiber.join(fiber)
      expect(e.reason).toBe("Stalled")
      expect(e.message).toBe("web seed http://127.0.0.1/one.bin: HTTP 206: no data for 20s")
      expect(requests).toBe(4)
    }))

  it.effect("a server that ignores Range: read through near the start of the file, refused further in", () =>
    Effect.gen(function* () {
      const whole: WebSeedResponder = () => Effect.succeed(new Response(fileA, { status: 200 }))
      expect(yield* fetchWith(whole, "http://127.0.0.1/one.bin", single, 1000, 24)).toEqual(fileA.subarray(1000, 1024))
      const big = handInfo(1 << 20, [{ path: ["big.bin"], data: new Uint8Array(3 << 20) }]).info
      const e = yield* Effect.flip(fetchWith(whole, "http://127.0.0.1/big.bin", big, 2 << 20, 1024))
      expect(e.reason).toBe("RangeIgnored")
      expect(e.status).toBe(200)
    }))

  it.effect("a 206 body longer or shorter than the range is refused", () =>
    Effect.gen(function* () {
      const reply = (body: Uint8Array): WebSeedResponder => () =>
        Effect.succeed(new Response(body, { status: 206, headers: { "content-range": `bytes 0-99/${fileA.length}` } }))
      const long = yield* Effect.flip(fetchWith(reply(fileA.subarray(0, 200)), "http://127.0.0.1/one.bin", single, 0, 100))
      expect(long.message).toBe("web seed http://127.0.0.1/one.bin: HTTP 206: the body is longer than the 100 bytes asked for")
      const short = yield* Effect.flip(fetchWith(reply(fileA.subarray(0, 60)), "http://127.0.0.1/one.bin", single, 0, 100))
      expect(short.message).toBe("web seed http://127.0.0.1/one.bin: HTTP 206: the body ended after 60 of the 100 bytes asked for")
    }))

  it.effect("a 206 for another range than asked is refused", () =>
    Effect.gen(function* () {
      const wrong: WebSeedResponder = () =>
        Effect.succeed(new Response(fileA.subarray(0, 100), { status: 206, headers: { "content-range": `bytes 0-99/${fileA.length}` } }))
      const e = yield* Effect.flip(fetchWith(wrong, "http://127.0.0.1/one.bin", single, 500, 100))
      expect(e.reason).toBe("BodyLength")
    }))
})
