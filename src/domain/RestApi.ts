/**
 * The pure half of the daemon's REST API and event stream: how a torrent is named in a path (the
 * session's integer id or its info hash), the numbers derived for a listing (progress, time left),
 * the file selection changes a client sends, the flags and base64 it writes, and the Server-Sent
 * Events framing.
 */
import { Either } from "effect"
import { type FilePriority, FileSelectionError } from "./FileSelection.js"

/** A torrent as a path names it. */
export type TorrentRef =
  | { readonly _tag: "Id"; readonly id: number }
  | { readonly _tag: "InfoHash"; readonly infoHash: string }

const decimalId = /^[1-9]\d{0,14}$/
const hexHash = /^[0-9a-fA-F]{40}$/

/** `7` or 40 hex digits (any case; given back lower case); anything else names no torrent. */
export const parseTorrentRef = (text: string): TorrentRef | undefined => {
  if (decimalId.test(text)) return { _tag: "Id", id: Number(text) }
  if (hexHash.test(text)) return { _tag: "InfoHash", infoHash: text.toLowerCase() }
  return undefined
}

/** Done over total, within 0..1; 0 while the total is unknown. */
export const fraction = (done: number, total: number): number => (total > 0 ? Math.min(1, Math.max(0, done / total)) : 0)

/** Seconds until `remaining` bytes arrive at `rate` bytes/s: 0 when nothing remains, undefined when nothing arrives. */
export const etaSeconds = (remaining: number, rate: number): number | undefined =>
  remaining <= 0 ? 0 : rate > 0 ? Math.ceil(remaining / rate) : undefined

/**
 * A client's change to a torrent's file selection: whole priorities by index, then files made
 * wanted (a skipped one becomes `normal`, a wanted one keeps its priority) or unwanted (`skip`).
 */
export interface FileChanges {
  readonly priorities?: ReadonlyArray<{ readonly index: number; readonly priority: FilePriority }> | undefined
  readonly wanted?: ReadonlyArray<number> | undefined
  readonly unwanted?: ReadonlyArray<number> | undefined
}

/** The priorities after `changes`, one per file; fails when an index is not a file of the torrent. */
export const applyFileChanges = (
  current: ReadonlyArray<FilePriority>,
  changes: FileChanges
): Either.Either<ReadonlyArray<FilePriority>, FileSelectionError> => {
  const indices = [...(changes.priorities ?? []).map((p) => p.index), ...(changes.wanted ?? []), ...(changes.unwanted ?? [])]
  const bad = indices.find((i) => !Number.isInteger(i) || i < 0 || i >= current.length)
  if (bad !== undefined) {
    return Either.left(new FileSelectionError({
      reason: "OutOfRange",
      input: String(bad),
      detail: `file ${bad} does not exist: the torrent has ${current.length} file${current.length === 1 ? "" : "s"}`
    }))
  }
  const next = [...current]
  for (const { index, priority } of changes.priorities ?? []) next[index] = priority
  for (const index of changes.wanted ?? []) if (next[index] === "skip") next[index] = "normal"
  for (const index of changes.unwanted ?? []) next[index] = "skip"
  return Either.right(next)
}

/**
 * One Server-Sent Event: its name and its data as one line of JSON (JSON writes line breaks
 * inside strings as escapes, so the frame cannot be split by what it carries).
 */
export const sseEvent = (event: string, data: unknown, id?: number): string =>
  `${id === undefined ? "" : `id: ${id}\n`}event: ${event.replace(/[\r\n]/g, "")}\ndata: ${JSON.stringify(data) ?? "null"}\n\n`

/** A comment line: followers ignore it; it keeps proxies and the connection from idling out. */
export const sseComment = (text: string): string => `: ${text.replace(/[\r\n]/g, " ")}\n\n`

/** A flag of a query string: `true`/`1` or `false`/`0` (absent: false); undefined for anything else. */
export const parseFlag = (text: string | undefined): boolean | undefined =>
  text === undefined || text === "false" || text === "0" ? false : text === "true" || text === "1" ? true : undefined

