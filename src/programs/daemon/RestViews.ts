/**
 * What the REST API and its event stream say of the session, as JSON: a torrent (its sizes,
 * rates and time left), its files, the session's totals, and the session's events. Absent values
 * are `null`, not left out, so that every listing has the same keys.
 */
import { etaSeconds, fraction } from "../../domain/RestApi.js"
import type { SessionEvent, SessionTorrent, TorrentFileStatus, TorrentStatus } from "../Session.js"
import type { DaemonSettingsService } from "./DaemonSettings.js"

export const torrentView = (t: SessionTorrent) => ({
  id: t.id,
  infoHash: t.infoHash,
  name: t.name ?? null,
  status: t.status,
  progress: fraction(t.verifiedBytes, t.totalBytes),
  directory: t.directory,
  sizes: {
    total: t.totalBytes,
    verified: t.verifiedBytes,
    downloaded: t.downloadedBytes,
    uploaded: t.uploadedBytes,
    wasted: t.wastedBytes
  },
  pieces: { done: t.piecesDone, total: t.piecesTotal },
  rates: { download: t.downloadRate, upload: t.uploadRate },
  peers: t.peers,
  // Only a torrent that is fetching has a time left; before its metadata, its size is unknown.
  eta: t.status === "downloading" && t.totalBytes > 0 ? etaSeconds(t.totalBytes - t.verifiedBytes, t.downloadRate) ?? null : null,
  ratio: t.ratio,
  error: t.error ?? null
})

export type TorrentView = ReturnType<typeof torrentView>

export const fileView = (f: TorrentFileStatus) => ({
  index: f.index,
  path: f.path,
  length: f.length,
  bytesCompleted: f.bytesCompleted,
  progress: fraction(f.bytesCompleted, f.length),
  priority: f.priority,
  wanted: f.priority !== "skip"
})

const statuses: ReadonlyArray<TorrentStatus> = ["metadata", "queued", "checking", "downloading", "seeding", "paused", "finished", "error"]

/** The session's totals over its torrents, with the daemon's settings. */
export const sessionView = (
  torrents: ReadonlyArray<SessionTorrent>,
  settings: DaemonSettingsService,
  downloadDirectory: string,
  peerPort: number | undefined,
  nowMs: number
) => {
  const sum = (f: (t: SessionTorrent) => number) => torrents.reduce((total, t) => total + f(t), 0)
  return {
    version: settings.version,
    uptimeSeconds: Math.max(0, Math.floor((nowMs - settings.startedAtMs) / 1000)),
    downloadDirectory,
    peerPort: peerPort ?? null,
    torrents: {
      total: torrents.length,
      ...Object.fromEntries(statuses.map((s) => [s, torrents.filter((t) => t.status === s).length]))
    },
    rates: { download: sum((t) => t.downloadRate), upload: sum((t) => t.uploadRate) },
    limits: { download: settings.limits.download.bytesPerSecond ?? null, upload: settings.limits.upload.bytesPerSecond ?? null },
    downloadedBytes: sum((t) => t.downloadedBytes),
    uploadedBytes: sum((t) => t.uploadedBytes),
    peers: sum((t) => t.peers)
  }
}

/** An event's fields without its tag (the tag is the SSE event's name); a Progress event says its fraction too. */
export const eventData = (event: SessionEvent): Record<string, unknown> => {
  const { _tag, ...fields } = event
  return _tag === "Progress" ? { ...fields, progress: fraction(event.verifiedBytes, event.totalBytes) } : fields
}
