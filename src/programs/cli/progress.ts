/**
 * Renders download events on stderr: a live line on a terminal, a plain line every few seconds
 * otherwise (logs, CI), nothing with --quiet. stdout stays free for results.
 */
import { Clock, Effect } from "effect"
import type { DownloadEvent } from "../Download.js"

export const mib = (bytes: number) => (bytes / 1048576).toFixed(1)

const eta = (left: number, rate: number): string => {
  if (rate <= 0) return "--"
  const s = Math.ceil(left / rate)
  return s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`
}

export type ProgressMode = "live" | "plain" | "quiet"

export const progressMode = (quiet: boolean): ProgressMode => (quiet ? "quiet" : process.stderr.isTTY ? "live" : "plain")

/**
 * The stderr lines both renderers write: plain lines, and a status line that is rewritten in place
 * on a terminal ("live") and otherwise printed as a plain line at most every `plainEveryMs`.
 */
export const makeStatusLines = (mode: ProgressMode, plainEveryMs: number) => {
  let lastPlain = 0
  let live = false
  const write = (text: string) => process.stderr.write(text)
  const line = (text: string) => {
    if (live) write("\r\x1b[K")
    live = false
    write(`${text}\n`)
  }
  /** `worthPrinting` gates the plain line only (e.g. "something changed"); true when it printed one. */
  const status = (text: string, worthPrinting = true): boolean => {
    if (mode === "live") {
      write(`\r\x1b[K${text}`)
      live = true
      return false
    }
    if (!worthPrinting || Date.now() - lastPlain < plainEveryMs) return false
    lastPlain = Date.now()
    line(text)
    return true
  }
  return { line, status }
}

/** Bytes in the unit that reads best: `512 B`, `1.5 KiB`, `100.0 MiB`, `2.0 GiB`. */
export const formatBytes = (bytes: number): string => {
  if (bytes < 1024) return `${Math.round(bytes)} B`
  const units = ["KiB", "MiB", "GiB", "TiB"]
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

export const formatRate = (bytesPerSecond: number): string => `${formatBytes(bytesPerSecond)}/s`

export const peersText = (n: number): string => (n === 1 ? "1 peer" : `${n} peers`)

/** `12 peers (5 uTP, 7 encrypted)`: how they connected, said only when some are over uTP or encrypted. */
export const connectedPeersText = (peers: number, utpPeers = 0, encryptedPeers = 0): string => {
  const how = [...(utpPeers > 0 ? [`${utpPeers} uTP`] : []), ...(encryptedPeers > 0 ? [`${encryptedPeers} encrypted`] : [])]
  return how.length === 0 ? peersText(peers) : `${peersText(peers)} (${how.join(", ")})`
}

/** The window the shown speed is averaged over: long enough to be steady, short enough to follow. */
const speedWindowMs = 3000

/**
 * What a download's renderers learn from its events: the speed over the last few seconds of
 * verified bytes (from the renderer's own clock, not the engine's smoothed rate), the peers
 * used, the bytes wasted on bad pieces, and where the pieces stand (for the interrupt message).
 */
export const makeDownloadTally = () => {
  const samples: Array<{ readonly at: number; readonly left: number }> = []
  const peers = new Set<string>()
  const tally = { pieces: 0, verified: 0, totalBytes: 0, wastedBytes: 0, bytesPerSecond: 0, started: false, alreadyComplete: false }
  const sample = (at: number, left: number) => {
    samples.push({ at, left })
    while (samples.length > 2 && at - samples[1]!.at >= speedWindowMs) samples.shift()
    const oldest = samples[0]!
    tally.bytesPerSecond = at > oldest.at ? Math.max(0, oldest.left - left) / ((at - oldest.at) / 1000) : 0
  }
  const observe = (event: DownloadEvent, at: number) => {
    switch (event._tag) {
      case "Started":
        Object.assign(tally, { started: true, pieces: event.pieces, verified: event.verified, totalBytes: event.totalBytes })
        tally.alreadyComplete = event.bytesLeft === 0
        sample(at, event.bytesLeft)
        return
      case "PeerConnected":
        peers.add(event.peer)
        return
      case "PieceVerified":
        tally.verified++
        return
      case "PieceRejected":
        tally.wastedBytes += event.bytes
        return
      case "Progress":
        sample(at, event.totalBytes - event.verifiedBytes)
        return
      default:
        return
    }
  }
  return { tally, observe, peersUsed: () => peers.size }
}

export type DownloadTally = ReturnType<typeof makeDownloadTally>

/** The line printed when a download is interrupted: how far it got, and how to go on. */
export const interruptedText = ({ tally }: DownloadTally): string =>
  `interrupted: ${tally.verified} of ${tally.pieces} pieces verified; run the same command to resume`

/** The one summary line of a finished download (`path` is where it went). */
export const summaryText = ({ peersUsed, tally }: DownloadTally, path: string, event: Extract<DownloadEvent, { _tag: "Completed" }>): string => {
  if (tally.alreadyComplete) return `already complete: ${path} (${formatBytes(tally.totalBytes)})`
  const rate = event.seconds > 0 ? event.bytes / event.seconds : 0
  return `done: ${path}, ${formatBytes(tally.totalBytes)} in ${event.seconds.toFixed(2)} s (${formatRate(rate)}), ` +
    `${peersText(peersUsed())}, ${formatBytes(tally.wastedBytes)} wasted`
}

export interface DownloadRenderer {
  /** The events of one chunk of the stream, at one reading of the clock (`Stream.runForEachChunk`). */
  readonly render: (events: Iterable<DownloadEvent>) => Effect.Effect<void>
  /** For an interrupt (Ctrl-C): a newline, so the shell prompt does not land on the status line, and where it stands. */
  readonly interrupted: Effect.Effect<void>
  /** The download failed with this message (main reports it on stderr as well). */
  readonly failed: (message: string) => Effect.Effect<void>
}

/**
 * A renderer's `render` from its synchronous step: a chunk of events at one clock reading (Effect's
 * clock, so that tests can drive it). A chunk costs one Effect step, not one an event: the events
 * come in batches of up to a few hundred pieces.
 */
export const renderingWith = (step: (event: DownloadEvent, at: number) => void): Pick<DownloadRenderer, "render"> => ({
  render: (events) =>
    Effect.map(Clock.currentTimeMillis, (at) => {
      for (const event of events) step(event, at)
    })
})

/** A renderer keeps a little state (speed samples, peers, when it last printed); make one per download to `path`. */
export const makeRenderer = (mode: ProgressMode, path: string, plainEveryMs = 5000): DownloadRenderer => {
  const { line, status } = makeStatusLines(mode, plainEveryMs)
  const tally = makeDownloadTally()
  const { tally: t } = tally
  const show = (event: DownloadEvent) => {
    switch (event._tag) {
      case "Started":
        if (event.verified > 0 && event.bytesLeft > 0) line(`resuming: ${event.verified} of ${event.pieces} pieces already verified on disk`)
        return
      case "PieceRejected":
        line(`piece ${event.index} failed its hash check (from ${event.peers.join(", ")}); fetching it again`)
        return
      case "PeerBanned":
        line(`banned ${event.peer}: it sent data that failed the hash check`)
        return
      case "AnnounceFailed":
        // As it happens: a tracker that fails is worth knowing about long before any give-up.
        line(`tracker: ${event.reason}`)
        return
      case "Progress": {
        const percent = event.totalBytes === 0 ? 100 : (100 * event.verifiedBytes) / event.totalBytes
        status(`${percent.toFixed(1)}% ${formatBytes(event.verifiedBytes)}/${formatBytes(event.totalBytes)}  ${formatRate(t.bytesPerSecond)}  ${connectedPeersText(event.peers, event.utpPeers, event.encryptedPeers)}  ETA ${eta(event.totalBytes - event.verifiedBytes, t.bytesPerSecond)}`)
        return
      }
      case "Completed":
        line(summaryText(tally, path, event))
        return
      default:
        return
    }
  }
  return {
    ...renderingWith((event, at) => {
      tally.observe(event, at)
      if (mode !== "quiet") show(event)
    }),
    interrupted: Effect.sync(() => {
      if (mode === "quiet" || !t.started) return
      process.stderr.write(`\n${interruptedText(tally)}\n`)
    }),
    // main.ts writes the one error line.
    failed: () => Effect.void
  }
}
