/**
 * `download --json`: one JSON object per line on stdout for each event, named by its `event`
 * field (docs/cli.md lists the fields). Nothing else goes to stdout; stderr gets only the
 * interrupt line and the error line.
 */
import { Clock, Effect } from "effect"
import type { DownloadEvent } from "../Download.js"
import { type DownloadRenderer, interruptedText, makeDownloadTally, renderingWith } from "./progress.js"

const emit = (fields: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(fields)}\n`)

/** Writes the line that `fields` gives for now (Effect's clock, so that tests can drive it). */
const emitNow = (fields: (time: string) => Record<string, unknown>) =>
  Effect.map(Clock.currentTimeMillis, (at) => emit(fields(new Date(at).toISOString())))

export const makeJsonRenderer = (path: string): DownloadRenderer => {
  const tally = makeDownloadTally()
  const { tally: t } = tally
  const line = (event: DownloadEvent, at: number): Record<string, unknown> => {
    const time = new Date(at).toISOString()
    switch (event._tag) {
      case "Started":
        return { event: "started", time, path, pieces: event.pieces, verified: event.verified, totalBytes: event.totalBytes, bytesLeft: event.bytesLeft }
      case "Announced":
        return { event: "announced", time, url: event.url, peers: event.peers }
      case "AnnounceFailed":
        return { event: "tracker_error", time, url: event.url, message: event.reason }
      case "PeerConnected":
        return { event: "peer_connected", time, peer: event.peer, client: event.client, inbound: event.inbound, encryption: event.encryption }
      case "PeerDropped":
        return { event: "peer_dropped", time, peer: event.peer, reason: event.reason }
      case "PeerBanned":
        return { event: "peer_banned", time, peer: event.peer }
      case "PieceVerified":
        return { event: "piece_verified", time, index: event.index }
      case "PieceRejected":
        return { event: "piece_rejected", time, index: event.index, bytes: event.bytes, peers: event.peers }
      case "Progress":
        return {
          event: "progress",
          time,
          verifiedBytes: event.verifiedBytes,
          totalBytes: event.totalBytes,
          bytesPerSecond: Math.round(t.bytesPerSecond),
          peers: event.peers,
          piecesDone: event.piecesDone,
          piecesTotal: event.piecesTotal
        }
      case "Completed":
        return {
          event: "completed",
          time,
          path,
          totalBytes: t.totalBytes,
          downloadedBytes: event.bytes,
          seconds: event.seconds,
          peers: tally.peersUsed(),
          wastedBytes: t.wastedBytes,
          alreadyComplete: t.alreadyComplete
        }
    }
  }
  return {
    ...renderingWith((event, at) => {
      tally.observe(event, at)
      emit(line(event, at))
    }),
    interrupted: Effect.suspend(() =>
      t.started
        ? emitNow((time) => ({ event: "interrupted", time, path, verified: t.verified, pieces: t.pieces })).pipe(
            Effect.zipRight(Effect.sync(() => process.stderr.write(`\n${interruptedText(tally)}\n`)))
          )
        : Effect.void
    ),
    failed: (message) => emitNow((time) => ({ event: "error", time, message }))
  }
}
