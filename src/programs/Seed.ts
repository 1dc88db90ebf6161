/**
 * The seeder, sibling of the download engine: it listens for peers, announces itself to the
 * trackers (and dials the leechers they list: Transmission never dials loopback peers), and
 * uploads verified pieces to the peers the choker unchokes. Its output is a `Stream` of
 * `SeedEvent`s that runs until interrupted; interruption announces `stopped`.
 *
 * The per-peer upload side (request queues, the batched serve loop, ut_metadata answers, the
 * choker) is `Upload.ts`, shared with the download engine; this module adds listening, dialling,
 * announcing and the seeder's own rules (both sides seeders: close).
 *
 * Magnet leechers get the info dict over BEP 9 (`ut_metadata`), choked or not.
 */
import { Clock, Data, Deferred, Duration, Effect, FiberMap, FiberSet, Queue, type Scope, Stream, Take } from "effect"
import { Bitfield } from "../domain/Bitfield.js"
import { equalBytes, toHex } from "../domain/Bytes.js"
import { encodeExtendedHandshake, ourUtMetadataId, utMetadataName } from "../domain/Extension.js"
import { type Info, pieceSize } from "../domain/Metainfo.js"
import { formatPeer, isOwnAddress, type PeerAddress } from "../domain/Peer.js"
import { makeReserved, Message, supportsExtensions } from "../domain/Wire.js"
import { type PeerConnection, PeerError, PeerWire } from "../services/PeerWire.js"
import { Storage, type StorageError, type TorrentStorage } from "../services/Storage.js"
import { type AnnounceRequest, Tracker } from "../services/Tracker.js"
import { type Duplex, type ListenError, Transport } from "../services/Transport.js"
import { announceRetry, clientName, type DownloadSource } from "./Download.js"
import { makeUploader, type UploadPeer } from "./Upload.js"

// --- public types ---------------------------------------------------------------------------

export type SeedEvent = Data.TaggedEnum<{
  /** Listening; `verified` of `pieces` pieces are served. */
  Started: { readonly host: string; readonly port: number; readonly pieces: number; readonly verified: number }
  Announced: { readonly url: string; readonly peers: number; readonly interval: number }
  AnnounceFailed: { readonly reason: string }
  PeerConnected: { readonly peer: string; readonly client: string; readonly inbound: boolean }
  PeerDropped: { readonly peer: string; readonly reason: string }
  /** Totals, once per `progressInterval`. */
  Uploaded: {
    readonly bytes: number
    readonly bytesPerSecond: number
    readonly peers: number
    readonly interested: number
    readonly unchoked: number
  }
}>
export const SeedEvent = Data.taggedEnum<SeedEvent>()

/** The payload at a path holds none of the torrent's pieces. */
export class NothingToSeed extends Data.TaggedError("NothingToSeed")<{ readonly path: string; readonly pieces: number }> {
  override get message() {
    return `nothing to seed: none of the ${this.pieces} pieces at ${this.path} matches the torrent`
  }
}

export type SeedError = ListenError | StorageError

export interface SeedOptions {
  readonly peerId: Uint8Array
  /** Where to listen; port 0 picks a free port (announced as such). */
  readonly port: number
  /** Default 0.0.0.0. */
  readonly host?: string
  /** Re-announce this often instead of at the tracker's interval (a small swarm learns of us sooner). */
  readonly announceInterval?: Duration.DurationInput
  /** Choker rounds (default 10 s); the optimistic unchoke rotates every third round. */
  readonly chokeInterval?: Duration.DurationInput
  /** Regular upload slots (default 4), plus one optimistic. */
  readonly uploadSlots?: number
  /** Connections at once, both directions (default 50). */
  readonly maxPeers?: number
  /** Requests (blocks and metadata pieces) a peer may have queued with us; more is a flood and drops it (default 1024). */
  readonly maxQueuedRequests?: number
  /** How often `Uploaded` is emitted (default 1 s). */
  readonly progressInterval?: Duration.DurationInput
  /** How long the `stopped` announce may hold up the end (default 3 s). */
  readonly stoppedTimeout?: Duration.DurationInput
}

// --- tuning ---------------------------------------------------------------------------------

/** The queue depth we ask peers to keep (BEP 10 `reqq`): 4 MiB in flight is plenty even on loopback. */
const advertisedQueue = 250
/**
 * A listed address where we found a seeder (while seeding ourselves) is dialled again only after
 * this wait, doubled each time up to the maximum: another client may take that port later (a
 * fresh leecher on the same machine), but a seeder should not be re-dialled at every announce.
 */
