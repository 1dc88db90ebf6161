/**
 * Peer connections over a `Transport`: the handshake exchange, then a pull-based stream of
 * decoded messages and a batched `send`. Outbound (`connect`) and inbound (`accept`) connections
 * share one type.
 *
 * Reads take bytes off the paused `Duplex` only when the consumer pulls, so a fast sender is
 * throttled by flow control instead of filling our memory (the platform Socket reads in flowing
 * mode into an unbounded mailbox).
 */
import { Chunk, Context, Duration, Effect, Either, Layer, Option, Scope, Stream } from "effect"
import { concatBytes, equalBytes, toHex } from "../domain/Bytes.js"
import { formatPeer, type PeerAddress } from "../domain/Peer.js"
import * as Wire from "../domain/Wire.js"
import { type Duplex, type DuplexEvent, PeerError, Transport } from "./Transport.js"

export { PeerError, type PeerErrorReason } from "./Transport.js"

export interface PeerConnection {
  readonly address: PeerAddress
  /** The remote handshake: its peer id and reserved (extension) bytes. */
  readonly remote: Wire.Handshake
  /**
   * The decoded messages, one stream chunk per TCP read. Pull-based: nothing is read from the
   * socket until the stream is pulled. Consume it once. It never ends: when the peer closes, it
   * fails with reason "Closed".
   */
  readonly messages: Stream.Stream<Wire.Message, PeerError>
  /**
   * The bulk alternative to `messages` (use one or the other): calls `onMessages` with each TCP
   * read's messages, synchronously while data is buffered, and waits for the effect it returns,
   * if any, before reading on. Fails like `messages` when the connection ends. The messages' bytes
   * (blocks, payloads) may be views of a reused read buffer: valid during the call only, so
   * `onMessages` copies what it keeps.
   */
  readonly consume: <E>(
    onMessages: (messages: ReadonlyArray<Wire.Message>) => Effect.Effect<void, E> | undefined
  ) => Effect.Effect<never, PeerError | E>
  /** Writes the messages as one buffer; resolves when node accepts it (waits for 'drain' if needed). Serialized. */
  readonly send: (messages: ReadonlyArray<Wire.Message>) => Effect.Effect<void, PeerError>
  /**
   * Writes at once without waiting for the socket to drain: for small control messages (requests,
   * haves, cancels) whose volume the caller bounds. Bulk data goes through `send`.
   */
  readonly sendNow: (messages: ReadonlyArray<Wire.Message>) => void
}

export interface InboundConnection extends PeerConnection {
  readonly infoHash: Uint8Array
}

export interface ConnectOptions {
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
  /** Our 8 reserved bytes; all zero by default. */
  readonly reserved?: Uint8Array
  /** Sets the frame size limit (the bitfield grows with it). */
  readonly pieceCount: number
  /** Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput
  /** Default 10 seconds, counted from the TCP connection. */
  readonly handshakeTimeout?: Duration.DurationInput
  /**
   * Source address to dial from, e.g. another 127.x: Transmission keys peers by address and drops a
   * second connection from one that is mid-handshake.
   */
  readonly localAddress?: string
}

/** What we answer an inbound handshake for one of our torrents with. */
export interface LocalTorrent {
  readonly peerId: Uint8Array
  readonly reserved: Uint8Array
  readonly pieceCount: number
}

export interface AcceptOptions {
  /** The torrent of an inbound handshake's info hash; undefined rejects the connection. */
  readonly lookup: (infoHash: Uint8Array) => LocalTorrent | undefined
  /** Default 10 seconds. */
  readonly handshakeTimeout?: Duration.DurationInput
}

export class PeerWire extends Context.Tag("bt/PeerWire")<
  PeerWire,
  {
    /** Dials, exchanges handshakes and checks the info hash. The connection is destroyed when the scope closes. */
    readonly connect: (address: PeerAddress, options: ConnectOptions) => Effect.Effect<PeerConnection, PeerError, Scope.Scope>
    /** Takes an incoming connection: reads its handshake, looks the torrent up, answers. Destroyed when the scope closes. */
    readonly accept: (duplex: Duplex, options: AcceptOptions) => Effect.Effect<InboundConnection, PeerError, Scope.Scope>
  }
