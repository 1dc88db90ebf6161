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
import { equalBytes, toHex } from "../domain/Bytes.js"
import { formatPeer, type PeerAddress, type PeerHints } from "../domain/Peer.js"
import * as Wire from "../domain/Wire.js"
import { CryptoMethod, MseError } from "../domain/Mse.js"
import { closedError, type Link, read, readEvents, when, write } from "./DuplexIo.js"
import * as Mse from "./Mse.js"
import type { TransportKind } from "./DualTransport.js"
import { type Duplex, PeerError, Transport } from "./Transport.js"
import { utpStats } from "./Utp.js"

export { type Encryption, type EncryptionPolicy, skeyLookup } from "./Mse.js"
export { PeerError, type PeerErrorReason } from "./Transport.js"

export interface PeerConnection {
  readonly address: PeerAddress
  /** The remote handshake: its peer id and reserved (extension) bytes. */
  readonly remote: Wire.Handshake
  /** Whether MSE was negotiated, and with which method for the payload. */
  readonly encryption: Mse.Encryption
  /** What carries it: uTP, or a byte stream ("tcp": TCP, or the in-memory network's). */
  readonly transport: TransportKind
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
  /**
   * Other ids the peer may answer with: a hybrid's v2 swarm id, to which a v2 peer upgrades a
   * connection made under the v1 id when we set the v2 bit (BEP 52).
   */
  readonly alsoAccept?: ReadonlyArray<Uint8Array>
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
  /** Default "allow": the plain handshake first, MSE when the peer drops it. */
  readonly encryption?: Mse.EncryptionPolicy
  /**
   * What a source told of the peer: `utp` dials uTP first where the transport has it, and
   * `encryption` makes "allow" dial as "prefer" does (MSE first, the plain handshake the fallback).
   */
  readonly hints?: PeerHints
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
  /**
   * The info hash an MSE initiator asks for by HASH('req2', info hash) (`skeyLookup`); without
   * it, encrypted connections are refused.
   */
  readonly skey?: (req2: Uint8Array) => Uint8Array | undefined
  /**
   * Default "allow": plain and MSE connections both taken (plaintext selected when offered);
   * "prefer" selects RC4 when offered; "require" refuses plaintext; "disable" refuses MSE.
   */
  readonly encryption?: Mse.EncryptionPolicy
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

const handshakeTimeout = (peer: string, duration: Duration.DurationInput | undefined) =>
  Effect.timeoutFail({
    duration: duration ?? Duration.seconds(10),
    onTimeout: () => new PeerError({ peer, reason: "HandshakeTimeout" })
  })

/** The connection after the handshakes, the same whichever side dialled. */
const transportOf = (duplex: Duplex): TransportKind => (utpStats(duplex) === undefined ? "tcp" : "utp")

const fromLink = (link: Link, address: PeerAddress, remote: Wire.Handshake, pieceCount: number, encryption: Mse.Encryption, transport: TransportKind) =>
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
      encryption,
      transport,
      messages: Stream.repeatEffectChunkOption(pull),
      consume,
      send: (messages) =>
        messages.length === 0 ? Effect.void : sending.withPermits(1)(Effect.suspend(() => write(link, Wire.encodeFrames(messages)))),
      sendNow: (messages) => {
        if (messages.length > 0 && !link.duplex.closed) link.duplex.write(Wire.encodeMessages(messages))
      }
    }
  })

const asPeerError = (peer: string) => (e: PeerError | MseError): PeerError =>
  e instanceof MseError ? new PeerError({ peer, reason: "Protocol", detail: e.message, cause: e }) : e

/** A peer that closes on our plain handshake may want MSE (libtorrent and Transmission do, when they require it). */
const droppedPlaintext = (e: PeerError) => e.reason === "Closed"
/** A failed MSE attempt is worth a plain one unless the peer cannot be reached or serves another torrent. */
const failedEncrypted = (e: PeerError) =>
  e.reason !== "ConnectionRefused" && e.reason !== "ConnectTimeout" && e.reason !== "InfoHashMismatch"

