/**
 * Magnet links: find peers for an info hash (the link's own and a tracker's), and fetch the info
 * dict from them over the metadata extension (BEP 9 over BEP 10).
 *
 * Message order on a magnet connection (the classic contract), which strict peers check: after the
 * handshakes, our extension handshake is our first message, our metadata requests come next, and
 * nothing else (no keep-alive, bitfield or interested) is sent before them.
 *
 * A v2 info dict (BEP 52) comes without its `piece layers`, which live beside it in a .torrent: for
 * a v2 link they are then asked of the same peer (`hash request`s, each answer checked against its
 * file's `pieces root`), so that the torrent starts exactly as from its .torrent.
 */
import { Data, Duration, Effect, Either, identity, Option, Schedule, type Scope, Sink, Stream } from "effect"
import { equalBytes, toHex } from "../domain/Bytes.js"
import {
  decodeExtendedHandshake,
  decodeMetadataMessage,
  encodeExtendedHandshake,
  encodeMetadataMessage,
  type ExtendedHandshake,
  type ExtensionError,
  extensionHandshakeId,
  MetadataAssembler,
  maxMetadataSize,
  metadataFetchHandshake,
  ourUtMetadataId,
  peerUtMetadataId
} from "../domain/Extension.js"
import { LayerFetch } from "../domain/LayerFetch.js"
import { type Info, parseInfo, parseInfoAwaitingLayers } from "../domain/Metainfo.js"
import { formatPeer, type PeerAddress } from "../domain/Peer.js"
import { type FileLayer, missingLayers, pieceLayersDict } from "../domain/PieceLayers.js"
import { type Extended, makeReserved, type Message, Message as Msg, supportsExtensions } from "../domain/Wire.js"
import { type EncryptionPolicy, type PeerConnection, type PeerError, PeerWire } from "../services/PeerWire.js"
import { Tracker, type TrackerError } from "../services/Tracker.js"

/** What a magnet link gives to start from (`MagnetLink` fits). */
export interface MagnetSource {
  readonly infoHash: Uint8Array
  /** Tracker URLs in link order; each is tried in turn until one answers. */
  readonly trackers: ReadonlyArray<string>
  /** Peers given in the link (`x.pe`), dialled first. */
  readonly peers: ReadonlyArray<PeerAddress>
  /** A v2 link's SHA-256 info hash: we then say we speak v2, and fetch the piece layers. */
  readonly infoHashV2?: Uint8Array
}

export interface MetadataOptions {
  readonly peerId: Uint8Array
  /** The port announced to trackers. */
  readonly port: number
  /** Peers tried at once (default 4). */
  readonly concurrency?: number
  /** Bound on one peer, from dialling to the verified metadata (default 30 s). */
  readonly peerTimeout?: Duration.DurationInput
  /** MSE/PE for the metadata connections (default "allow": plaintext first). */
  readonly encryption?: EncryptionPolicy
  /** Bound on fetching a hybrid's piece layers from one peer, after which it goes without (default 10 s). */
  readonly hybridLayersTimeout?: Duration.DurationInput
  /**
   * Dial once more a peer that closed the connection before the handshakes were through (default
   * false). Over a listening DualTransport the redial takes uTP first: a peer that listens on TCP
   * and drops what it accepts (libtorrent with TCP off) speaks uTP alone.
   */
  readonly redialDropped?: boolean
}

/** The swarm found for a magnet link: ready to pass, with an `info`, to the download engine as its source. */
export interface MagnetSwarm {
  /** The link's trackers as BEP 12 tiers, one tracker each. */
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  /** The link's peers and the tracker's, without duplicates. */
  readonly peers: ReadonlyArray<PeerAddress>
}

export interface FetchedMetadata extends MagnetSwarm {
  readonly info: Info
  /** The peer that served the metadata. */
  readonly peer: PeerAddress
}