>() {
  // Effect.map's function runs when the layer is built: `make` is defined further down this module
  static readonly Live: Layer.Layer<PeerWire, never, Transport> = Layer.effect(PeerWire, Effect.map(Transport, (t) => make(t)))
  /** Over TCP (`Transport.Tcp`). */
  static readonly Tcp: Layer.Layer<PeerWire | Transport> = PeerWire.Live.pipe(Layer.provideMerge(Transport.Tcp))
}

// ---------------------------------------------------------------------------------------------
// Duplex plumbing

interface Link {
  readonly duplex: Duplex
  /** `ip:port`, for errors. */
  readonly peer: string
}

const closedError = (link: Link, detail: string): PeerError =>
  link.duplex.failure ?? new PeerError({ peer: link.peer, reason: "Closed", detail })

const readEvents: ReadonlyArray<DuplexEvent> = ["readable", "close"]
const drainEvents: ReadonlyArray<DuplexEvent> = ["drain", "close"]

/**
 * Resolves with the first result of `poll`, which runs now and again at each of the duplex's
 * `events`, until it gives an effect. The first poll needs no subscription (the hot path: data is
 * usually buffered already); a poll that throws in an event callback fails the connection.
 */
const when = <A>(
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
const read = (link: Link, size: number): Effect.Effect<Uint8Array | undefined, PeerError> =>
  when(link, readEvents, () => {
    const chunk = link.duplex.read(size)
    if (chunk !== null) return Effect.succeed(chunk)
    if (link.duplex.failure !== undefined) return Effect.fail(link.duplex.failure)
    return link.duplex.readEnded ? Effect.succeed(undefined) : undefined
  })

/** Writes the bytes (or the buffers, gathered where the duplex can), waiting for "drain" if asked to. */
const write = (link: Link, bytes: Uint8Array | ReadonlyArray<Uint8Array>): Effect.Effect<void, PeerError> =>
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

const destroy = (link: Link) => Effect.sync(() => link.duplex.destroy())

// ---------------------------------------------------------------------------------------------
// Handshake and connection

const readHandshake = (link: Link): Effect.Effect<Wire.Handshake, PeerError> =>
  Effect.flatMap(read(link, Wire.handshakeLength), (bytes) => {
    if (bytes === undefined || bytes.length < Wire.handshakeLength) {
      const got = bytes?.length ?? 0
      return Effect.fail(closedError(link, `during the handshake, after ${got} of ${Wire.handshakeLength} bytes`))
    }
    return Either.match(Wire.decodeHandshake(bytes), {
      onLeft: (e) => Effect.fail(new PeerError({ peer: link.peer, reason: "Protocol", detail: e.rule, cause: e })),
      onRight: Effect.succeed
    })
  })

const handshakeTimeout = (link: Link, duration: Duration.DurationInput | undefined) =>
  Effect.timeoutFail({
    duration: duration ?? Duration.seconds(10),
    onTimeout: () => new PeerError({ peer: link.peer, reason: "HandshakeTimeout" })
  })

/** The connection after the handshakes, the same whichever side dialled. */
const fromLink = (link: Link, address: PeerAddress, remote: Wire.Handshake, pieceCount: number) =>
  Effect.map(Effect.makeSemaphore(1), (sending): PeerConnection => {
    const decoder = new Wire.FrameDecoder(Wire.maxFrameLength(pieceCount))
    /**
     * Decodes what the duplex has buffered: messages, undefined when nothing is, or why the
     * connection is over. `kept`: the messages outlive this callback, so they must not be views of
     * a duplex's reused read buffer.
     */
    const takeBuffered = (kept: boolean): ReadonlyArray<Wire.Message> | PeerError | undefined => {
      const bytes = link.duplex.read()
      if (bytes === null) {
        if (link.duplex.failure !== undefined) return link.duplex.failure
        return link.duplex.readEnded ? closedError(link, "by the peer") : undefined
      }
      const decoded = decoder.push(kept && link.duplex.transientReads === true ? bytes.slice() : bytes)
      if (Either.isRight(decoded)) return decoded.right
      return new PeerError({ peer: link.peer, reason: "Protocol", detail: decoded.left.rule, cause: decoded.left })
    }
    // One read's messages per pull; a read that only completes part of a frame reads again.
    const pull: Effect.Effect<Chunk.Chunk<Wire.Message>, Option.Option<PeerError>> = Effect.mapError(
      when(link, readEvents, () => {
        for (;;) {
          const taken = takeBuffered(true)
          if (taken === undefined) return undefined
          if (taken instanceof PeerError) return Effect.fail(taken)
          if (taken.length > 0) return Effect.succeed(Chunk.unsafeFromArray(taken))
        }
      }),
      Option.some
    )
    const consume = <E>(
      onMessages: (messages: ReadonlyArray<Wire.Message>) => Effect.Effect<void, E> | undefined
    ): Effect.Effect<never, PeerError | E> => {
      /**
       * Hands everything buffered to `onMessages`, synchronously, until it asks to wait (the
       * effect it returns) or the connection ends; undefined once the buffer is empty. Data that
       * arrives meanwhile is handled in the duplex's own 'readable' callback: the fiber only wakes
       * when the handler returns an effect or the connection ends, not per read.
       */
      const drain = (): Effect.Effect<Effect.Effect<void, E>, PeerError> | undefined => {
        for (;;) {
          const taken = takeBuffered(false)
          if (taken === undefined) return undefined
          if (taken instanceof PeerError) return Effect.fail(taken)
          if (taken.length === 0) continue
          const next = onMessages(taken)
          if (next !== undefined) return Effect.succeed(next)
        }
      }
      const loop: Effect.Effect<never, PeerError | E> = Effect.flatMap(when(link, readEvents, drain), (next) =>
        Effect.zipRight(next, loop))
      return loop
    }
    return {
      address,
      remote,
      messages: Stream.repeatEffectChunkOption(pull),
      consume,
      send: (messages) =>
        messages.length === 0 ? Effect.void : sending.withPermits(1)(Effect.suspend(() => write(link, Wire.encodeFrames(messages)))),
      sendNow: (messages) => {
        if (messages.length > 0 && !link.duplex.closed) link.duplex.write(Wire.encodeMessages(messages))
      }
    }
  })

const make = (transport: Transport["Type"]): PeerWire["Type"] => {
  const connect = Effect.fn("PeerWire.connect")(function* (address: PeerAddress, options: ConnectOptions) {
    const duplex = yield* transport.dial(address, {
      timeout: options.connectTimeout ?? Duration.seconds(5),
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress })
    })
    const link: Link = { duplex, peer: formatPeer(address) }
    return yield* Effect.gen(function* () {
      // Our handshake alone: aria2 drops a connection whose first read holds more than 68 bytes.
      const remote = yield* write(
        link,
        Wire.encodeHandshake({ reserved: options.reserved ?? new Uint8Array(8), infoHash: options.infoHash, peerId: options.peerId })
      ).pipe(Effect.zipRight(readHandshake(link)), handshakeTimeout(link, options.handshakeTimeout))
      if (!equalBytes(remote.infoHash, options.infoHash)) {
        return yield* new PeerError({
          peer: link.peer,
          reason: "InfoHashMismatch",
          expected: toHex(options.infoHash),
          received: toHex(remote.infoHash)
        })
      }
      return yield* fromLink(link, address, remote, options.pieceCount)
    }).pipe(Effect.onError(() => destroy(link)))
  })
  return { connect, accept }
}

const accept = Effect.fn("PeerWire.accept")(function* (duplex: Duplex, options: AcceptOptions) {
  const address = duplex.remote
  const link = yield* Effect.acquireRelease(Effect.succeed<Link>({ duplex, peer: formatPeer(address) }), destroy)
  return yield* Effect.gen(function* () {
    const { remote, torrent } = yield* Effect.gen(function* () {
      const remote = yield* readHandshake(link)
      const torrent = options.lookup(remote.infoHash)
      if (torrent === undefined) {
        return yield* new PeerError({ peer: link.peer, reason: "Protocol", detail: `unknown info hash ${toHex(remote.infoHash)}` })
      }
      yield* write(link, Wire.encodeHandshake({ reserved: torrent.reserved, infoHash: remote.infoHash, peerId: torrent.peerId }))
      return { remote, torrent }
    }).pipe(handshakeTimeout(link, options.handshakeTimeout))
    const connection = yield* fromLink(link, address, remote, torrent.pieceCount)
    return { ...connection, infoHash: remote.infoHash } satisfies InboundConnection
  }).pipe(Effect.onError(() => destroy(link)))
})
