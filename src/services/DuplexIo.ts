/**
 * Effects over a paused `Duplex`: wait for one of its events, read, write with 'drain'. Shared by
 * the peer wire and the encryption handshake below it.
 */
import { Effect } from "effect"
import { concatBytes } from "../domain/Bytes.js"
import { type Duplex, type DuplexEvent, PeerError } from "./Transport.js"

export interface Link {
  readonly duplex: Duplex
  /** `ip:port`, for errors. */
  readonly peer: string
}

export const closedError = (link: Link, detail: string): PeerError =>
  link.duplex.failure ?? new PeerError({ peer: link.peer, reason: "Closed", detail })

export const readEvents: ReadonlyArray<DuplexEvent> = ["readable", "close"]
const drainEvents: ReadonlyArray<DuplexEvent> = ["drain", "close"]

/**
 * Resolves with the first result of `poll`, which runs now and again at each of the duplex's
 * `events`, until it gives an effect. The first poll needs no subscription (the hot path: data is
 * usually buffered already); a poll that throws in an event callback fails the connection.
 */
export const when = <A>(
  link: Link,
  events: ReadonlyArray<DuplexEvent>,
  poll: () => Effect.Effect<A, PeerError> | undefined
): Effect.Effect<A, PeerError> =>
  Effect.suspend(() =>
    poll() ??
      Effect.async<A, PeerError>((resume) => {
        const off = () => {
          for (const e of events) link.duplex.off(e, onEvent)
        }
        const onEvent = () => {
          let result: Effect.Effect<A, PeerError> | undefined
          try {
            result = poll()
          } catch (defect) {
            result = Effect.fail(new PeerError({ peer: link.peer, reason: "Io", detail: "message handler failed", cause: defect }))
          }
          if (result === undefined) return
          off()
          resume(result)
        }
        // again: the duplex may have changed between the first poll and this subscription
        const now = poll()
        if (now !== undefined) return resume(now)
        for (const e of events) link.duplex.on(e, onEvent)
        return Effect.sync(off)
      })
  )

/**
 * The next bytes the duplex has buffered (exactly `size` of them when given, fewer only at the
 * end of the stream), or undefined once it has ended. Buffered data wins over a pending error.
 */
export const read = (link: Link, size?: number): Effect.Effect<Uint8Array | undefined, PeerError> =>
  when(link, readEvents, () => {
    const chunk = link.duplex.read(size)
    if (chunk !== null) return Effect.succeed(chunk)
    if (link.duplex.failure !== undefined) return Effect.fail(link.duplex.failure)
    return link.duplex.readEnded ? Effect.succeed(undefined) : undefined
  })

/** Writes the bytes (or the buffers, gathered where the duplex can), waiting for "drain" if asked to. */
export const write = (link: Link, bytes: Uint8Array | ReadonlyArray<Uint8Array>): Effect.Effect<void, PeerError> =>
  Effect.suspend(() => {
    if (link.duplex.closed) return Effect.fail(closedError(link, "before sending"))
    const { duplex } = link
    const accepted = bytes instanceof Uint8Array
      ? duplex.write(bytes)
      : duplex.writeGathered !== undefined
      ? duplex.writeGathered(bytes)
      : duplex.write(concatBytes(bytes))
    return accepted
      ? Effect.void
      : when(link, drainEvents, () => {
        if (link.duplex.failure !== undefined) return Effect.fail(link.duplex.failure)
        if (link.duplex.closed) return Effect.fail(closedError(link, "while sending"))
        return link.duplex.needsDrain ? undefined : Effect.void
      })
  })
