/**
 * A scriptable BitTorrent peer on 127.0.0.1 for tests, written on raw `node:net` and the pure Wire
 * codec (not on PeerWire, which it tests). `makeFakePeer` listens and answers handshakes, then runs
 * a handler per connection; `dialFakePeer` connects to us (the inbound path); `seeder` is a
 * ready-made handler serving a payload, with hooks for misbehaviour (missing pieces, corrupt or
 * withheld blocks, a drop mid-piece).
 *
 * The fake reads in flowing mode (it only receives small messages from the client under test) and
 * its sends wait for 'drain', so a client that does not read throttles it.
 */
import * as net from "node:net"
import { Clock, Data, Deferred, Duration, Effect, Either, Exit, FiberSet, Mailbox, Option, Ref, Scope, Stream } from "effect"
import type { PeerAddress } from "../../src/domain/Peer.js"
import {
  decodeHandshake,
  encodeHandshake,
  encodeMessages,
  FrameDecoder,
  type Handshake,
  handshakeLength,
  Message,
  type Request,
  WireError
} from "../../src/domain/Wire.js"

export class FakePeerError extends Data.TaggedError("FakePeerError")<{ readonly reason: string }> {
  override get message() {
    return `fake peer: ${this.reason}`
  }
}

/** One socket of the fake, from either side. */
export interface FakeSocket {
  /** The other side's handshake once it has arrived; fails if the socket closes first or it is not a handshake. */
  readonly handshake: Effect.Effect<Handshake, FakePeerError>
  /** The client's messages after its handshake; ends when it closes its side. */
  readonly messages: Stream.Stream<Message, WireError>
  readonly send: (messages: ReadonlyArray<Message>) => Effect.Effect<void, FakePeerError>
  /** Writes bytes as they are (a broken frame, a split message); waits for 'drain' like `send`. */
  readonly sendRaw: (bytes: Uint8Array) => Effect.Effect<void, FakePeerError>
  /** Half-close (FIN) after the pending writes. */
  readonly end: Effect.Effect<void>
  /** Abrupt close. */
  readonly destroy: Effect.Effect<void>
  /** Resolves when the socket has closed (either side). */
  readonly closed: Effect.Effect<void>
  readonly bytesReceived: () => number
  /** Bytes handed to the socket (accepted by node, not necessarily delivered). */
  readonly bytesSent: () => number
}

export interface FakeConnection extends FakeSocket {
  /** 0 for the first accepted connection, then 1, ... */
  readonly index: number
  /** The client's handshake. */
  readonly remote: Handshake
  /** What the client had sent when we answered its handshake (68 if it waited for ours, as it must). */
  readonly bytesReceivedBeforeAnswer: number
}

export interface FakePeerOptions {
  /** The info hash we answer with; default: the client's own. */
  readonly infoHash?: Uint8Array
  /** Default `-FK0001-` and twelve 0x42 bytes. */
  readonly peerId?: Uint8Array
  /** Default all zero. */
  readonly reserved?: Uint8Array
  /** "never": accept, read the client's handshake and stay silent (a stalled handshake). Default "answer". */
  readonly handshake?: "answer" | "never"
  /** Wait this long (real or test clock) before answering the handshake. */
  readonly answerDelay?: Duration.DurationInput
  /** Frame limit for decoding the client's messages; default 1 MiB. */
  readonly maxFrameLength?: number
  /** Closes its first this many connections on arrival, before a byte (a TCP listener that drops what it accepts). */
  readonly dropFirst?: number
  /**
   * Runs per connection after the handshakes. When it returns, the fake half-closes the connection
   * (FIN); when it fails, the socket is destroyed. Default: read until the client closes.
   */
  readonly handler?: (connection: FakeConnection) => Effect.Effect<void, unknown, Scope.Scope>
}

export interface FakePeer {
  readonly address: PeerAddress
  /** Every client handshake received so far, in order. */
  readonly handshakes: Effect.Effect<ReadonlyArray<Handshake>>
  /** Waits for the next client handshake (not yet taken by an earlier call). */
  readonly nextHandshake: Effect.Effect<Handshake>
  /** Connections accepted so far. */
  readonly connections: Effect.Effect<number>
}

export const fakePeerId = Uint8Array.from([...Buffer.from("-FK0001-", "latin1"), ...new Array<number>(12).fill(0x42)])

/**
 * A peer id of its own for each fake peer of a swarm: all of them live on 127.0.0.1, and the
 * client takes one peer id at one host for one peer.
 */
let fakePeersMade = 0
export const distinctPeerId = (): Uint8Array => {
  const id = Uint8Array.from(fakePeerId)
  id[19] = ++fakePeersMade % 256
  return id
}