export type MetadataPeerFailure =
  /** Dialling, the handshake or the connection failed (the cause is a PeerError). */
  | "Connection"
  /** The peer did not set the extension protocol bit. */
  | "NoExtensions"
  /** Its extension handshake offers no ut_metadata, or no metadata_size. */
  | "NoMetadata"
  /** It announced a metadata size of 0 or above the limit. */
  | "MetadataSize"
  /** It refused a metadata piece, or (v2) the hashes of a piece layer. */
  | "Rejected"
  /** Its hashes of a piece layer do not hash up to the file's pieces root (v2). */
  | "BadHashes"
  | "BadPiece"
  | "HashMismatch"
  | "Malformed"
  /** The metadata hashed right but is not a valid info dict. */
  | "InvalidInfo"
  /** We dialled ourselves (the tracker lists us too). */
  | "Self"
  | "Timeout"

/** Why one peer did not give us what we asked for. */
export class MetadataPeerError extends Data.TaggedError("MetadataPeerError")<{
  /** `ip:port`. */
  readonly peer: string
  readonly reason: MetadataPeerFailure
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    // A PeerError's message already names the peer.
    return this.reason === "Connection" && this.cause !== undefined ? this.detail : `peer ${this.peer}: ${this.detail}`
  }
}

/** No peer gave the metadata (or the handshake), with what each one did wrong. */
export class MetadataError extends Data.TaggedError("MetadataError")<{
  /** Hex. */
  readonly infoHash: string
  readonly reason: "NoPeers" | "AllPeersFailed"
  readonly failures: ReadonlyArray<MetadataPeerError>
  /** Why the announce failed, when it did. */
  readonly trackerError?: TrackerError
}> {
  override get message() {
    const tracker = this.trackerError === undefined ? "" : ` (${this.trackerError.message})`
    if (this.reason === "NoPeers") return `no peers for ${this.infoHash}${tracker}`
    const shown = this.failures.slice(0, 3).map((f) => f.message)
    if (this.failures.length > shown.length) shown.push(`and ${this.failures.length - shown.length} more`)
    return `no peer of ${this.infoHash} answered: ${shown.join("; ")}${tracker}`
  }
}

/** Reserved bytes on a magnet connection: exactly the extension protocol bit (the classic contract). */
export const magnetReserved: Uint8Array = makeReserved({ extensions: true })
/**
 * On a v2 link's connections, also the v2 bit: a hybrid's peers (libtorrent) answer hash requests
 * only from a peer that set it; they then upgrade the connection, answering with the v2 swarm id,
 * and do not set the bit themselves.
 */
const magnetReservedV2: Uint8Array = makeReserved({ extensions: true, v2: true })

/** Requests for metadata pieces in flight at once. */
const requestWindow = 8
/** Hash requests in flight at once (each asks for up to 512 hashes). */
const hashRequestWindow = 4
/** Before the info is known, size the frame limit for the largest bitfield metadata we accept could describe. */
const framePieceCount = Math.floor(maxMetadataSize / 20)
/** Before a redial: the transport learns of the dropped connection from its 'close', a turn of the event loop later. */
const redialPause = Schedule.spaced("100 millis")

const peerFailure = (peer: string, reason: MetadataPeerFailure, detail: string, cause?: unknown) =>
  new MetadataPeerError({ peer, reason, detail, ...(cause === undefined ? {} : { cause }) })

const fromPeerError = (e: PeerError) => peerFailure(e.peer, "Connection", e.message, e)

const fromExtensionError = (peer: string, e: ExtensionError) =>
  peerFailure(peer, e.reason === "HashMismatch" || e.reason === "BadPiece" || e.reason === "MetadataSize" ? e.reason : "Malformed", e.message, e)

/**
 * Sends our extension handshake (it must be our first message) and reads messages up to the
 * peer's. Gives the peer's handshake and its messages from there on (the stream may only be
 * consumed through `messages` afterwards). Fails when the peer did not set the extension bit.
 */
