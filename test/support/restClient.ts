/**
 * A client of the daemon's REST API for the tests: requests answered as status, content type and
 * JSON body; and a follower of its event stream that parses Server-Sent Events the way a
 * browser's EventSource does, with bounded waits.
 */
import { Data, type Duration, Effect, Queue, type Scope } from "effect"

export interface RestReply {
  readonly status: number
  readonly type: string | null
  /** The parsed JSON, or the text when it is not JSON (undefined when empty). */
  readonly body: any
}

export const request = (base: string, method: string, path: string, body?: string | Uint8Array | ReadableStream<Uint8Array>, contentType?: string) =>
  Effect.promise(async (): Promise<RestReply> => {
    const init = {
      method,
      headers: contentType === undefined ? {} : { "content-type": contentType },
      ...(body === undefined ? {} : { body, duplex: "half" })
    }
    const response = await fetch(`${base}${path}`, init as RequestInit)
    const text = await response.text()
    let parsed: unknown = text === "" ? undefined : text
    try {
      parsed = JSON.parse(text)
    } catch {
      // Not JSON: the text is kept.
    }
    return { status: response.status, type: response.headers.get("content-type"), body: parsed }
  })

export const postJson = (base: string, path: string, body: unknown) => request(base, "POST", path, JSON.stringify(body), "application/json")

export interface SseFrame {
  readonly event: string
  readonly data: any
}

/** The stream ended (or did not bring the frame waited for in time). */
export class StreamEnded extends Data.TaggedError("StreamEnded")<{ readonly waitedFor: string; readonly seen: ReadonlyArray<string> }> {
  override get message() {
    return `the event stream ended or stalled before ${this.waitedFor} (seen: ${this.seen.slice(-20).join(", ")})`
  }
}

const parseBlock = (block: string): SseFrame | undefined => {
  let event = "message"
  const data: Array<string> = []
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === "" || line.startsWith(":")) continue
    const colon = line.indexOf(":")
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
    if (field === "event") event = value
    if (field === "data") data.push(value)
  }
  return data.length === 0 ? undefined : { event, data: JSON.parse(data.join("\n")) }
}

/**
 * Follows `url` until the scope closes (then it hangs up). `next(p)` gives the next frame that
 * satisfies `p`, skipping others, within `timeout`; `ended` waits for the server to end the stream.
 */
export const follow = (url: string): Effect.Effect<{
  readonly next: (what: string, p: (f: SseFrame) => boolean, timeout?: Duration.DurationInput) => Effect.Effect<SseFrame, StreamEnded>
  readonly ended: (timeout?: Duration.DurationInput) => Effect.Effect<boolean>
}, never, Scope.Scope> =>
  Effect.gen(function* () {
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    const frames = yield* Queue.unbounded<SseFrame | "end">()
    const seen: Array<string> = []
    const response = yield* Effect.promise(() => fetch(url, { signal: controller.signal }))
    const pump = async () => {
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let buffer = ""
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          buffer += decoder.decode(value, { stream: true })
          for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const frame = parseBlock(block)
            if (frame !== undefined) Queue.unsafeOffer(frames, frame)
          }
        }
      } catch {
        // Aborted by our own hang-up, or the connection went: the stream is over either way.
      }
      Queue.unsafeOffer(frames, "end")
    }
    void pump()
    const next = (what: string, p: (f: SseFrame) => boolean, timeout: Duration.DurationInput = "20 seconds") =>
      Effect.gen(function* () {
        for (;;) {
          const frame = yield* Queue.take(frames)
          if (frame === "end") return yield* new StreamEnded({ waitedFor: what, seen })
          seen.push(frame.event)
          if (p(frame)) return frame
        }
      }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => new StreamEnded({ waitedFor: what, seen }) }))
    const ended = (timeout: Duration.DurationInput = "10 seconds") =>
      Effect.gen(function* () {
        for (;;) if ((yield* Queue.take(frames)) === "end") return true as boolean
      }).pipe(Effect.timeoutTo({ duration: timeout, onTimeout: () => false, onSuccess: (x) => x }))
    return { next, ended }
  })
