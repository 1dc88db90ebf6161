/**
 * effect-bittorrent as a library. Pure codecs and types live in the domain namespaces; the
 * services are Effect `Context.Tag`s with live layers; the programs compose them.
 *
 * ```ts
 * import { Effect, Layer, Stream } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { FetchHttpClient } from "@effect/platform"
 * import { Download, Hasher, Metainfo, PeerWire, Storage, Tracker } from "effect-bittorrent"
 * ```
 * See README.md, "Using it as a library".
 */

// Domain: pure data and codecs
export * as Bencode from "./domain/Bencode.js"
export { Bitfield } from "./domain/Bitfield.js"
export * as Bytes from "./domain/Bytes.js"
export * as Choker from "./domain/Choker.js"
export * as DhtLookup from "./domain/DhtLookup.js"
export * as Extension from "./domain/Extension.js"
export * as Krpc from "./domain/Krpc.js"
export * as Magnet from "./domain/Magnet.js"
export * as Metainfo from "./domain/Metainfo.js"
export * as LsdMessage from "./domain/Lsd.js"
export * as NodeId from "./domain/NodeId.js"
export * as Mse from "./domain/Mse.js"
export * as Peer from "./domain/Peer.js"
export * as Pex from "./domain/Pex.js"
export * as PieceGeometry from "./domain/PieceGeometry.js"
export * as PiecePicker from "./domain/PiecePicker.js"
export * as PeerStore from "./domain/PeerStore.js"
export * as RoutingTable from "./domain/RoutingTable.js"
export * as ResumeData from "./domain/ResumeData.js"
export * as SessionRecord from "./domain/SessionRecord.js"
export * as StreamWindows from "./domain/StreamWindows.js"
export * as TorrentBuilder from "./domain/TorrentBuilder.js"
export { TokenBucket } from "./domain/TokenBucket.js"
export { ByteRateError, parseByteRate } from "./domain/ByteRate.js"
export * as TrackerResponse from "./domain/TrackerResponse.js"
export * as Wire from "./domain/Wire.js"

// Services: one Context.Tag each, with live (and test) layers
export { defaultStatePath, Dht, publicBootstrapNodes } from "./services/Dht.js"
export type { DhtNode, DhtOptions, DhtStats, LookupResult } from "./services/Dht.js"
export { Hasher } from "./services/Hasher.js"
export { PeerError, PeerWire, skeyLookup } from "./services/PeerWire.js"
export type { AcceptOptions, ConnectOptions, Encryption, EncryptionPolicy, InboundConnection, PeerConnection } from "./services/PeerWire.js"
export * as MseHandshake from "./services/Mse.js"
export { Lsd, LsdUnavailable, makeLsdTestNetwork } from "./services/Lsd.js"
export type { LsdPeer, LsdService, LsdTestNetwork } from "./services/Lsd.js"
export { partPath, Storage, StorageError } from "./services/Storage.js"
export { defaultStateDirectory, StateStore, StateStoreError } from "./services/StateStore.js"
export type { StateStoreService } from "./services/StateStore.js"
export type { OpenOptions, StoredFile, TorrentStorage } from "./services/Storage.js"
export { Tracker, TrackerError } from "./services/Tracker.js"
export type { AnnounceRequest, AnnounceResponse, TrackerTiers } from "./services/Tracker.js"
export { makeTrackerServer, TrackerServer } from "./services/TrackerServer.js"
export { WebSeed, WebSeedError, webSeedSources } from "./services/WebSeed.js"
export type { WebSeedClient, WebSeedOptions, WebSeedResponder, WebSeedSource } from "./services/WebSeed.js"
export { ListenError, Transport } from "./services/Transport.js"
export type { DialOptions, Duplex, DuplexEvent, Listening, ListenOptions } from "./services/Transport.js"
export { MemoryNetwork } from "./services/MemoryNetwork.js"
export type { LinkOptions, MemoryHost, MemoryNetworkOptions } from "./services/MemoryNetwork.js"
export { Utp, utpStats } from "./services/Utp.js"
export type { UtpOptions, UtpStats } from "./services/Utp.js"

// Programs: compositions of the services
export { layer, WebSeedClientLayer } from "./programs/ClientLayer.js"
export * as Torrent from "./programs/torrent/Torrent.js"
export {
  DownloadStalled,
  NoPeerSources,
  type PeerSource,
  TorrentEvent,
  type TorrentError,
  type TorrentOptions,
  type TorrentSource
} from "./programs/torrent/TorrentEvent.js"
export { makeRateLimiter, makeRateLimits, RateLimiter, type RateLimits } from "./programs/torrent/RateLimiter.js"
export * as CreateTorrent from "./programs/CreateTorrent.js"
/** The daemon: a Session behind one HTTP server (Transmission RPC, REST and events, web UI, streaming, metrics). */
export * as Daemon from "./programs/Daemon.js"
export { daemonRoutes } from "./programs/daemon/DaemonRoutes.js"
export { DaemonListenError, type DaemonAddress, type DaemonHttpOptions } from "./programs/daemon/DaemonServer.js"
export * as Download from "./programs/Download.js"
export * as Metadata from "./programs/Metadata.js"
export * as Seed from "./programs/Seed.js"
export {
  DataFilesError,
  DuplicateTorrent,
  FileStreamError,
  InvalidTorrentInput,
  make as makeSession,
  Session,
  SessionEvent,
  SessionStateUnusable,
  TorrentInput,
  UnknownTorrent
} from "./programs/Session.js"
export type {
  AddOptions,
  ByteRange,
  FileStreamOptions,
  SeedingGoal,
  SessionOptions,
  SessionService,
  SessionServices,
  SessionTorrent,
  PeerStatus,
  QueueMove,
  StreamableFile,
  TorrentFileStatus,
  TrackerStatus,
  TorrentRecord,
  TorrentStatus
} from "./programs/Session.js"
