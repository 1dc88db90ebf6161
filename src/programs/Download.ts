/**
 * The download engine: peers from trackers (and given addresses), one fiber per peer session in
 * the download's scope, block requests picked by `PiecePicker`, completed pieces verified by the
 * Hasher and written by Storage. Its output is a `Stream` of `DownloadEvent`s that ends once every
 * wanted piece is verified and on disk.
 *
 * Hot path: a peer's messages arrive in chunks (one per TCP read); each chunk is handled by one
 * synchronous function that updates the picker and collects the messages to send back, so the
 * per-block cost is plain JavaScript, and Effect runs once per chunk.
 *
 * Upload while downloading: when the storage can read blocks back, each session also runs the
 * upload side of `Upload.ts` (as the seeder does): peers get our bitfield and haves, the choker
 * unchokes those that give us the most (tit-for-tat), and requests for verified pieces are served
 * by a per-peer fiber that sleeps while nothing is asked, so the download path gains no work.
 */
import { Data, Deferred, Duration, Effect, FiberMap, Queue, Schedule, Stream, Take } from "effect"
import { Bitfield } from "../domain/Bitfield.js"
import { equalBytes } from "../domain/Bytes.js"
import type { Info } from "../domain/Metainfo.js"
import { formatPeer, isOwnAddress, type PeerAddress } from "../domain/Peer.js"
import { type CompletedPiece, PiecePicker } from "../domain/PiecePicker.js"
import { blockSize, Message } from "../domain/Wire.js"
import { Hasher } from "../services/Hasher.js"
import { type PeerConnection, PeerError, PeerWire } from "../services/PeerWire.js"
import { type OpenOptions, Storage, type StorageError, type TorrentStorage } from "../services/Storage.js"
import { type AnnounceRequest, Tracker, type TrackerError } from "../services/Tracker.js"
import { makeUploader, type UploadPeer } from "./Upload.js"

// --- public types ---------------------------------------------------------------------------

export type DownloadEvent = Data.TaggedEnum<{
  /** The download starts; `verified` pieces were already on disk; `totalBytes` are wanted in all. */
  Started: { readonly pieces: number; readonly verified: number; readonly bytesLeft: number; readonly totalBytes: number }
  PeerConnected: { readonly peer: string; readonly client: string }
  PeerDropped: { readonly peer: string; readonly reason: string }
  PieceVerified: { readonly index: number }
  /** A piece failed its hash check and will be fetched again. */
  PieceRejected: { readonly index: number; readonly peers: ReadonlyArray<string>; readonly bytes: number }
  PeerBanned: { readonly peer: string }
  Progress: {
    readonly verifiedBytes: number
    readonly totalBytes: number
    readonly bytesPerSecond: number
    readonly peers: number
    readonly piecesDone: number
    readonly piecesTotal: number
  }
  Completed: { readonly bytes: number; readonly seconds: number }
}>
export const DownloadEvent = Data.taggedEnum<DownloadEvent>()

/** No verified piece for too long: no usable peers, or only peers that never deliver. */
export class DownloadStalled extends Data.TaggedError("DownloadStalled")<{
  readonly seconds: number
  readonly piecesLeft: number
  readonly peersSeen: number
  readonly lastTrackerError: string | undefined
}> {
  override get message() {
    const tracker = this.lastTrackerError === undefined ? "" : `; last tracker error: ${this.lastTrackerError}`
    return `download stalled: no piece verified for ${this.seconds} s, ${this.piecesLeft} pieces left, ${this.peersSeen} peers seen${tracker}`
  }
}

export type DownloadError = DownloadStalled | StorageError

/** The torrent as the engine needs it: the info dict and where to find peers. */
export interface DownloadSource {
  readonly info: Info
  /** BEP 12 tiers of announce URLs; may be empty when `peers` are given. */
  readonly trackers: ReadonlyArray<ReadonlyArray<string>>
  /** Peers to dial without a tracker (magnet `x.pe`, tests). */
  readonly peers?: ReadonlyArray<PeerAddress>
}

