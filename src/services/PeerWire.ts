/**
 * Peer connections over TCP: the handshake exchange, then a pull-based stream of decoded messages
 * and a batched `send`. Outbound (`connect`) and inbound (`accept`) connections share one type.
 *
 * Reads use a paused `node:net` socket and `socket.read()` only when the consumer pulls, so a fast
 * sender is throttled by TCP flow control instead of filling our memory (the platform Socket reads
 * in flowing mode into an unbounded mailbox).
 */
import * as net from "node:net"
import { Chunk, Context, Data, Duration, Effect, Either, Layer, Option, Scope, Stream } from "effect"
import { equalBytes, toHex } from "../domain/Bytes.js"
import { formatPeer, type PeerAddress } from "../domain/Peer.js"
import * as Wire from "../domain/Wire.js"

export type PeerErrorReason =
  | "ConnectionRefused"
  | "ConnectTimeout"
  | "HandshakeTimeout"
  | "InfoHashMismatch"
  | "Protocol"
  | "Closed"
  | "Io"

export class PeerError extends Data.TaggedError("PeerError")<{
  /** `ip:port` of the remote side. */
  readonly peer: string
  readonly reason: PeerErrorReason
  /** What exactly went wrong, e.g. the violated protocol rule or the socket error code. */
  readonly detail?: string
  /** Hex info hashes, for InfoHashMismatch. */
  readonly expected?: string
  readonly received?: string
  readonly cause?: unknown
}> {
  override get message() {
    const suffix = this.detail === undefined ? "" : `: ${this.detail}`
    switch (this.reason) {
      case "ConnectionRefused":
        return `peer ${this.peer}: connection refused`
      case "ConnectTimeout":
        return `peer ${this.peer}: connection timed out`
      case "HandshakeTimeout":
        return `peer ${this.peer}: no handshake received in time`
      case "InfoHashMismatch":
        return `peer ${this.peer}: info hash mismatch: expected ${this.expected}, received ${this.received}`
      case "Protocol":
        return `peer ${this.peer}: protocol violation${suffix}`
      case "Closed":
        return `peer ${this.peer}: connection closed${this.detail === undefined ? "" : ` (${this.detail})`}`
      case "Io":
        return `peer ${this.peer}: I/O error${suffix}`
    }
  }
}

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
   * if any, before reading on. Fails like `messages` when the connection ends.
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
    /** Dials, exchanges handshakes and checks the info hash. The socket is destroyed when the scope closes. */
    readonly connect: (address: PeerAddress, options: ConnectOptions) => Effect.Effect<PeerConnection, PeerError, Scope.Scope>
    /** Takes an incoming socket: reads its handshake, looks the torrent up, answers. Destroyed when the scope closes. */
    readonly accept: (socket: net.Socket, options: AcceptOptions) => Effect.Effect<InboundConnection, PeerError, Scope.Scope>
  }
>() {
  // sync, not succeed: `connect` and `accept` are defined further down this module
  static readonly Live: Layer.Layer<PeerWire> = Layer.sync(PeerWire, () => ({ connect, accept }))
}

// ---------------------------------------------------------------------------------------------
// Socket plumbing

/** A socket and the first error node reported on it (recorded at once, so 'error' never goes unhandled). */
interface Link {
  readonly socket: net.Socket
  readonly peer: string
  error: PeerError | undefined
}

const fromNodeError = (peer: string, err: NodeJS.ErrnoException): PeerError => {
  switch (err.code) {
    case "ECONNREFUSED":
      return new PeerError({ peer, reason: "ConnectionRefused", cause: err })
    case "ECONNRESET":
    case "EPIPE":
      return new PeerError({ peer, reason: "Closed", detail: "reset by the peer", cause: err })
    default:
      return new PeerError({ peer, reason: "Io", detail: err.code ?? err.message, cause: err })
  }
}

const attach = (socket: net.Socket, peer: string): Link => {
  const link: Link = { socket, peer, error: undefined }
  socket.on("error", (err) => {
    link.error ??= fromNodeError(peer, err)
  })
  socket.setNoDelay(true)
  return link
}

const closedError = (link: Link, detail: string): PeerError =>
  link.error ?? new PeerError({ peer: link.peer, reason: "Closed", detail })

/**
 * Resolves with the first result of `poll`, which runs now and again at each of the socket's
 * `events`, until it gives an effect.
 */