const seederRetryMillis = 5_000
const seederRetryMaxMillis = 300_000

// --- peer session state ---------------------------------------------------------------------

interface Leecher {
  readonly up: UploadPeer
  /** Their pieces, to tell when both sides are seeders. */
  has: Bitfield
}

/** A session that ends without a fault on either side. */
class SessionEnd extends Data.TaggedError("SessionEnd")<{ readonly reason: string; readonly bothSeeders: boolean }> {
  override get message() {
    return this.reason
  }
}

/** Bytes of the pieces `have` lacks: what we announce as `left`. */
const bytesLeft = (info: Info, have: Bitfield): number => {
  let left = 0
  for (let i = 0; i < info.pieceCount; i++) if (!have.has(i)) left += pieceSize(info, i)
  return left
}

/**
 * Seeds `have`'s pieces from `storage` until interrupted. The stream fails only when listening
 * fails or the storage cannot be read; peers come and go as events.
 */
export const seed = (
  source: DownloadSource,
  storage: Pick<TorrentStorage, "readBlock">,
  have: Bitfield,
  options: SeedOptions
): Stream.Stream<SeedEvent, SeedError, Tracker | PeerWire | Transport> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const events = yield* Queue.bounded<Take.Take<SeedEvent, SeedError>>(256)
      yield* seeder(source, storage, have, options, (e) => Queue.offer(events, Take.of(e))).pipe(
        Effect.catchAllCause((cause) => Queue.offer(events, Take.failCause(cause))),
        Effect.forkScoped
      )
      return Stream.fromQueue(events).pipe(Stream.flattenTake)
    })
  )

/**
 * Seeds the payload at `target` (the file of a single-file torrent, the folder of a multi-file
 * one) without creating or changing anything there. The pieces served are `verified`, or else
 * those that pass a scan; a payload where none does is refused with `NothingToSeed`.
 */
export const seedPath = (
  source: DownloadSource,
  target: string,
  options: SeedOptions,
  verified?: Bitfield
): Stream.Stream<SeedEvent, SeedError | NothingToSeed, Tracker | PeerWire | Transport | Storage> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const storage = yield* (yield* Storage).open(source.info, target, { create: false })
      const have = verified ?? (yield* storage.scan)
      if (have.isEmpty) return yield* new NothingToSeed({ path: target, pieces: source.info.pieceCount })
      return seed(source, storage, have, options)
    })
  )