const make = (transport: Transport["Type"]): PeerWire["Type"] => {
  /** One dial, MSE (`encrypted`: RC4 alone when `require`d) or not, then the BitTorrent handshake. */
  const connectOnce = (address: PeerAddress, options: ConnectOptions, encrypted: boolean) =>
    Effect.gen(function* () {
      const duplex = yield* transport.dial(address, {
        timeout: options.connectTimeout ?? Duration.seconds(5),
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        ...(options.hints?.utp === true ? { utpFirst: true } : {})
      })
      const peer = formatPeer(address)
      return yield* Effect.gen(function* () {
        const wire: Mse.Encrypted = encrypted
          ? yield* Mse.initiate(duplex, { infoHash: options.infoHash, allowPlaintext: options.encryption !== "require" })
          : { duplex, encryption: "plaintext" }
        const link: Link = { duplex: wire.duplex, peer }
        // Our handshake alone: aria2 drops a connection whose first read holds more than 68 bytes.
        yield* write(
          link,
          Wire.encodeHandshake({ reserved: options.reserved ?? new Uint8Array(8), infoHash: options.infoHash, peerId: options.peerId })
        )
        return { link, remote: yield* readHandshake(link), encryption: wire.encryption }
      }).pipe(
        Effect.mapError(asPeerError(peer)),
        handshakeTimeout(peer, options.handshakeTimeout),
        Effect.flatMap(({ encryption, link, remote }) =>
          [options.infoHash, ...(options.alsoAccept ?? [])].some((id) => equalBytes(remote.infoHash, id))
            ? fromLink(link, address, remote, options.pieceCount, encryption, transportOf(duplex))
            : Effect.fail(
              new PeerError({ peer, reason: "InfoHashMismatch", expected: toHex(options.infoHash), received: toHex(remote.infoHash) })
            )
        ),
        Effect.onError(() => Effect.sync(() => duplex.destroy()))
      )
    })
  const connect = Effect.fn("PeerWire.connect")(function* (address: PeerAddress, options: ConnectOptions) {
    const plain = connectOnce(address, options, false)
    const encrypted = connectOnce(address, options, true)
    switch (dialPolicy(options)) {
      case "disable":
        return yield* plain
      case "require":
        return yield* encrypted
      case "allow":
        return yield* Effect.catchIf(plain, droppedPlaintext, () => encrypted)
      case "prefer":
        return yield* Effect.catchIf(encrypted, failedEncrypted, () => plain)
    }
  })
  return { connect, accept }
}

/** How to dial: the policy, except that "allow" dials a peer told to take MSE as "prefer" does. */
export const dialPolicy = (options: Pick<ConnectOptions, "encryption" | "hints">): Mse.EncryptionPolicy => {
  const policy = options.encryption ?? "allow"
  return policy === "allow" && options.hints?.encryption === true ? "prefer" : policy
}

/** What an inbound connection's receiver selects among what the initiator provides. */
const selectionFor = (policy: Mse.EncryptionPolicy): ReadonlyArray<CryptoMethod> => {
  switch (policy) {
    case "require":
      return [CryptoMethod.rc4]
    case "prefer":
      return [CryptoMethod.rc4, CryptoMethod.plaintext]
    default:
      return [CryptoMethod.plaintext, CryptoMethod.rc4]
  }
}

/** An inbound connection told apart by its first bytes, MSE answered if it is that; the SKEY it asked for, if any. */
const inboundWire = (
  duplex: Duplex,
  options: AcceptOptions
): Effect.Effect<Mse.Encrypted & { readonly infoHash?: Uint8Array }, PeerError | MseError> =>
  Effect.gen(function* () {
    const policy = options.encryption ?? "allow"
    const sniffed = yield* Mse.sniff(duplex)
    if (sniffed._tag === "Plain") {
      if (policy === "require") return yield* new MseError({ reason: "PlaintextRefused" })
      return { duplex: sniffed.duplex, encryption: "plaintext" as const }
    }
    if (policy === "disable") return yield* new MseError({ reason: "EncryptionRefused" })
    return yield* Mse.respond(duplex, sniffed.firstBytes, { skey: options.skey ?? (() => undefined), preference: selectionFor(policy) })
  })

const accept = Effect.fn("PeerWire.accept")(function* (duplex: Duplex, options: AcceptOptions) {
  const address = duplex.remote
  const peer = formatPeer(address)
  yield* Effect.addFinalizer(() => Effect.sync(() => duplex.destroy()))
  return yield* Effect.gen(function* () {
    const { encryption, link, remote, torrent } = yield* Effect.gen(function* () {
      const wire = yield* inboundWire(duplex, options)
      const link: Link = { duplex: wire.duplex, peer }
      const remote = yield* readHandshake(link)
      if (wire.infoHash !== undefined && !equalBytes(wire.infoHash, remote.infoHash)) {
        return yield* new PeerError({ peer, reason: "InfoHashMismatch", expected: toHex(wire.infoHash), received: toHex(remote.infoHash) })
      }
      const torrent = options.lookup(remote.infoHash)
      if (torrent === undefined) {
        return yield* new PeerError({ peer, reason: "Protocol", detail: `unknown info hash ${toHex(remote.infoHash)}` })
      }
      yield* write(link, Wire.encodeHandshake({ reserved: torrent.reserved, infoHash: remote.infoHash, peerId: torrent.peerId }))
      return { encryption: wire.encryption, link, remote, torrent }
    }).pipe(Effect.mapError(asPeerError(peer)), handshakeTimeout(peer, options.handshakeTimeout))
    const connection = yield* fromLink(link, address, remote, torrent.pieceCount, encryption, transportOf(duplex))
    return { ...connection, infoHash: remote.infoHash } satisfies InboundConnection
  }).pipe(Effect.onError(() => Effect.sync(() => duplex.destroy())))
})