const when = <A>(
  socket: net.Socket,
  events: ReadonlyArray<string>,
  poll: () => Effect.Effect<A, PeerError> | undefined
): Effect.Effect<A, PeerError> =>
  Effect.async<A, PeerError>((resume) => {
    const now = poll()
    if (now !== undefined) {
      resume(now)
      return
    }
    const off = () => {
      for (const e of events) socket.off(e, onEvent)
    }
    const onEvent = () => {
      const result = poll()
      if (result === undefined) return
      off()
      resume(result)
    }
    for (const e of events) socket.on(e, onEvent)
    return Effect.sync(off)
  })

const readEvents = ["readable", "end", "close", "error"]

/**
 * How much a connection reads ahead of its consumer. Node's default (16 KiB) makes every pull a
 * 16 KiB read; a larger window lets one pull take all that arrived meanwhile, which cuts the
 * per-read overhead at bulk rates, and still bounds what an unread connection holds.
 */
const readableHighWaterMark = 1024 * 1024

/**
 * The next bytes the socket has buffered (exactly `size` of them when given, fewer only at the
 * end of the stream), or undefined once it has ended. Buffered data wins over a pending error.
 */
const read = (link: Link, size?: number): Effect.Effect<Buffer | undefined, PeerError> =>
  when(link.socket, readEvents, () => {
    const chunk: Buffer | null = link.socket.read(size)
    if (chunk !== null) return Effect.succeed(chunk)
    if (link.error !== undefined) return Effect.fail(link.error)
    return link.socket.readableEnded || link.socket.destroyed ? Effect.succeed(undefined) : undefined
  })

const awaitConnected = (link: Link): Effect.Effect<void, PeerError> =>
  when(link.socket, ["connect", "close", "error"], () => {
    if (link.error !== undefined) return Effect.fail(link.error)
    if (link.socket.destroyed) return Effect.fail(closedError(link, "while connecting"))
    return link.socket.connecting ? undefined : Effect.void
  })

const awaitDrain = (link: Link): Effect.Effect<void, PeerError> =>
  when(link.socket, ["drain", "close", "error"], () => {
    if (link.error !== undefined) return Effect.fail(link.error)
    if (link.socket.destroyed) return Effect.fail(closedError(link, "while sending"))
    return link.socket.writableNeedDrain ? undefined : Effect.void
  })

const write = (link: Link, bytes: Uint8Array): Effect.Effect<void, PeerError> =>
  Effect.suspend(() => {
    if (link.socket.destroyed || link.socket.writableEnded) return Effect.fail(closedError(link, "before sending"))
    return link.socket.write(bytes) ? Effect.void : awaitDrain(link)
  })

