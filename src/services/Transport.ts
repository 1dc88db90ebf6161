/**
 * Byte streams between peers, below the BitTorrent wire: dial an address, listen on a port, and
 * read and write a `Duplex`. `Transport.Tcp` is `node:net`; `MemoryNetwork` simulates links.
 *
 * A `Duplex` is pull-based (a paused socket): nothing is taken off it until `read` is called, so
 * a fast sender is throttled by flow control instead of filling our memory.
 */
import * as net from "node:net"
import { Context, Data, Duration, Effect, Layer, Queue, type Scope, Stream } from "effect"
import { describeOsError } from "../domain/OsError.js"
import { formatPeer, type PeerAddress } from "../domain/Peer.js"

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

export class ListenError extends Data.TaggedError("ListenError")<{
  readonly host: string
  readonly port: number
  /** The system error; its `code` (EADDRINUSE, EACCES, EADDRNOTAVAIL) picks the message. */
  readonly cause: unknown
}> {
  override get message() {
    return `cannot listen on ${formatPeer({ host: this.host, port: this.port })}: ${describeOsError(this.cause)}`
  }

  /** As node would fail, for simulated and virtual listeners: a system error with this `code`. */
  static ofCode(options: { readonly host: string; readonly port: number }, code: string): ListenError {
    return new ListenError({ host: options.host, port: options.port, cause: Object.assign(new Error(code), { code }) })
  }
}

export type DuplexEvent = "readable" | "drain" | "close"

/** A connected byte stream, paused: the subset of a `net.Socket` that the peer wire needs. */
export interface Duplex {
  readonly remote: PeerAddress
  /**
   * The next buffered bytes: exactly `size` of them when given, else all or part of what is
   * buffered. Null when nothing (or fewer than `size`) is buffered, except at the end, which
   * gives what is left. The bytes are the caller's (but see `transientReads`).
   */
  read(size?: number): Uint8Array | null
  /**
   * When true, the bytes of a `read()` without a size are a view of a buffer the duplex reuses:
   * valid until the reader reads again or yields to the event loop. A reader that keeps them, or
   * hands them to another fiber, copies them first.
   */
  readonly transientReads?: boolean
  readonly readableLength: number
  /** The peer ended its side or the connection is destroyed: no more bytes will arrive. */
  readonly readEnded: boolean
  /** The first error on the connection (a reset, an I/O error), if any. */
  readonly failure: PeerError | undefined
  /** Queues the bytes; false when the caller should wait for "drain" before writing more. */
  write(bytes: Uint8Array): boolean
  /** Queues the buffers as one gathered write (no copy into one buffer), where the duplex can. */
  readonly writeGathered?: (chunks: ReadonlyArray<Uint8Array>) => boolean
  readonly needsDrain: boolean
  /** Destroyed or ended: nothing can be written any more. */
  readonly closed: boolean
  /** "readable": bytes arrived or the read side ended. "close": the connection is over. */
  on(event: DuplexEvent, f: () => void): void
  off(event: DuplexEvent, f: () => void): void
  destroy(): void
}

export interface DialOptions {
  /** Until the connection is established; default 5 seconds. */
  readonly timeout?: Duration.DurationInput
  /** Source address to dial from (e.g. another 127.x). */
  readonly localAddress?: string
  /** The peer said it speaks uTP: a transport that has uTP tries it first, unless it learned what works for the peer. */
  readonly utpFirst?: boolean
}

export interface ListenOptions {
  readonly host: string
  /** 0: any free port (see `Listening.port`). */
  readonly port: number
}

export interface Listening {
  readonly host: string
  /** The bound port (the chosen one when asked for port 0). */
  readonly port: number
  /**
   * Accepted connections, paused. Connections the consumer does not take up quickly enough (more
   * than `backlog` waiting) are closed on arrival. Consume it once.
   */
  readonly connections: Stream.Stream<Duplex>
}

export class Transport extends Context.Tag("bt/Transport")<
  Transport,
  {
    /** Connects; fails with ConnectionRefused, ConnectTimeout or Io. Destroyed when the scope closes. */
    readonly dial: (address: PeerAddress, options?: DialOptions) => Effect.Effect<Duplex, PeerError, Scope.Scope>
    /** Listens until the scope closes; then it stops accepting and closes the connections nobody took. */
    readonly listen: (options: ListenOptions) => Effect.Effect<Listening, ListenError, Scope.Scope>
  }
>() {
  // sync, not succeed: the TCP functions are defined further down this module
  static readonly Tcp: Layer.Layer<Transport> = Layer.sync(Transport, () => ({ dial: dialTcp, listen: listenTcp }))
}

export const defaultDialTimeout = Duration.seconds(5)

/** Accepted connections that may wait for the consumer; a burst beyond it is refused. */
export const backlog = 64

