/**
 * Renders download events on stderr: a live line on a terminal, a plain line every few seconds
 * otherwise (logs, CI), nothing with --quiet. stdout stays free for results.
 */
import { Effect } from "effect"
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

/** A renderer keeps a little state (when it last printed); make one per download. */
export const makeRenderer = (mode: ProgressMode, plainEveryMs = 5000) => {
  const { line, status } = makeStatusLines(mode, plainEveryMs)
  return (event: DownloadEvent): Effect.Effect<void> =>
    Effect.sync(() => {
      if (mode === "quiet") return
      switch (event._tag) {
        case "Started":
          if (event.verified > 0) line(`resuming: ${event.verified} of ${event.pieces} pieces already verified on disk`)
          return
        case "PieceRejected":
          line(`piece ${event.index} failed its hash check (from ${event.peers.join(", ")}); fetching it again`)
          return
        case "PeerBanned":
          line(`banned ${event.peer} after repeated bad pieces`)
          return
        case "Progress": {
          const percent = event.totalBytes === 0 ? 100 : (100 * event.verifiedBytes) / event.totalBytes
          status(`${percent.toFixed(1)}% ${mib(event.verifiedBytes)}/${mib(event.totalBytes)} MiB  ${mib(event.bytesPerSecond)} MiB/s  ${event.peers} peers  ETA ${eta(event.totalBytes - event.verifiedBytes, event.bytesPerSecond)}`)
          return
        }
        case "Completed":
          line(`done: ${mib(event.bytes)} MiB downloaded in ${event.seconds.toFixed(2)} s`)
          return
        default:
          return
      }
    })
}