export const exchangeExtensionHandshake = (
  conn: PeerConnection
): Effect.Effect<{ readonly handshake: ExtendedHandshake; readonly messages: Stream.Stream<Message, PeerError> }, MetadataPeerError, Scope.Scope> =>
  Effect.gen(function* () {
    const peer = formatPeer(conn.address)
    if (!supportsExtensions(conn.remote.reserved)) {
      return yield* peerFailure(peer, "NoExtensions", `does not support the extension protocol (reserved bytes ${toHex(conn.remote.reserved)})`)
    }
    yield* conn.send([Msg.extended(extensionHandshakeId, encodeExtendedHandshake(metadataFetchHandshake))]).pipe(
      Effect.mapError(fromPeerError)
    )
    // Bitfield, have and the like may come first; the peel keeps whatever follows the handshake.
    const untilHandshake = Sink.fold<Option.Option<Extended>, Message>(Option.none(), Option.isNone, (_, m) =>
      m._tag === "Extended" && m.id === extensionHandshakeId ? Option.some(m) : Option.none()
    )
    const [found, messages] = yield* Stream.peel(conn.messages, untilHandshake).pipe(Effect.mapError(fromPeerError))
    if (Option.isNone(found)) return yield* peerFailure(peer, "Connection", "closed before its extension handshake")
    const handshake = yield* Either.mapLeft(decodeExtendedHandshake(found.value.payload), (e) => fromExtensionError(peer, e))
    return { handshake, messages }
  })

/**
 * Fetches the info dict from one connected peer and verifies it against the info hash; gives its
 * bytes and the peer's messages from there on.
 */
const fetchInfoBytes = (conn: PeerConnection, infoHash: Uint8Array) =>
  Effect.gen(function* () {
    const peer = formatPeer(conn.address)
    const { handshake, messages } = yield* exchangeExtensionHandshake(conn)
    const theirId = peerUtMetadataId(handshake)
    if (theirId === undefined) return yield* peerFailure(peer, "NoMetadata", "does not offer ut_metadata")
    if (handshake.metadataSize === undefined) return yield* peerFailure(peer, "NoMetadata", "announced no metadata_size")
    const assembler = yield* Either.mapLeft(MetadataAssembler.make(infoHash, handshake.metadataSize), (e) => fromExtensionError(peer, e))
    const request = (piece: number) => Msg.extended(theirId, encodeMetadataMessage({ _tag: "Request", piece }))
    const send = (ms: ReadonlyArray<Message>) => Effect.mapError(conn.send(ms), fromPeerError)

    let next = Math.min(requestWindow, assembler.pieceCount)
    yield* send(Array.from({ length: next }, (_, i) => request(i)))
    const onMessage = (m: Message): Effect.Effect<Uint8Array | undefined, MetadataPeerError> => {
      // Peers address ut_metadata messages to the id we chose; all else is not for this exchange.
      if (m._tag !== "Extended" || m.id !== ourUtMetadataId) return Effect.succeed(undefined)
      const decoded = decodeMetadataMessage(m.payload)
      if (Either.isLeft(decoded)) return Effect.fail(fromExtensionError(peer, decoded.left))
      const message = decoded.right
      switch (message._tag) {
        case "Reject":
          return Effect.fail(peerFailure(peer, "Rejected", `rejected the request for metadata piece ${message.piece}`))
        case "Data": {
          const added = assembler.add(message)
          if (Either.isLeft(added)) return Effect.fail(fromExtensionError(peer, added.left))
          if (added.right !== undefined || next >= assembler.pieceCount) return Effect.succeed(added.right)
          return Effect.as(send([request(next++)]), undefined)
        }
        default:
          // Their requests go unanswered: we have no metadata, and we close once we have theirs.
          return Effect.succeed(undefined)
      }
    }
    const untilComplete = Sink.foldEffect(undefined as Uint8Array | undefined, (done) => done === undefined, (_, m: Message) => onMessage(m))
    const [bytes, rest] = yield* Stream.peel(Stream.mapError(messages, fromPeerError), untilComplete)
    if (bytes === undefined) return yield* peerFailure(peer, "Connection", "closed before the metadata was complete")
    return { bytes, rest }
  })

