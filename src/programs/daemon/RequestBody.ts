/**
 * A request's body within the server's bound (`HttpIncomingMessage.MaxBodySize`), for every front
 * end that reads one. Read off the socket by hand: past the bound the reading stops, but the
 * request is not destroyed, so the front end can still answer 413 (the platform's own reader
 * destroys it, and the answer with it).
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Data, Effect, Option } from "effect"
import type * as Http from "node:http"

export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{
  readonly limit: number
  /** Its Content-Length said so (nothing was read); else it was cut off while read. */
  readonly declared: boolean
}> {
  override get message() {
    return `the body is over ${this.limit} bytes`
  }
}

export class BodyUnreadable extends Data.TaggedError("BodyUnreadable")<{ readonly cause: unknown }> {
  override get message() {
    return `cannot read the body: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

const readBounded = (incoming: Http.IncomingMessage, limit: number) =>
  Effect.async<Uint8Array, BodyTooLarge | BodyUnreadable>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const stop = () => {
      incoming.off("data", onData).off("end", onEnd).off("error", onError)
      incoming.pause()
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      chunks.push(chunk)
      if (size <= limit) return
      stop()
      resume(Effect.fail(new BodyTooLarge({ limit, declared: false })))
    }
    const onEnd = () => resume(Effect.succeed(new Uint8Array(Buffer.concat(chunks))))
    const onError = (cause: Error) => resume(Effect.fail(new BodyUnreadable({ cause })))
    incoming.on("data", onData).once("end", onEnd).once("error", onError)
    return Effect.sync(stop)
  })

/** The request's body, at most the server's bound. */
export const boundedBody: Effect.Effect<Uint8Array, BodyTooLarge | BodyUnreadable, HttpServerRequest.HttpServerRequest> = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const limit = Option.getOrElse(Option.map(yield* HttpIncomingMessage.MaxBodySize, Number), () => Number.MAX_SAFE_INTEGER)
  if (Number(request.headers["content-length"] ?? 0) > limit) return yield* new BodyTooLarge({ limit, declared: true })
  return yield* readBounded(NodeHttpServerRequest.toIncomingMessage(request), limit)
})