export interface EngineOptions {
  readonly peerId: Uint8Array
  /** The port announced to trackers (where we would accept peers). */
  readonly port: number
  /** Reserved handshake bytes we send. */
  readonly reserved?: Uint8Array
  /** Concurrent peer sessions (default 30). */
  readonly maxPeers?: number
  readonly sequential?: boolean
  /** Fetch only these pieces (default: all). */
  readonly pieces?: ReadonlyArray<number>
  /** A request unanswered this long goes back to the pool (default 15 s). */
  readonly requestTimeout?: Duration.DurationInput
  /** Give up when no piece is verified for this long (default 5 minutes). */
  readonly stallTimeout?: Duration.DurationInput
  /** Bad pieces a peer may contribute to before it is banned (default 2). */
  readonly maxStrikes?: number
  /** How peer connections are retried. */
  readonly peerRetry?: Schedule.Schedule<unknown, PeerError>
  /** Uploading (when the sink can read blocks back): regular upload slots (default 4), plus one optimistic. */
  readonly uploadSlots?: number
  /** Choker rounds (default 10 s). */
  readonly chokeInterval?: Duration.DurationInput
  /** Requests a peer may have queued with us; more is a flood and drops it (default 1024). */
  readonly maxQueuedRequests?: number
}

/**
 * Where verified pieces go: a torrent's files, or one file for `download_piece`. A sink that can
 * also read blocks back (`readBlock`) lets the engine upload the verified pieces to its peers.
 */
export type PieceSink = Pick<TorrentStorage, "writePiece"> & Partial<Pick<TorrentStorage, "readBlock">>

// --- tuning ---------------------------------------------------------------------------------

/** Requests in flight per peer when it starts, and the bounds of the adaptive depth. */
const initialDepth = 64
const minDepth = 4
const maxDepth = 250
/** The pipeline aims to hold this much of the peer's rate in flight. */
const pipelineSeconds = 1
const tickMillis = 200
/** Pieces queued for hashing at once: bounds memory and backpressures the sockets. */
const verifyQueueBytes = 8 * 1024 * 1024
const verifyConcurrency = 4

const defaultPeerRetry: Schedule.Schedule<unknown, PeerError> = Schedule.exponential("1 second", 2).pipe(
  Schedule.jittered,
  Schedule.either(Schedule.spaced("60 seconds")),
  Schedule.intersect(Schedule.recurs(12)),
  // A peer for another torrent, or one that broke the protocol, is not worth another try.
  Schedule.whileInput((e: PeerError) => e.reason !== "InfoHashMismatch" && e.reason !== "Protocol")
)

export const announceRetry = Schedule.exponential("1 second", 2).pipe(Schedule.jittered, Schedule.either(Schedule.spaced("60 seconds")))

// --- peer session state ---------------------------------------------------------------------

interface Session {
  readonly key: string
  readonly conn: PeerConnection
  choked: boolean
  interested: boolean
  depth: number
  /** Payload bytes received since the last tick, and the smoothed rate. */
  bytesSinceTick: number
  rate: number
  /** Messages to go out with this peer's next send (haves, cancels). */
  pending: Array<Message>
  /** Its upload side, when we upload. */
  readonly up: UploadPeer | undefined
}

export const clientName = (peerId: Uint8Array): string => {
  const tag = Buffer.from(peerId.subarray(0, 8)).toString("latin1")
  return /^-[A-Za-z0-9]{2}[0-9A-Za-z]{4}-$/.test(tag) ? tag.slice(1, 7) : "unknown"
}

/**
 * Runs a download into an opened storage. The stream ends after the last wanted piece is
 * verified and written; the peers' connections are closed when it ends or is interrupted.
 */