const seeder = (
  source: DownloadSource,
  storage: Pick<TorrentStorage, "readBlock">,
  have: Bitfield,
  options: SeedOptions,
  emit: (e: SeedEvent) => Effect.Effect<unknown>
): Effect.Effect<never, SeedError, Tracker | PeerWire | Transport> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { info } = source
      const wire = yield* PeerWire
      const tracker = yield* Tracker
      const maxPeers = options.maxPeers ?? 50
      const chokeInterval = Duration.decode(options.chokeInterval ?? "10 seconds")
      const progressInterval = Duration.decode(options.progressInterval ?? "1 second")
      const complete = have.isComplete
      const left = bytesLeft(info, have)
      const reserved = makeReserved({ extensions: true })
      // A hand-made Info may lack the info dict's bytes: then there is no metadata to offer.
      const metadata = info.raw.length > 0 ? info.raw : undefined

      const listening = yield* (yield* Transport).listen({ host: options.host ?? "0.0.0.0", port: options.port })
      const fatal = yield* Deferred.make<never, SeedError>()
      const uploader = yield* makeUploader(info, storage, have, {
        slots: options.uploadSlots ?? 4,
        maxQueuedRequests: options.maxQueuedRequests ?? 1024,
        chokeInterval,
        metadata
      })
      const inbound = yield* FiberSet.make()
      const outbound = yield* FiberMap.make<string>()
      /** Peer ids of the live sessions: a second connection to the same peer is closed. */
      const peerIds = new Set<string>()
      /** Listed addresses that turned out to be ourselves. */
      const noDial = new Set<string>()
      /** Listed addresses of seeders, with the time (Clock millis) they may be dialled again. */
      const seederAddresses = new Map<string, { readonly until: number; readonly wait: number }>()
      /** The peer id found at a dialled address, to skip it while that peer is connected anyway. */
      const dialledIds = new Map<string, string>()
      const dialling = new Set<string>()
      let connections = 0

      const extensionHandshake = Message.extended(
        0,
        encodeExtendedHandshake({
          m: new Map(metadata === undefined ? [] : [[utMetadataName, ourUtMetadataId]]),
          ...(metadata === undefined ? {} : { metadataSize: metadata.length }),
          v: "effect-bittorrent",
          p: listening.port,
          reqq: advertisedQueue
        })
      )
      const bitfield = have.isEmpty ? undefined : Message.bitfield(have.bytes)
      const local = { peerId: options.peerId, reserved, pieceCount: info.pieceCount }

      yield* emit(SeedEvent.Started({ host: listening.host, port: listening.port, pieces: info.pieceCount, verified: have.cardinality }))

      // --- one read's worth of a peer's messages: plain synchronous bookkeeping ----------------
      const handleMessages = (s: Leecher, messages: ReadonlyArray<Message>): Effect.Effect<void, PeerError | SessionEnd> | undefined => {
        for (const m of messages) {
          switch (m._tag) {
            case "Request":
            case "Cancel":
            case "Interested":
            case "NotInterested":
            case "Extended": {
              const problem = uploader.handle(s.up, m)
              if (problem !== undefined) return Effect.fail(new PeerError({ peer: s.up.key, reason: "Protocol", detail: problem }))
              break
            }
            case "Have":
              if (m.index >= info.pieceCount) return protocolError(s, `have for piece ${m.index}, beyond the last piece`)
              s.has.add(m.index)
              break
            case "Bitfield": {
              const bits = Bitfield.fromWire(m.bits, info.pieceCount)
              if (bits === undefined) return protocolError(s, "bitfield of the wrong length or with spare bits set")
              s.has = bits
              break
            }
            case "HaveAll":
              s.has = Bitfield.full(info.pieceCount)
              break
            case "HaveNone":
              s.has = Bitfield.empty(info.pieceCount)
              break
            default:
              break
          }
        }
        if (complete && s.has.isComplete) return Effect.fail(new SessionEnd({ reason: "both sides are seeders", bothSeeders: true }))
        return undefined
      }

      const protocolError = (s: Leecher, detail: string) => Effect.fail(new PeerError({ peer: s.up.key, reason: "Protocol", detail }))

      // --- peer sessions ------------------------------------------------------------------------
      /** A handshaken connection, either direction; ends when either side closes or misbehaves. */
      const runSession = (conn: PeerConnection, key: string, isInbound: boolean) =>
        Effect.gen(function* () {
          if (equalBytes(conn.remote.peerId, options.peerId)) {
            noDial.add(key)
            return yield* new SessionEnd({ reason: "connected to ourselves", bothSeeders: false })
          }
          const id = toHex(conn.remote.peerId)
          if (!isInbound) dialledIds.set(key, id)
          if (peerIds.has(id)) return yield* new SessionEnd({ reason: "already connected to this peer", bothSeeders: false })
          const s: Leecher = { up: uploader.add(key, conn), has: Bitfield.empty(info.pieceCount) }
          peerIds.add(id)
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              uploader.remove(key)
              peerIds.delete(id)
            })
          )
          yield* emit(SeedEvent.PeerConnected({ peer: key, client: clientName(conn.remote.peerId), inbound: isInbound }))
          // Nothing at all when we have no piece: a bitfield is optional, and HaveNone needs the Fast extension.
          const greeting: Array<Message> = []
          if (supportsExtensions(conn.remote.reserved)) greeting.push(extensionHandshake)
          if (bitfield !== undefined) greeting.push(bitfield)
          conn.sendNow(greeting)
          return yield* Effect.raceFirst(
            conn.consume((messages) => handleMessages(s, messages)),
            uploader.serve(s.up)
          ).pipe(
            Effect.catchIf(
              (e): e is PeerError | SessionEnd => e._tag !== "StorageError",
              (e) =>
                Effect.gen(function* () {
                  if (e._tag === "SessionEnd" && e.bothSeeders && !isInbound) {
                    const wait = Math.min(2 * (seederAddresses.get(key)?.wait ?? seederRetryMillis / 2), seederRetryMaxMillis)
                    seederAddresses.set(key, { until: (yield* Clock.currentTimeMillis) + wait, wait })
                  }
                  yield* emit(SeedEvent.PeerDropped({ peer: key, reason: e.message }))
                })
            )
          )
        })

      /** Runs a connection to its end; failures before it counts as a session are only logged. */
      const connection = (key: string, open: Effect.Effect<void, PeerError | SessionEnd | StorageError, Scope.Scope>) =>
        Effect.scoped(open).pipe(
          Effect.catchAll((e) =>
            e._tag === "StorageError" ? Deferred.fail(fatal, e) : Effect.logDebug(`peer ${key}: ${e.message}`)
          ),
          Effect.ensuring(Effect.sync(() => connections--))
        )

      const accept = (duplex: Duplex) => {
        connections++
        const key = formatPeer(duplex.remote)
        return connection(
          key,
          Effect.flatMap(
            wire.accept(duplex, { lookup: (hash) => (equalBytes(hash, info.infoHash) ? local : undefined) }),
            (conn) => runSession(conn, key, true)
          )
        )
      }

      const dial = (address: PeerAddress, now: number): Effect.Effect<void> => {
        const key = formatPeer(address)
        const id = dialledIds.get(key)
        if (
          noDial.has(key) || dialling.has(key) || uploader.peers.has(key) ||
          (id !== undefined && peerIds.has(id)) || now < (seederAddresses.get(key)?.until ?? 0) || connections >= maxPeers
        ) return Effect.void
        connections++
        dialling.add(key)
        return connection(
          key,
          Effect.flatMap(
            wire.connect(address, { infoHash: info.infoHash, peerId: options.peerId, reserved, pieceCount: info.pieceCount }),
            (conn) => runSession(conn, key, false)
          )
        ).pipe(
          Effect.ensuring(Effect.sync(() => dialling.delete(key))),
          FiberMap.run(outbound, key),
          Effect.asVoid
        )
      }

      yield* listening.connections.pipe(
        Stream.runForEach((socket) =>
          connections >= maxPeers ? Effect.sync(() => void socket.destroy()) : Effect.asVoid(FiberSet.run(inbound, accept(socket)))
        ),
        Effect.forkScoped
      )

      // --- trackers --------------------------------------------------------------------------
      if (source.trackers.length > 0) {
        const tiers = yield* tracker.tiers(source.trackers)
        const request = (event?: AnnounceRequest["event"]): AnnounceRequest => ({
          infoHash: info.infoHash,
          peerId: options.peerId,
          port: listening.port,
          uploaded: uploader.uploaded(),
          downloaded: 0,
          left,
          ...(event === undefined ? {} : { event })
        })
        const announce = (event?: AnnounceRequest["event"]) =>
          tiers.announce(request(event)).pipe(
            Effect.tapError((e) => emit(SeedEvent.AnnounceFailed({ reason: e.message }))),
            Effect.tap((r) =>
              Effect.gen(function* () {
                const peers = r.peers.filter((p) => !isOwnAddress(p, listening.port))
                yield* emit(SeedEvent.Announced({ url: r.url, peers: peers.length, interval: r.interval }))
                const now = yield* Clock.currentTimeMillis
                yield* Effect.forEach(peers, (p) => dial(p, now), { discard: true })
              })
            )
          )
        let started = false
        // Registered before the loop starts, so it runs after the loop is interrupted.
        yield* Effect.addFinalizer(() =>
          started
            ? tiers.announce(request("stopped")).pipe(
                // finalizers run uninterruptibly: without this, the timeout could not cut a hanging request short
                Effect.interruptible,
                Effect.timeout(options.stoppedTimeout ?? "3 seconds"),
                Effect.ignore
              )
            : Effect.void
        )
        yield* Effect.gen(function* () {
          let response = yield* announce("started").pipe(Effect.retry(announceRetry))
          started = true
          while (true) {
            yield* Effect.sleep(options.announceInterval ?? Duration.seconds(Math.max(response.interval, 5)))
            response = yield* announce().pipe(Effect.orElseSucceed(() => response))
          }
        }).pipe(Effect.forkScoped)
      }

      // --- the choker ----------------------------------------------------------------------------
      yield* uploader.chokeRound.pipe(Effect.delay(chokeInterval), Effect.forever, Effect.forkScoped)

      // --- progress ------------------------------------------------------------------------------
      const tick = Effect.suspend(() => {
        let sent = 0
        let interested = 0
        let unchoked = 0
        for (const p of uploader.peers.values()) {
          sent += p.uploadedSinceTick
          p.uploadedSinceTick = 0
          if (p.interested) interested++
          if (!p.choked) unchoked++
        }
        return emit(SeedEvent.Uploaded({
          bytes: uploader.uploaded(),
          bytesPerSecond: sent / Duration.toSeconds(progressInterval),
          peers: uploader.peers.size,
          interested,
          unchoked
        }))
      })
      yield* tick.pipe(Effect.delay(progressInterval), Effect.forever, Effect.forkScoped)

      return yield* Deferred.await(fatal)
    })
  )
