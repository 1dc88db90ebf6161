/**
 * `torrent-get`'s fields: what one of the session's torrents looks like in Transmission's names
 * and units. Files, peers and trackers are read only when a field asks for them; a field we do
 * not know is left out, as Transmission does.
 */
import { Effect } from "effect"
import { eta, peerFlags, priorityNumber, splitAddress, statusCode, toKBps } from "../../domain/TransmissionRpc.js"
import type {
  PeerStatus,
  SessionService,
  SessionTorrent,
  TorrentFileStatus,
  TorrentRateLimits,
  TrackerStatus,
  UnknownTorrent
} from "../Session.js"

/** One torrent and what its fields are computed from. */
export interface TorrentData {
  readonly torrent: SessionTorrent
  readonly files: ReadonlyArray<TorrentFileStatus>
  readonly peers: ReadonlyArray<PeerStatus>
  readonly trackers: ReadonlyArray<TrackerStatus>
  readonly limits: TorrentRateLimits
}

const wantedFiles = (d: TorrentData) => d.files.filter((f) => f.priority !== "skip")
const sizeWhenDone = (d: TorrentData) => wantedFiles(d).reduce((n, f) => n + f.length, 0)
const leftUntilDone = (d: TorrentData) => wantedFiles(d).reduce((n, f) => n + f.length - f.bytesCompleted, 0)
const haveValid = (d: TorrentData) => d.files.reduce((n, f) => n + f.bytesCompleted, 0)
const metadataKnown = (d: TorrentData) => d.torrent.piecesTotal > 0
const seconds = (ms: number) => Math.floor(ms / 1000)
const complete = (d: TorrentData) => metadataKnown(d) && leftUntilDone(d) === 0

/** A piece's size, from the size and count (lengths are powers of two; a one-piece torrent's is its size). */
const pieceSize = ({ torrent: t }: TorrentData) => {
  if (t.piecesTotal <= 1) return t.totalBytes
  let size = 1
  while (size * t.piecesTotal < t.totalBytes) size *= 2
  return size
}

const peerOf = (p: PeerStatus) => ({
  ...splitAddress(p.address),
  clientName: p.client,
  progress: p.progress,
  flagStr: peerFlags(p),
  rateToClient: Math.round(p.downloadRate),
  rateToPeer: Math.round(p.uploadRate),
  isEncrypted: p.encrypted,
  isIncoming: p.inbound,
  isUTP: p.transport === "utp",
  isDownloadingFrom: p.amInterested && !p.peerChoking,
  isUploadingTo: p.peerInterested && !p.amChoking,
  clientIsChoked: p.peerChoking,
  clientIsInterested: p.amInterested,
  peerIsChoked: p.amChoking,
  peerIsInterested: p.peerInterested
})

const hostOf = (url: string) => {
  const match = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)/i.exec(url)
  return match === null ? url : match[1]!
}

const trackerStatsOf = (t: TrackerStatus, id: number) => {
  const announced = t.lastAnnounceMs !== undefined
  const succeeded = t.lastResult === "Success"
  return {
    id,
    announce: t.url,
    scrape: "",
    host: hostOf(t.url),
    tier: t.tier,
    isBackup: false,
    announceState: 1, // waiting for its next announce
    scrapeState: 0,
    hasAnnounced: announced,
    hasScraped: false,
    lastAnnounceResult: t.lastResult ?? "",
    lastAnnounceSucceeded: succeeded,
    lastAnnounceTimedOut: false,
    lastAnnounceTime: announced ? seconds(t.lastAnnounceMs!) : 0,
    lastAnnounceStartTime: announced ? seconds(t.lastAnnounceMs!) : 0,
    lastAnnouncePeerCount: 0,
    lastScrapeResult: "",
    lastScrapeSucceeded: false,
    lastScrapeTimedOut: false,
    lastScrapeTime: 0,
    lastScrapeStartTime: 0,
    nextAnnounceTime: 0,
    nextScrapeTime: 0,
    seederCount: t.seeders ?? -1,
    leecherCount: t.leechers ?? -1,
    downloadCount: -1
  }
}

type Field = (d: TorrentData) => unknown