/** The queue of accepted connections behind `Listening.connections`; the ones left in it are destroyed with the scope. */
export const acceptQueue: Effect.Effect<Queue.Queue<Duplex>, never, Scope.Scope> = Effect.acquireRelease(
  Queue.bounded<Duplex>(backlog),
  (queue) =>
    Effect.flatMap(Queue.takeAll(queue), (left) =>
      Effect.sync(() => {
        for (const duplex of left) duplex.destroy()
      })).pipe(Effect.zipRight(Queue.shutdown(queue)))
)

// ---------------------------------------------------------------------------------------------
// TCP

/**
 * Per-connection buffering both ways (node sets read-ahead and write buffer alike). A large
 * read-ahead lets one read take all that arrived meanwhile, which cuts the per-read overhead at
 * bulk rates; a large write buffer takes a seeder's batch of blocks without waiting for a drain.
 * A peer that stops reading still holds at most about this much.
 */
const highWaterMark = 1024 * 1024

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

/** A paused socket as a Duplex; it records the first error at once, so 'error' never goes unhandled. */
class TcpDuplex implements Duplex {
  failure: PeerError | undefined = undefined

  constructor(readonly socket: net.Socket, readonly remote: PeerAddress) {
    const peer = formatPeer(remote)
    socket.on("error", (err) => {
      this.failure ??= fromNodeError(peer, err)
    })
    socket.setNoDelay(true)
  }

  read(size?: number): Uint8Array | null {
    const bytes: Buffer | null = this.socket.read(size)
    // A plain view, not the Buffer: Buffer#slice would not copy.
    return bytes === null ? null : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
  get readableLength() {
    return this.socket.readableLength
  }
  get readEnded() {
    return this.socket.readableEnded || this.socket.destroyed
  }
  write(bytes: Uint8Array) {
    return this.socket.write(bytes)
  }
  readonly writeGathered = (chunks: ReadonlyArray<Uint8Array>) => {
    // Corked, node hands the buffers to one writev.
    this.socket.cork()
    let ok = true
    for (const chunk of chunks) ok = this.socket.write(chunk)
    this.socket.uncork()
    return ok
  }
  get needsDrain() {
    return this.socket.writableNeedDrain
  }
  get closed() {
    return this.socket.destroyed || this.socket.writableEnded
  }
  // node's 'end' comes after the last 'readable'; readers learn of it as a readable event.
  on(event: DuplexEvent, f: () => void) {
    this.socket.on(event, f)
    if (event === "readable") this.socket.on("end", f)
  }
  off(event: DuplexEvent, f: () => void) {
    this.socket.off(event, f)
    if (event === "readable") this.socket.off("end", f)
  }
  destroy() {
    this.socket.destroy()
  }
}

/**
 * Bytes a TCP connection has read so far; undefined for a Duplex of another transport. A peer
 * that takes the connection and closes it before sending a byte may speak only uTP (libtorrent
 * with TCP off still listens on TCP, and drops what it accepts).
 */
export const tcpBytesRead = (duplex: Duplex): number | undefined => (duplex instanceof TcpDuplex ? duplex.socket.bytesRead : undefined)

/** Bytes of a dialled connection's reusable read buffer (one per connection). */
const readBufferSize = 256 * 1024

/**
 * A dialled socket read into one reused buffer (node's `onread`): no allocation per read, so a
 * download at full speed makes no garbage and touches no fresh memory for its socket data (a
 * Buffer per read cost page faults and collections). A read's bytes are offered to the "readable"
 * callbacks in place; what they leave stays a view of the buffer, held valid by reading no further
 * until it is taken (the kernel's receive window buffers meanwhile). Copies are made only when a
 * sized read needs more than one read's bytes.
 */
class TcpReusedBufferDuplex extends TcpDuplex {
  readonly transientReads = true
  /** The unread rest of the last read: a view of the buffer, while reading is stopped. */
  private held: Uint8Array | undefined = undefined
  /** Whether node reads on (it stops when `onread` returns false, until `resume`). */
  private reading = true
  /** Copies gathered for a sized read that spans reads, oldest first. */
  private readonly kept: Array<Uint8Array> = []
  private keptBytes = 0
  private readonly readableHandlers = new Set<() => void>()

  constructor(remote: PeerAddress, connect: (onread: net.OnReadOpts) => net.Socket) {
    let self: TcpReusedBufferDuplex | undefined
    const onread: net.OnReadOpts = {
      buffer: Buffer.allocUnsafe(readBufferSize),
      callback: (n, buf) => self!.arrived(new Uint8Array(buf.buffer, buf.byteOffset, n))
    }
    super(connect(onread), remote)
    self = this
    this.socket.on("end", () => this.notify())
  }

  private notify() {
    for (const f of [...this.readableHandlers]) f()
  }

  /** One read, offered in place; false (stop reading) while some of it is left. */
  private arrived(bytes: Uint8Array): boolean {
    this.held = bytes.length === 0 ? undefined : bytes
    this.notify()
    this.reading = this.held === undefined
    return this.reading
  }