/** Asks the peer for the piece layers of `missing`, each answer checked against its file's pieces root. */
const fetchLayers = (conn: PeerConnection, messages: Stream.Stream<Message, MetadataPeerError>, missing: ReadonlyArray<FileLayer>, pieceLength: number) =>
  Effect.gen(function* () {
    const peer = formatPeer(conn.address)
    const fetch = new LayerFetch(missing, pieceLength)
    const sendNext = Effect.mapError(Effect.suspend(() => conn.send(fetch.take(hashRequestWindow).map(Msg.hashRequest))), fromPeerError)
    yield* sendNext
    const onMessage = (m: Message): Effect.Effect<boolean, MetadataPeerError> => {
      if (m._tag !== "Hashes" && m._tag !== "HashReject") return Effect.succeed(false)
      const taken = fetch.receive(m)
      if (Either.isLeft(taken)) return Effect.fail(peerFailure(peer, taken.left.reason, taken.left.message, taken.left))
      return fetch.isComplete ? Effect.succeed(true) : Effect.as(sendNext, false)
    }
    const complete = yield* Stream.runFoldWhileEffect(messages, false, (done) => !done, (_, m) => onMessage(m))
    if (!complete) return yield* peerFailure(peer, "Connection", "closed before it sent the piece layers")
    return fetch.result()
  })

/**
 * Fetches the info dict from one connected peer, verifies it against the info hash and parses it;
 * for a v2 torrent, with the piece layers its files need (a hybrid goes without them when the peer
 * does not give them: its SHA-1 hashes check its pieces).
 */
const fetchFrom = (conn: PeerConnection, link: MagnetSource, options: MetadataOptions): Effect.Effect<Info, MetadataPeerError, Scope.Scope> =>
  Effect.gen(function* () {
    const peer = formatPeer(conn.address)
    const { bytes, rest } = yield* fetchInfoBytes(conn, link.infoHash)
    const parse = (layers?: ReadonlyMap<string, ReadonlyArray<Uint8Array>>) =>
      Either.mapLeft(layers === undefined ? parseInfoAwaitingLayers(bytes) : parseInfo(bytes, pieceLayersDict(layers)), (e) =>
        peerFailure(peer, "InvalidInfo", e.message, e))
    const pending = yield* parse()
    const missing = missingLayers(pending)
    const hybrid = pending.v2?.hybrid === true
    // A hybrid from a v1 link: we did not say we speak v2, so its peers would not answer.
    if (missing.length === 0 || (hybrid && link.infoHashV2 === undefined)) return pending
    const layers = fetchLayers(conn, rest, missing, pending.pieceLength)
    if (!hybrid) return yield* parse(yield* layers)
    const timeout = options.hybridLayersTimeout ?? Duration.seconds(10)
    const fetched = yield* layers.pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => peerFailure(peer, "Timeout", `sent no piece layers within ${Duration.format(timeout)}`) }),
      Effect.tapError((e) => Effect.logDebug(`${e.message}; the hybrid goes on with its SHA-1 hashes only`)),
      Effect.option
    )
    return Option.isNone(fetched) ? pending : yield* parse(fetched.value)
  })

/** Announces (with `left=1`: the size is unknown) and gathers the link's and the tracker's peers. */
const findSwarm = (link: MagnetSource, options: MetadataOptions) =>
  Effect.gen(function* () {
    const trackers = link.trackers.map((url) => [url])
    const peers = new Map<string, PeerAddress>()
    for (const p of link.peers) peers.set(formatPeer(p), p)
    let trackerError: TrackerError | undefined
    if (trackers.length > 0) {
      const tiers = yield* (yield* Tracker).tiers(trackers)
      const announced = yield* Effect.either(
        tiers.announce({ infoHash: link.infoHash, peerId: options.peerId, port: options.port, uploaded: 0, downloaded: 0, left: 1 })
      )
      if (Either.isRight(announced)) {
        for (const p of announced.right.peers) if (!peers.has(formatPeer(p))) peers.set(formatPeer(p), p)
      } else {
        trackerError = announced.left
      }
    }
    const swarm: MagnetSwarm = { trackers, peers: [...peers.values()] }
    return { swarm, trackerError }
  })

/**
 * Finds the swarm, then dials its peers a few at a time (magnet reserved bytes) and runs `use` on
 * each connection until one succeeds; the others are then interrupted and every connection is
 * closed. Each peer is bounded by `peerTimeout`. Peers' failures are logged at Debug only: the
 * final error lists them.
 */