/** Every field we answer, by Transmission's name. */
const fields: Readonly<Record<string, Field>> = {
  id: (d) => d.torrent.id,
  name: (d) => d.torrent.name ?? d.torrent.infoHash,
  hashString: (d) => d.torrent.infoHash,
  status: (d) => statusCode(d.torrent.status, complete(d)),
  error: (d) => (d.torrent.status === "error" ? 3 : 0), // 3: a local error
  errorString: (d) => d.torrent.error ?? "",
  percentDone: (d) => (sizeWhenDone(d) === 0 ? 0 : (sizeWhenDone(d) - leftUntilDone(d)) / sizeWhenDone(d)),
  percentComplete: (d) => (d.torrent.totalBytes === 0 ? 0 : haveValid(d) / d.torrent.totalBytes),
  metadataPercentComplete: (d) => (metadataKnown(d) ? 1 : 0),
  totalSize: (d) => d.torrent.totalBytes,
  sizeWhenDone,
  leftUntilDone,
  desiredAvailable: leftUntilDone,
  haveValid,
  haveUnchecked: () => 0,
  rateDownload: (d) => Math.round(d.torrent.downloadRate),
  rateUpload: (d) => Math.round(d.torrent.uploadRate),
  eta: (d) => (metadataKnown(d) ? eta(leftUntilDone(d), d.torrent.downloadRate) : -2),
  uploadRatio: (d) => d.torrent.ratio,
  downloadedEver: (d) => d.torrent.downloadedBytes,
  uploadedEver: (d) => d.torrent.uploadedBytes,
  corruptEver: (d) => d.torrent.wastedBytes,
  peersConnected: (d) => d.torrent.peers,
  peersSendingToUs: (d) => d.peers.filter((p) => p.amInterested && !p.peerChoking).length,
  peersGettingFromUs: (d) => d.peers.filter((p) => p.peerInterested && !p.amChoking).length,
  webseedsSendingToUs: () => 0,
  webseeds: () => [],
  addedDate: (d) => seconds(d.torrent.addedAtMs),
  isFinished: (d) => d.torrent.status === "finished",
  isStalled: () => false,
  isPrivate: () => false,
  downloadDir: (d) => d.torrent.directory,
  queuePosition: (d) => d.torrent.queuePosition,
  pieceCount: (d) => d.torrent.piecesTotal,
  pieceSize,
  magnetLink: (d) => `magnet:?xt=urn:btih:${d.torrent.infoHash}${d.torrent.name === undefined ? "" : `&dn=${encodeURIComponent(d.torrent.name)}`}`,
  downloadLimit: (d) => toKBps(d.limits.download),
  downloadLimited: (d) => (d.limits.download ?? 0) > 0,
  uploadLimit: (d) => toKBps(d.limits.upload),
  uploadLimited: (d) => (d.limits.upload ?? 0) > 0,
  honorsSessionLimits: () => true,
  bandwidthPriority: () => 0,
  files: (d) => d.files.map((f) => ({ name: f.path, length: f.length, bytesCompleted: f.bytesCompleted })),
  fileStats: (d) => d.files.map((f) => ({ bytesCompleted: f.bytesCompleted, wanted: f.priority !== "skip", priority: priorityNumber(f.priority) })),
  priorities: (d) => d.files.map((f) => priorityNumber(f.priority)),
  wanted: (d) => d.files.map((f) => f.priority !== "skip"),
  peers: (d) => d.peers.map(peerOf),
  trackers: (d) => d.trackers.map((t, id) => ({ id, announce: t.url, scrape: "", tier: t.tier })),
  trackerStats: (d) => d.trackers.map((t, id) => trackerStatsOf(t, id)),
  labels: () => [],
  comment: () => "",
  creator: () => "",
  dateCreated: () => 0,
  // Not tracked: Transmission's 0 is "never".
  activityDate: () => 0,
  doneDate: () => 0,
  startDate: () => 0,
  secondsDownloading: () => 0,
  secondsSeeding: () => 0,
  recheckProgress: () => 0,
  seedRatioMode: () => 0,
  seedRatioLimit: () => 0
}

const needsPeers = new Set(["peers", "peersSendingToUs", "peersGettingFromUs"])
const needsTrackers = new Set(["trackers", "trackerStats"])

/** The fields asked for that we know, in the order asked. */
export const knownFields = (asked: ReadonlyArray<string>): ReadonlyArray<string> => asked.filter((f) => Object.hasOwn(fields, f))

/** Gathers what the fields need of one torrent. */
export const torrentData = (
  session: SessionService,
  torrent: SessionTorrent,
  asked: ReadonlyArray<string>,
  limits: TorrentRateLimits
): Effect.Effect<TorrentData, UnknownTorrent> =>
  Effect.all({
    torrent: Effect.succeed(torrent),
    files: session.files(torrent.id),
    peers: asked.some((f) => needsPeers.has(f)) ? session.peers(torrent.id) : Effect.succeed([]),
    trackers: asked.some((f) => needsTrackers.has(f)) ? session.trackers(torrent.id) : Effect.succeed([]),
    limits: Effect.succeed(limits)
  })

export const fieldsOf = (d: TorrentData, asked: ReadonlyArray<string>): Record<string, unknown> =>
  Object.fromEntries(asked.map((f) => [f, fields[f]!(d)]))