const destroy = (link: Link) => Effect.sync(() => link.socket.destroy())

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
const fromSocket = (link: Link, address: PeerAddress, remote: Wire.Handshake, pieceCount: number) =>
  Effect.map(Effect.makeSemaphore(1), (sending): PeerConnection => {
    const decoder = new Wire.FrameDecoder(Wire.maxFrameLength(pieceCount))
    /** Decodes what the socket has buffered: messages, undefined when nothing is, or why the connection is over. */
    const takeBuffered = (): ReadonlyArray<Wire.Message> | PeerError | undefined => {
      const bytes: Buffer | null = link.socket.read()
      if (bytes === null) {
        if (link.error !== undefined) return link.error
        return link.socket.readableEnded || link.socket.destroyed ? closedError(link, "by the peer") : undefined
      }
      // A plain view, not the Buffer: payloads are views into it, and Buffer#slice would not copy.
      const decoded = decoder.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
      if (Either.isRight(decoded)) return decoded.right
      return new PeerError({ peer: link.peer, reason: "Protocol", detail: decoded.left.rule, cause: decoded.left })
    }
    const readable = when(link.socket, readEvents, () =>
      link.socket.readableLength > 0 || link.error !== undefined || link.socket.readableEnded || link.socket.destroyed
        ? Effect.void
        : undefined
    )
    // One TCP read's messages per pull; a read that only completes part of a frame reads again.
    const pull: Effect.Effect<Chunk.Chunk<Wire.Message>, Option.Option<PeerError>> = Effect.suspend(() => {
      const taken = takeBuffered()
      if (taken === undefined) return Effect.zipRight(Effect.mapError(readable, Option.some), pull)
      if (taken instanceof PeerError) return Effect.fail(Option.some(taken))
      return taken.length === 0 ? pull : Effect.succeed(Chunk.unsafeFromArray(taken))
    })
    const consume = <E>(
      onMessages: (messages: ReadonlyArray<Wire.Message>) => Effect.Effect<void, E> | undefined
    ): Effect.Effect<never, PeerError | E> => {
      /**
       * Hands everything buffered to `onMessages`, synchronously. Returns the first effect it asks
       * to wait for, the error that ended the connection, or undefined once the buffer is empty.
       */
      const drain = (): Effect.Effect<void, E> | PeerError | undefined => {
        for (;;) {
          const taken = takeBuffered()
          if (taken === undefined || taken instanceof PeerError) return taken
          if (taken.length === 0) continue
          const next = onMessages(taken)
          if (next !== undefined) return next
        }
      }
      // Data that arrives while waiting is handled in the socket's own 'readable' callback: the
      // fiber only wakes when the handler returns an effect or the connection ends, not per read.
      const wait = Effect.async<Effect.Effect<void, E>, PeerError>((resume) => {
        const onEvent = () => {
          let next: Effect.Effect<void, E> | PeerError | undefined
          try {
            next = drain()
          } catch (defect) {
            next = new PeerError({ peer: link.peer, reason: "Io", detail: "message handler failed", cause: defect })
          }
          if (next === undefined) return
          off()
          resume(next instanceof PeerError ? Effect.fail(next) : Effect.succeed(next))
        }
        const off = () => {
          for (const e of readEvents) link.socket.off(e, onEvent)
        }
        for (const e of readEvents) link.socket.on(e, onEvent)
        return Effect.sync(off)
      })
      const loop: Effect.Effect<never, PeerError | E> = Effect.suspend(() => {
        const next = drain()
        if (next instanceof PeerError) return Effect.fail(next)
        return Effect.zipRight(next ?? Effect.flatten(wait), loop)
      })
      return loop
    }
    return {
      address,
      remote,
      messages: Stream.repeatEffectChunkOption(pull),
      consume,
      send: (messages) =>
        messages.length === 0 ? Effect.void : sending.withPermits(1)(Effect.suspend(() => write(link, Wire.encodeMessages(messages)))),
      sendNow: (messages) => {
        if (messages.length > 0 && !link.socket.destroyed && !link.socket.writableEnded) {
          link.socket.write(Wire.encodeMessages(messages))
        }
      }
    }
  })

const connect = Effect.fn("PeerWire.connect")(function* (address: PeerAddress, options: ConnectOptions) {
  const peer = formatPeer(address)
  const link = yield* Effect.acquireRelease(
    Effect.try({
      try: () => {
        const target = { host: address.host, port: address.port, readableHighWaterMark }
        const socket = net.connect(options.localAddress === undefined ? target : { ...target, localAddress: options.localAddress })
        return attach(socket, peer)
      },
      catch: (cause) => new PeerError({ peer, reason: "Io", detail: String(cause), cause })
    }),
    destroy
  )
  return yield* Effect.gen(function* () {
    yield* awaitConnected(link).pipe(
      Effect.timeoutFail({
        duration: options.connectTimeout ?? Duration.seconds(5),
        onTimeout: () => new PeerError({ peer, reason: "ConnectTimeout" })
      })
    )
    // Our handshake alone: aria2 drops a connection whose first read holds more than 68 bytes.
    const remote = yield* write(
      link,
      Wire.encodeHandshake({ reserved: options.reserved ?? new Uint8Array(8), infoHash: options.infoHash, peerId: options.peerId })
    ).pipe(Effect.zipRight(readHandshake(link)), handshakeTimeout(link, options.handshakeTimeout))
    if (!equalBytes(remote.infoHash, options.infoHash)) {
      return yield* new PeerError({
        peer,
        reason: "InfoHashMismatch",
        expected: toHex(options.infoHash),
        received: toHex(remote.infoHash)
      })
    }
    return yield* fromSocket(link, address, remote, options.pieceCount)
  }).pipe(Effect.onError(() => destroy(link)))
})

const accept = Effect.fn("PeerWire.accept")(function* (socket: net.Socket, options: AcceptOptions) {
  const address: PeerAddress = { host: socket.remoteAddress ?? "unknown", port: socket.remotePort ?? 0 }
  const link = yield* Effect.acquireRelease(Effect.sync(() => attach(socket, formatPeer(address))), destroy)
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
    const connection = yield* fromSocket(link, address, remote, torrent.pieceCount)
    return { ...connection, infoHash: remote.infoHash } satisfies InboundConnection
  }).pipe(Effect.onError(() => destroy(link)))
})