export const withFirstPeer = <A>(
  link: MagnetSource,
  options: MetadataOptions,
  use: (conn: PeerConnection) => Effect.Effect<A, MetadataPeerError, Scope.Scope>
): Effect.Effect<{ readonly value: A; readonly peer: PeerAddress; readonly swarm: MagnetSwarm }, MetadataError, Tracker | PeerWire> =>
  Effect.gen(function* () {
    const wire = yield* PeerWire
    const { swarm, trackerError } = yield* findSwarm(link, options)
    const infoHash = toHex(link.infoHash)
    const facts = { infoHash, ...(trackerError === undefined ? {} : { trackerError }) }
    if (swarm.peers.length === 0) return yield* new MetadataError({ ...facts, reason: "NoPeers", failures: [] })
    const timeout = options.peerTimeout ?? Duration.seconds(30)

    const attempt = (address: PeerAddress) => {
      const peer = formatPeer(address)
      return Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* wire
            .connect(address, {
              infoHash: link.infoHash,
              peerId: options.peerId,
              reserved: link.infoHashV2 === undefined ? magnetReserved : magnetReservedV2,
              ...(link.infoHashV2 === undefined ? {} : { alsoAccept: [link.infoHashV2.subarray(0, 20)] }),
              pieceCount: framePieceCount,
              ...(options.encryption === undefined ? {} : { encryption: options.encryption })
            })
            .pipe(
              options.redialDropped === true ? Effect.retry({ schedule: redialPause, times: 1, while: (e) => e.reason === "Closed" }) : identity,
              Effect.mapError(fromPeerError)
            )
          if (equalBytes(conn.remote.peerId, options.peerId)) return yield* peerFailure(peer, "Self", "is ourselves")
          return yield* use(conn)
        })
      ).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => peerFailure(peer, "Timeout", `gave no answer within ${Duration.format(timeout)}`)
        }),
        Effect.tapError((e) => Effect.logDebug(e.message))
      )
    }

    // forEach over flipped attempts stops at the first failure, that is the first peer that succeeded.
    return yield* Effect.forEach(
      swarm.peers,
      (address) => Effect.flip(Effect.map(attempt(address), (value) => ({ value, peer: address, swarm }))),
      { concurrency: options.concurrency ?? 4 }
    ).pipe(
      Effect.flip,
      Effect.mapError((failures) => new MetadataError({ ...facts, reason: "AllPeersFailed", failures }))
    )
  })

/** Fetches and verifies the info dict of a magnet link from its swarm. */
export const fetchMetadata = (
  link: MagnetSource,
  options: MetadataOptions
): Effect.Effect<FetchedMetadata, MetadataError, Tracker | PeerWire> =>
  Effect.map(withFirstPeer(link, options, (conn) => fetchFrom(conn, link, options)), ({ peer, swarm, value }) => ({
    ...swarm,
    info: value,
    peer
  }))

export interface MagnetHandshake {
  readonly peer: PeerAddress
  /** The remote peer id from its handshake. */
  readonly peerId: Uint8Array
  /** The id the peer wants ut_metadata messages under. */
  readonly metadataExtensionId: number
  readonly extensions: ExtendedHandshake
}

/** The handshake and extension handshake with the first peer of the swarm that offers ut_metadata. */
export const magnetHandshake = (
  link: MagnetSource,
  options: MetadataOptions
): Effect.Effect<MagnetHandshake, MetadataError, Tracker | PeerWire> =>
  Effect.map(
    withFirstPeer(link, options, (conn) =>
      Effect.flatMap(exchangeExtensionHandshake(conn), ({ handshake }) => {
        const id = peerUtMetadataId(handshake)
        return id === undefined
          ? Effect.fail(peerFailure(formatPeer(conn.address), "NoMetadata", "does not offer ut_metadata"))
          : Effect.succeed({ peerId: conn.remote.peerId, metadataExtensionId: id, extensions: handshake })
      })
    ),
    ({ peer, value }) => ({ peer, ...value })
  )
