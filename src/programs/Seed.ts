/**
 * Seeding: a torrent whose pieces are verified, listening for peers, announcing itself and
 * dialling the leechers the trackers list (Transmission never dials loopback peers), until
 * interrupted (then it announces `stopped`). It is the one torrent core of `torrent/Torrent.ts`
 * asked to fetch nothing and go on; its events are the seeder's view of the torrent's.
 */
import { Data, type Duration, Effect, Option, Stream } from "effect"
import type { Bitfield } from "../domain/Bitfield.js"
import type { Hasher } from "../services/Hasher.js"
import type { Encryption, EncryptionPolicy, PeerWire } from "../services/PeerWire.js"
import type { TransportKind } from "../services/DualTransport.js"
import { Storage, type StorageError, type TorrentStorage } from "../services/Storage.js"
import type { Tracker } from "../services/Tracker.js"
import type { ListenError, Transport } from "../services/Transport.js"
import { run } from "./torrent/Torrent.js"
import type { TorrentEvent, TorrentOptions, TorrentSource } from "./torrent/TorrentEvent.js"

export type SeedEvent = Data.TaggedEnum<{
  /** Listening; `verified` of `pieces` pieces are served. */
  Started: { readonly host: string; readonly port: number; readonly pieces: number; readonly verified: number }
  Announced: { readonly url: string; readonly peers: number; readonly interval: number }
  AnnounceFailed: { readonly reason: string }
  PeerConnected: { readonly peer: string; readonly client: string; readonly inbound: boolean; readonly encryption: Encryption; readonly transport?: TransportKind }
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
  /** MSE/PE (default "allow": plain and encrypted peers both served). */
  readonly encryption?: EncryptionPolicy
  /** Requests (blocks and metadata pieces) a peer may have queued with us, as advertised; more is a flood and drops it (default 8192). */
  readonly maxQueuedRequests?: number
  /** Peer exchange (BEP 11) with peers that offer it; never for a private torrent (default true). */
  readonly pex?: boolean
  /** How often `Uploaded` is emitted (default 1 s). */
  readonly progressInterval?: Duration.DurationInput
  /** How long the `stopped` announce may hold up the end (default 3 s). */
  readonly stoppedTimeout?: Duration.DurationInput
  /** Where else it announces itself (the DHT); see `TorrentOptions.peerSources`. */
  readonly peerSources?: NonNullable<TorrentOptions["peerSources"]>
  /** Upload (and download) limits, all applied; see `TorrentOptions.rateLimits`. */
  readonly rateLimits?: NonNullable<TorrentOptions["rateLimits"]>
}

/** The seeder's view of a torrent event, if it has one. */
const seedEvent = (e: TorrentEvent): Option.Option<SeedEvent> => {
  switch (e._tag) {
    case "Started":
      return Option.some(SeedEvent.Started({ host: e.host ?? "", port: e.port ?? 0, pieces: e.pieces, verified: e.verified }))
    case "Announced":
    case "PeerConnected":
    case "PeerDropped":
      return Option.some(e)
    case "AnnounceFailed":
      return Option.some(SeedEvent.AnnounceFailed({ reason: e.reason }))
    case "Progress":
      return Option.some(SeedEvent.Uploaded({
        bytes: e.uploadedBytes,
        bytesPerSecond: e.uploadBytesPerSecond,
        peers: e.peers,
        interested: e.interested,
        unchoked: e.unchoked
      }))
    default:
      return Option.none()
  }
}

/**
 * Seeds `have`'s pieces from `storage` until interrupted. The stream fails only when listening
 * fails or the storage cannot be read; peers come and go as events.
 */
export const seed = (
  source: TorrentSource,
  storage: Pick<TorrentStorage, "readBlock">,
  have: Bitfield,
  options: SeedOptions
): Stream.Stream<SeedEvent, SeedError, Tracker | PeerWire | Transport | Hasher> => {
  const { peerId, host, port, ...rest } = options
  // Nothing is fetched: the wanted pieces are the ones we have.
  const pieces = Array.from({ length: have.size }, (_, i) => i).filter((i) => have.has(i))
  const sink = {
    readBlock: storage.readBlock,
    writePiece: () => Effect.die("a seed fetches nothing")
  }
  return run(source, sink, have, { ...rest, peerId, listen: { host: host ?? "0.0.0.0", port }, seed: true, pieces }).pipe(
    Stream.catchTags({ DownloadStalled: Effect.die, NoPeerSources: Effect.die }),
    Stream.filterMap(seedEvent)
  )
}

/**
 * Seeds the payload at `target` (the file of a single-file torrent, the folder of a multi-file
 * one) without creating or changing anything there. The pieces served are `verified`, or else
 * those that pass a scan; a payload where none does is refused with `NothingToSeed`.
 */
export const seedPath = (
  source: TorrentSource,
  target: string,
  options: SeedOptions,
  verified?: Bitfield
): Stream.Stream<SeedEvent, SeedError | NothingToSeed, Tracker | PeerWire | Transport | Storage | Hasher> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const storage = yield* (yield* Storage).open(source.info, target, { create: false })
      const have = verified ?? (yield* storage.scan)
      if (have.isEmpty) return yield* new NothingToSeed({ path: target, pieces: source.info.pieceCount })
      return seed(source, storage, have, options)
    })
  )