/** Wires up a connected socket: handshake bytes first, then decoded messages. */
const wire = (socket: net.Socket, maxFrameLength: number): Effect.Effect<FakeSocket> =>
  Effect.gen(function* () {
    const handshake = yield* Deferred.make<Handshake, FakePeerError>()
    const mailbox = yield* Mailbox.make<Message, WireError>()
    const closed = yield* Deferred.make<void>()
    const decoder = new FrameDecoder(maxFrameLength)
    let pending: Buffer | undefined = Buffer.alloc(0)
    let received = 0
    let sent = 0
    const finish = () => {
      Deferred.unsafeDone(handshake, Exit.fail(new FakePeerError({ reason: "closed before the handshake" })))
      mailbox.unsafeDone(Exit.void)
    }
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length
      // plain views, not Buffers (whose slice() would not copy), as PeerWire delivers them
      let rest = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      if (pending !== undefined) {
        pending = Buffer.concat([pending, rest])
        if (pending.length < handshakeLength) return
        const decoded = decodeHandshake(pending)
        Deferred.unsafeDone(
          handshake,
          Either.isRight(decoded) ? Exit.succeed(decoded.right) : Exit.fail(new FakePeerError({ reason: decoded.left.rule }))
        )
        rest = new Uint8Array(pending.buffer, pending.byteOffset + handshakeLength, pending.length - handshakeLength)
        pending = undefined
      }
      const r = decoder.push(rest)
      if (Either.isLeft(r)) {
        mailbox.unsafeDone(Exit.fail(r.left))
        socket.destroy()
      } else mailbox.unsafeOfferAll(r.right)
    })
    socket.on("end", finish)
    socket.on("close", () => {
      finish()
      Deferred.unsafeDone(closed, Exit.void)
    })
    if (socket.destroyed) finish()

    const sendRaw = (bytes: Uint8Array) =>
      Effect.async<void, FakePeerError>((resume) => {
        if (socket.destroyed || socket.writableEnded) return resume(Effect.fail(new FakePeerError({ reason: "socket closed" })))
        sent += bytes.length
        if (socket.write(bytes)) return resume(Effect.void)
        const onDrain = () => {
          socket.off("close", onClose)
          resume(Effect.void)
        }
        const onClose = () => {
          socket.off("drain", onDrain)
          resume(Effect.fail(new FakePeerError({ reason: "socket closed" })))
        }
        socket.once("drain", onDrain)
        socket.once("close", onClose)
        return Effect.sync(() => {
          socket.off("drain", onDrain)
          socket.off("close", onClose)
        })
      })

    return {
      handshake: Deferred.await(handshake),
      messages: Mailbox.toStream(mailbox),
      send: (messages) => sendRaw(encodeMessages(messages)),
      sendRaw,
      end: Effect.sync(() => void socket.end()),
      destroy: Effect.sync(() => void socket.destroy()),
      closed: Deferred.await(closed),
      bytesReceived: () => received,
      bytesSent: () => sent
    } satisfies FakeSocket
  })

/** Reads a fake socket's messages one at a time; `None` once the connection is closed. */
export const messageReader = (socket: Pick<FakeSocket, "messages">) =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(socket.messages)
    const buffered: Array<Message> = []
    const next: Effect.Effect<Option.Option<Message>> = Effect.suspend(() =>
      buffered.length > 0
        ? Effect.succeed(Option.some(buffered.shift()!))
        : pull.pipe(
            Effect.flatMap((chunk) => {
              buffered.push(...chunk)
              return next
            }),
            Effect.orElseSucceed(() => Option.none<Message>())
          )
    )
    return next
  })

export const makeFakePeer = (options: FakePeerOptions = {}): Effect.Effect<FakePeer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const handshakes = yield* Ref.make<ReadonlyArray<Handshake>>([])
    const queue = yield* Mailbox.make<Handshake>()
    const count = yield* Ref.make(0)
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const sockets = new Set<net.Socket>()
    const maxFrame = options.maxFrameLength ?? 1 << 20
    const handler = options.handler ?? ((c: FakeConnection) => Stream.runDrain(c.messages))

    const serve = (socket: net.Socket) =>
      Effect.gen(function* () {
        const index = yield* Ref.getAndUpdate(count, (n) => n + 1)
        if (index < (options.dropFirst ?? 0)) return socket.destroy()
        const s = yield* wire(socket, maxFrame)
        const remote = yield* s.handshake
        yield* Ref.update(handshakes, (hs) => [...hs, remote])
        yield* queue.offer(remote)
        if (options.handshake === "never") return yield* Effect.never
        if (options.answerDelay !== undefined) yield* Effect.sleep(options.answerDelay)
        const bytesReceivedBeforeAnswer = s.bytesReceived()
        yield* s.sendRaw(
          encodeHandshake({
            reserved: options.reserved ?? new Uint8Array(8),
            infoHash: options.infoHash ?? remote.infoHash,
            peerId: options.peerId ?? fakePeerId
          })
        )
        yield* Effect.scoped(handler({ ...s, index, remote, bytesReceivedBeforeAnswer }))
        yield* s.end
      }).pipe(Effect.catchAllCause(() => Effect.sync(() => socket.destroy())))

    const server = yield* Effect.acquireRelease(
      Effect.async<net.Server>((resume) => {
        const srv = net.createServer((socket) => {
          socket.on("error", () => {}) // the client under test may reset; the handler sees the close
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          run(serve(socket))
        })
        srv.listen(0, "127.0.0.1", () => resume(Effect.succeed(srv)))
      }),
      (srv) =>
        Effect.sync(() => {
          for (const s of sockets) s.destroy()
          srv.close()
        })
    )
    const port = (server.address() as net.AddressInfo).port
    return {
      address: { host: "127.0.0.1", port },
      handshakes: Ref.get(handshakes),
      nextHandshake: queue.take.pipe(Effect.orDie),
      connections: Ref.get(count)
    }
  })