export const runEngine = (
  source: DownloadSource,
  storage: PieceSink,
  have: Bitfield,
  options: EngineOptions
): Stream.Stream<DownloadEvent, DownloadError, Tracker | PeerWire | Hasher> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const events = yield* Queue.bounded<Take.Take<DownloadEvent, DownloadError>>(256)
      yield* engine(source, storage, have, options, (e) => Queue.offer(events, Take.of(e))).pipe(
        Effect.exit,
        Effect.flatMap((exit) => Queue.offer(events, exit._tag === "Success" ? Take.end : Take.failCause(exit.cause))),
        Effect.forkScoped
      )
      return Stream.fromQueue(events).pipe(Stream.flattenTake)
    })
  )

const engine = (
  source: DownloadSource,
  storage: PieceSink,
  have: Bitfield,
  options: EngineOptions,
  emit: (e: DownloadEvent) => Effect.Effect<unknown>
): Effect.Effect<void, DownloadError, Tracker | PeerWire | Hasher> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { info } = source
      const wire = yield* PeerWire
      const hasher = yield* Hasher
      const tracker = yield* Tracker
      // Time through Effect's Clock, so that tests can drive timeouts with TestClock.
      const clock = yield* Effect.clock
      const now = () => clock.unsafeCurrentTimeMillis()
      const startedAt = now()
      const requestTimeoutMs = Duration.toMillis(options.requestTimeout ?? "15 seconds")
      const stallTimeout = Duration.decode(options.stallTimeout ?? "5 minutes")
      const maxStrikes = options.maxStrikes ?? 2
      const maxPeers = options.maxPeers ?? 30

      let wanted: Bitfield | undefined
      if (options.pieces !== undefined) {
        wanted = Bitfield.empty(info.pieceCount)
        for (const i of options.pieces) wanted.add(i)
      }
      const picker = new PiecePicker({
        pieceCount: info.pieceCount,
        pieceLength: info.pieceLength,
        totalLength: info.totalLength,
        have,
        sequential: options.sequential ?? false,
        ...(wanted === undefined ? {} : { wanted })
      })
      const totalBytes = picker.bytesWanted
      const bytesLeft = picker.bytesLeft
      yield* emit(DownloadEvent.Started({ pieces: info.pieceCount, verified: have.cardinality, bytesLeft, totalBytes }))
      if (picker.isComplete) {
        yield* emit(DownloadEvent.Completed({ bytes: 0, seconds: 0 }))
        return
      }

      const done = yield* Deferred.make<void, DownloadError>()
      const sessions = new Map<string, Session>()
      const strikes = new Map<string, number>()
      const banned = new Set<string>()
      /** Peers being dialled or retried (one fiber each), and how many distinct peers we ever had. */
      const known = new Set<string>()
      let peersSeen = 0
      let verifiedBytes = totalBytes - bytesLeft
      let lastVerifiedAt = now()
      let lastTrackerError: string | undefined
      let downloaded = 0

      const verifyQueue = yield* Queue.bounded<CompletedPiece>(Math.max(2, Math.floor(verifyQueueBytes / info.pieceLength)))
      const peerFibers = yield* FiberMap.make<string>()
      const slots = yield* Effect.makeSemaphore(maxPeers)
      const chokeInterval = Duration.decode(options.chokeInterval ?? "10 seconds")
      const readBlock = storage.readBlock
      // Tit-for-tat: the choker ranks peers by what they give us.
      const uploader = readBlock === undefined ? undefined : yield* makeUploader(info, { readBlock }, picker.have, {
        slots: options.uploadSlots ?? 4,
        maxQueuedRequests: options.maxQueuedRequests ?? 1024,
        chokeInterval,
        rate: (p) => sessions.get(p.key)?.rate ?? 0
      })

      // --- one chunk of a peer's messages: plain synchronous bookkeeping -------------------------
      const handleChunk = (s: Session, messages: ReadonlyArray<Message>): Effect.Effect<void, PeerError> | undefined => {
        const completed: Array<CompletedPiece> = []
        const out = s.pending
        s.pending = []
        for (const m of messages) {
          switch (m._tag) {
            case "Piece": {
              const outcome = picker.receive(s.key, m.index, m.begin, m.block)
              if (!outcome.accepted) break
              s.bytesSinceTick += m.block.length
              downloaded += m.block.length
              if (outcome.completed !== undefined) completed.push(outcome.completed)
              for (const c of outcome.cancels) {
                sessions.get(c.peer)?.pending.push(Message.cancel(c.index, c.begin, c.length))
              }
              break
            }
            case "Bitfield": {
              const bits = Bitfield.fromWire(m.bits, info.pieceCount)
              if (bits === undefined) return protocolError(s, "bitfield of the wrong length or with spare bits set")
              picker.setBitfield(s.key, bits)
              break
            }
            case "HaveAll":
              picker.setBitfield(s.key, Bitfield.full(info.pieceCount))
              break
            case "HaveNone":
              picker.setBitfield(s.key, Bitfield.empty(info.pieceCount))
              break
            case "Have":
              if (!picker.addHave(s.key, m.index)) return protocolError(s, `have for piece ${m.index} out of range`)
              break
            case "Choke":
              s.choked = true
              picker.release(s.key)
              break
            case "Unchoke":
              s.choked = false
              break
            case "RejectRequest":
              picker.release(s.key)
              break
            case "Request":
            case "Cancel":
            case "Interested":
            case "NotInterested":
            case "Extended": {
              const problem = s.up === undefined ? undefined : uploader!.handle(s.up, m)
              if (problem !== undefined) return protocolError(s, problem)
              break
            }
            default:
              break
          }
        }
        fill(s, out)
        s.conn.sendNow(out)
        // Effect only runs when the verify queue is full: then it backpressures this peer.
        const waiting = completed.filter((piece) => !Queue.unsafeOffer(verifyQueue, piece))
        return waiting.length === 0 ? undefined : Queue.offerAll(verifyQueue, waiting)
      }

      /** Adds interest and as many requests as the peer's pipeline has room for. */
      const fill = (s: Session, out: Array<Message>) => {
        if (!s.interested && picker.isInteresting(s.key)) {
          s.interested = true
          out.push(Message.interested)
        }
        if (s.choked || !s.interested) return
        const room = s.depth - picker.outstandingCount(s.key)
        // Top up in batches: one send per few blocks rather than per block.
        if (room < Math.max(minDepth / 2, s.depth / 4)) return
        for (const r of picker.pick(s.key, room, now())) out.push(Message.request(r.index, r.begin, r.length))
      }

      const protocolError = (s: Session, detail: string) =>
        Effect.fail(new PeerError({ peer: s.key, reason: "Protocol", detail }))

      // --- peer sessions --------------------------------------------------------------------
      const session = (address: PeerAddress, key: string) =>
        Effect.scoped(
          Effect.gen(function* () {
            const conn = yield* wire.connect(address, {
              infoHash: info.infoHash,
              peerId: options.peerId,
              pieceCount: info.pieceCount,
              ...(options.reserved === undefined ? {} : { reserved: options.reserved })
            })
            if (equalBytes(conn.remote.peerId, options.peerId)) {
              banned.add(key)
              return yield* new PeerError({ peer: key, reason: "Protocol", detail: "connected to ourselves" })
            }
            const s: Session = {
              key,
              conn,
              choked: true,
              interested: false,
              depth: initialDepth,
              bytesSinceTick: 0,
              rate: 0,
              pending: [],
              up: uploader?.add(key, conn)
            }
            picker.addPeer(key)
            sessions.set(key, s)
            yield* Effect.addFinalizer(() =>
              Effect.sync(() => {
                sessions.delete(key)
                picker.removePeer(key)
                uploader?.remove(key)
              })
            )
            yield* emit(DownloadEvent.PeerConnected({ peer: key, client: clientName(conn.remote.peerId) }))
            // After their handshake (connect returns then): a bitfield only when we have a piece (resume).
            if (!picker.have.isEmpty) conn.sendNow([Message.bitfield(picker.have.bytes)])
            if (s.up !== undefined) {
              // Beside the reader, in the session's scope: the receive path stays as it is. A disk that
              // cannot be read back fails the download; a failed send ends the reader too (closed socket).
              yield* uploader!.serve(s.up).pipe(
                Effect.catchTag("StorageError", (e) => Deferred.fail(done, e)),
                Effect.ignore,
                Effect.forkScoped
              )
            }
            return yield* conn.consume((messages) => handleChunk(s, messages))
          })
        ).pipe(
          Effect.tapError((e) => emit(DownloadEvent.PeerDropped({ peer: key, reason: e.message })))
        )

      const addPeer = (address: PeerAddress) => {
        const key = formatPeer(address)
        if (known.has(key) || banned.has(key) || isOwnAddress(address, options.port)) return Effect.void
        known.add(key)
        peersSeen++
        return session(address, key).pipe(
          slots.withPermits(1),
          Effect.retry({ schedule: options.peerRetry ?? defaultPeerRetry, while: () => !banned.has(key) }),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => known.delete(key))),
          FiberMap.run(peerFibers, key),
          Effect.asVoid
        )
      }

      const dropPeer = (key: string) => FiberMap.remove(peerFibers, key)

      // --- verification and writes -----------------------------------------------------------
      const verifyOne = (piece: CompletedPiece) =>
        Effect.gen(function* () {
          const ok = yield* hasher.verify(piece.data, info.pieceHashes[piece.index]!)
          if (!ok) {
            picker.failed(piece.index)
            picker.recycle(piece.data)
            const peers = [...piece.contributors]
            yield* emit(DownloadEvent.PieceRejected({ index: piece.index, peers, bytes: piece.data.length }))
            // The blame is shared among the senders: a lone sender takes a whole strike, so an
            // honest peer that shared a piece with a liar is not banned along with it.
            for (const p of peers) {
              const n = (strikes.get(p) ?? 0) + 1 / peers.length
              strikes.set(p, n)
              if (n >= maxStrikes && !banned.has(p)) {
                banned.add(p)
                yield* dropPeer(p)
                yield* emit(DownloadEvent.PeerBanned({ peer: p }))
              }
            }
            return
          }
          yield* storage.writePiece(piece.index, piece.data)
          picker.verified(piece.index)
          picker.recycle(piece.data)
          verifiedBytes += piece.data.length
          lastVerifiedAt = now()
          // Have suppression: a peer that has the piece does not need to hear of ours.
          for (const s of sessions.values()) {
            if (picker.peerHas(s.key)?.has(piece.index) !== true) s.pending.push(Message.have(piece.index))
          }
          yield* emit(DownloadEvent.PieceVerified({ index: piece.index }))
          if (picker.isComplete) yield* Deferred.succeed(done, undefined)
        })

      // A few workers, so that one piece's write to disk does not hold up the next piece's hash.
      yield* Queue.take(verifyQueue).pipe(
        Effect.flatMap(verifyOne),
        Effect.forever,
        Effect.replicateEffect(verifyConcurrency, { concurrency: "unbounded", discard: true }),
        Effect.catchAll((e) => Deferred.fail(done, e)),
        Effect.forkScoped
      )

      // --- trackers --------------------------------------------------------------------------
      const announceRequest = (event?: AnnounceRequest["event"]): AnnounceRequest => ({
        infoHash: info.infoHash,
        peerId: options.peerId,
        port: options.port,
        uploaded: uploader?.uploaded() ?? 0,
        downloaded,
        left: picker.bytesLeft,
        ...(event === undefined ? {} : { event })
      })
      const tiers = yield* tracker.tiers(source.trackers)
      const announce = (event?: AnnounceRequest["event"]) =>
        tiers.announce(announceRequest(event)).pipe(
          Effect.tapError((e: TrackerError) => Effect.sync(() => { lastTrackerError = e.message })),
          Effect.tap((r) => Effect.forEach(r.peers, addPeer, { discard: true }))
        )

      for (const p of source.peers ?? []) yield* addPeer(p)
      if (source.trackers.length > 0) {
        yield* Effect.gen(function* () {
          let response = yield* announce("started").pipe(Effect.retry(announceRetry))
          let lastAnnounce = now()
          while (true) {
            // Re-announce at the tracker's interval, or sooner (but not in a tight loop) when peers run out.
            const intervalMs = Math.max(response.interval, 5) * 1000
            yield* Effect.sleep(tickMillis * 5)
            const lowOnPeers = sessions.size === 0 && now() - lastAnnounce > 15_000
            if (!lowOnPeers && now() - lastAnnounce < intervalMs) continue
            response = yield* announce().pipe(Effect.orElse(() => Effect.succeed(response)))
            lastAnnounce = now()
          }
        }).pipe(Effect.forkScoped)
      }

      // --- the tick: timeouts, adaptive pipelines, refills, progress ----------------------------
      let ticks = 0
      const tick = Effect.gen(function* () {
        const tickAt = now()
        const seconds = tickMillis / 1000
        const everySecond = ++ticks % 5 === 0
        for (const s of sessions.values()) {
          s.rate = s.rate === 0 ? s.bytesSinceTick / seconds : 0.7 * s.rate + 0.3 * (s.bytesSinceTick / seconds)
          s.bytesSinceTick = 0
          const expired = picker.expire(s.key, tickAt - requestTimeoutMs)
          if (expired > 0) s.depth = Math.max(minDepth, Math.floor(s.depth / 2))
          else s.depth = Math.min(maxDepth, Math.max(s.depth, minDepth, Math.ceil((s.rate * pipelineSeconds) / blockSize)))
          const out = s.pending
          s.pending = []
          // Once a peer has nothing left that we lack, say so (a `have` may make it interesting again).
          if (everySecond && s.interested && !picker.isInteresting(s.key)) {
            s.interested = false
            out.push(Message.notInterested)
          }
          fill(s, out)
          s.conn.sendNow(out)
        }
        if (everySecond) {
          let rate = 0
          for (const s of sessions.values()) rate += s.rate
          yield* emit(DownloadEvent.Progress({
            verifiedBytes,
            totalBytes,
            bytesPerSecond: rate,
            peers: sessions.size,
            piecesDone: picker.have.cardinality,
            piecesTotal: info.pieceCount
          }))
        }
        if (tickAt - lastVerifiedAt > Duration.toMillis(stallTimeout)) {
          yield* Deferred.fail(done, new DownloadStalled({
            seconds: Math.round(Duration.toSeconds(stallTimeout)),
            piecesLeft: picker.piecesLeft,
            peersSeen,
            lastTrackerError
          }))
        }
      })
      yield* tick.pipe(Effect.repeat(Schedule.spaced(tickMillis)), Effect.forkScoped)
      if (uploader !== undefined) yield* uploader.chokeRound.pipe(Effect.delay(chokeInterval), Effect.forever, Effect.forkScoped)

      yield* Deferred.await(done)
      // Tell the trackers, but never let a slow tracker hold the finished download.
      if (source.trackers.length > 0 && options.pieces === undefined) {
        yield* announce("completed").pipe(Effect.timeout("3 seconds"), Effect.ignore)
      }
      yield* emit(DownloadEvent.Completed({ bytes: downloaded, seconds: (now() - startedAt) / 1000 }))
    })
  )


/**
 * Downloads a torrent to `target` (the file of a single-file torrent, the folder of a multi-file
 * one). Data already there is checked first and only verified pieces are kept (resume); the scan
 * reads nothing of a fresh download (Storage knows what lies beyond the files' sizes at open).
 * Unfinished files are `<path>.part` until verified; data there that is not this torrent's fails
 * the download (`StorageError` with reason `NotOurs`) unless `open.overwrite`.
 */
export const download = (
  source: DownloadSource,
  target: string,
  options: EngineOptions,
  /** How the storage opens (e.g. `overwrite` data that is not this torrent's). */
  open: OpenOptions = {}
): Stream.Stream<DownloadEvent, DownloadError, Tracker | PeerWire | Hasher | Storage> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const storage = yield* (yield* Storage).open(source.info, target, open)
      return runEngine(source, storage, yield* storage.scan, options)
    })
  )