  /** The held bytes are taken: read on (node reads again on a later turn of the event loop). */
  private release() {
    this.held = undefined
    if (!this.reading) {
      this.reading = true
      this.socket.resume()
    }
  }

  override read(size?: number): Uint8Array | null {
    if (size !== undefined) return this.readExactly(size)
    const kept = this.kept.shift()
    if (kept !== undefined) {
      this.keptBytes -= kept.length
      return kept
    }
    const held = this.held
    if (held === undefined) return null
    this.release()
    return held
  }

  /** `size` bytes (fewer only at the end), copied; the rest of the read stays held. */
  private readExactly(size: number): Uint8Array | null {
    const heldBytes = this.held?.length ?? 0
    if (this.keptBytes + heldBytes < size && !this.readEnded) {
      if (this.held !== undefined) {
        this.kept.push(this.held.slice())
        this.keptBytes += heldBytes
        this.release()
      }
      return null
    }
    const out = new Uint8Array(Math.min(size, this.keptBytes + heldBytes))
    let at = 0
    while (at < out.length && this.kept.length > 0) {
      const head = this.kept[0]!
      const n = Math.min(head.length, out.length - at)
      out.set(head.subarray(0, n), at)
      at += n
      this.keptBytes -= n
      if (n === head.length) this.kept.shift()
      else this.kept[0] = head.subarray(n)
    }
    if (at < out.length) {
      const held = this.held!
      out.set(held.subarray(0, out.length - at), at)
      if (held.length === out.length - at) this.release()
      else this.held = held.subarray(out.length - at)
    }
    return out.length === 0 ? null : out
  }

  override get readableLength() {
    return this.keptBytes + (this.held?.length ?? 0)
  }

  override on(event: DuplexEvent, f: () => void) {
    if (event === "readable") this.readableHandlers.add(f)
    else this.socket.on(event, f)
  }

  override off(event: DuplexEvent, f: () => void) {
    if (event === "readable") this.readableHandlers.delete(f)
    else this.socket.off(event, f)
  }
}

const connected = (duplex: TcpDuplex): Effect.Effect<void, PeerError> =>
  Effect.async((resume) => {
    const { socket } = duplex
    const off = () => {
      socket.off("connect", onConnect)
      socket.off("close", onClose)
    }
    const onConnect = () => {
      off()
      resume(Effect.void)
    }
    const onClose = () => {
      off()
      const peer = formatPeer(duplex.remote)
      resume(Effect.fail(duplex.failure ?? new PeerError({ peer, reason: "Closed", detail: "while connecting" })))
    }
    socket.on("connect", onConnect)
    socket.on("close", onClose)
    return Effect.sync(off)
  })

const dialTcp = (address: PeerAddress, options: DialOptions = {}): Effect.Effect<Duplex, PeerError, Scope.Scope> =>
  Effect.gen(function* () {
    const peer = formatPeer(address)
    const duplex = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const target = { host: address.host, port: address.port, highWaterMark }
          const { localAddress } = options
          return new TcpReusedBufferDuplex(address, (onread) =>
            net.connect(localAddress === undefined ? { ...target, onread } : { ...target, onread, localAddress }))
        },
        catch: (cause) => new PeerError({ peer, reason: "Io", detail: String(cause), cause })
      }),
      (duplex) => Effect.sync(() => duplex.destroy())
    )
    yield* connected(duplex).pipe(
      Effect.timeoutFail({
        duration: options.timeout ?? defaultDialTimeout,
        onTimeout: () => new PeerError({ peer, reason: "ConnectTimeout" })
      }),
      Effect.onError(() => Effect.sync(() => duplex.destroy()))
    )
    return duplex
  })

const listenTcp = (options: ListenOptions): Effect.Effect<Listening, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const accepted = yield* acceptQueue
    const server = yield* Effect.acquireRelease(
      Effect.async<net.Server, ListenError>((resume) => {
        const server = net.createServer({ highWaterMark, pauseOnConnect: true }, (socket) => {
          const duplex = new TcpDuplex(socket, { host: socket.remoteAddress ?? "unknown", port: socket.remotePort ?? 0 })
          if (!Queue.unsafeOffer(accepted, duplex)) duplex.destroy()
        })
        const onError = (cause: Error) => resume(Effect.fail(new ListenError({ host: options.host, port: options.port, cause })))
        server.once("error", onError)
        server.listen(options.port, options.host, () => {
          server.off("error", onError)
          server.on("error", () => {}) // accept errors (EMFILE...) are transient; the server keeps listening
          resume(Effect.succeed(server))
        })
      }),
      (server) => Effect.sync(() => server.close())
    )
    const { port } = server.address() as net.AddressInfo
    return { host: options.host, port, connections: Stream.fromQueue(accepted) }
  })