export interface DialOptions {
  readonly infoHash: Uint8Array
  readonly peerId?: Uint8Array
  readonly reserved?: Uint8Array
  /** Sent instead of a handshake (e.g. an MSE key exchange), to test how the listener rejects it. */
  readonly firstBytes?: Uint8Array
  readonly maxFrameLength?: number
}

/** Connects to `address` as a remote peer would and sends its handshake first; destroyed with the scope. */
export const dialFakePeer = (address: PeerAddress, options: DialOptions): Effect.Effect<FakeSocket, FakePeerError, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* Effect.acquireRelease(
      Effect.async<net.Socket, FakePeerError>((resume) => {
        const s = net.connect({ host: address.host, port: address.port })
        s.once("connect", () => {
          s.off("error", onError)
          s.on("error", () => {})
          resume(Effect.succeed(s))
        })
        const onError = (e: Error) => resume(Effect.fail(new FakePeerError({ reason: `dial failed: ${e.message}` })))
        s.once("error", onError)
      }),
      (s) => Effect.sync(() => s.destroy())
    )
    const s = yield* wire(socket, options.maxFrameLength ?? 1 << 20)
    yield* s.sendRaw(
      options.firstBytes ??
        encodeHandshake({
          reserved: options.reserved ?? new Uint8Array(8),
          infoHash: options.infoHash,
          peerId: options.peerId ?? fakePeerId
        })
    )
    return s
  })

export interface SeederOptions {
  /** The whole payload and its piece length. */
  readonly data: Uint8Array
  readonly pieceLength: number
  /** Which pieces this peer has (announced in its bitfield and served); default all. */
  readonly has?: (index: number) => boolean
  /**
   * What to send for a request, given the true block: the block (default), other bytes (a corrupt
   * block), or undefined to ignore the request (a stalling peer).
   */
  readonly block?: (request: Request, data: Uint8Array) => Uint8Array | undefined
  /** Destroy the connection abruptly after sending this many blocks (a drop mid-piece). */
  readonly closeAfterBlocks?: number
  /** Default true; false keeps the client choked forever. */
  readonly unchoke?: boolean
  /** Send blocks at this steady rate (by the clock: real time under it.live); default as fast as the socket goes. */
  readonly bytesPerSecond?: number
}

/**
 * A handler that seeds `data`: sends its bitfield, unchokes an interested client and answers
 * requests for the pieces it has. Runs until the client closes.
 */
export const seeder =
  (options: SeederOptions) =>
  (c: FakeConnection): Effect.Effect<void, unknown> => {
    const pieceCount = Math.ceil(options.data.length / options.pieceLength)
    const has = options.has ?? (() => true)
    const bits = new Uint8Array(Math.ceil(pieceCount / 8))
    for (let i = 0; i < pieceCount; i++) if (has(i)) bits[i >> 3]! |= 0x80 >> (i & 7)
    let served = 0
    // Pacing: block n goes out no earlier than (bytes before it) / rate after the first, so the rate never drifts.
    let pacedBytes = 0
    let pacedFrom: number | undefined
    const pace = (bytes: number) =>
      options.bytesPerSecond === undefined
        ? Effect.void
        : Effect.flatMap(Clock.currentTimeMillis, (now) => {
            pacedFrom ??= now
            const due = pacedFrom + (pacedBytes / options.bytesPerSecond!) * 1000
            pacedBytes += bytes
            return due > now ? Effect.sleep(due - now) : Effect.void
          })
    const answer = (m: Message): Effect.Effect<void, FakePeerError> => {
      if (m._tag === "Interested") return options.unchoke === false ? Effect.void : c.send([Message.unchoke])
      if (m._tag !== "Request" || !has(m.index)) return Effect.void
      const start = m.index * options.pieceLength + m.begin
      const truth = options.data.subarray(start, Math.min(start + m.length, options.data.length))
      const block = options.block === undefined ? truth : options.block(m, truth)
      if (block === undefined) return Effect.void
      if (options.closeAfterBlocks !== undefined && served >= options.closeAfterBlocks) return c.destroy
      served++
      return Effect.zipRight(pace(block.length), c.send([Message.piece(m.index, m.begin, block)]))
    }
    return Effect.zipRight(
      bits.some((b) => b !== 0) ? c.send([Message.bitfield(bits)]) : Effect.void,
      Stream.runForEach(c.messages, answer)
    )
  }
