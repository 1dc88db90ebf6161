/**
 * Which files of a torrent to download, and how urgently: a priority per file (`skip`, `low`,
 * `normal`, `high`), the `0,2-4` index lists users type (indices from 0, as Transmission's), and
 * the pieces that follows from them. A piece is wanted when it touches a wanted file, at the
 * highest priority among the files it touches; so a piece a wanted file shares with a skipped
 * neighbour is fetched whole. Padding (BEP 47) never makes a piece wanted.
 */
import { Data, Either } from "effect"
import { Bitfield } from "./Bitfield.js"
import type { Info, TorrentFile } from "./Metainfo.js"
import { isPadding } from "./Padding.js"

export type FilePriority = "skip" | "low" | "normal" | "high"

export const filePriorities: ReadonlyArray<FilePriority> = ["skip", "low", "normal", "high"]

/** A piece's tier in the picker: 0 for a piece not wanted, then 1 (low) to 3 (high). */
export const priorityTier = (priority: FilePriority): number => filePriorities.indexOf(priority)

export class FileSelectionError extends Data.TaggedError("FileSelectionError")<{
  readonly reason: "Malformed" | "OutOfRange"
  /** What was given: the index list as typed, or a description of the priorities. */
  readonly input: string
  readonly detail: string
}> {
  override get message() {
    return `file selection ${JSON.stringify(this.input)}: ${this.detail}`
  }
}

const item = /^(\d+)(?:-(\d+))?$/

/**
 * The file indices of a list like `0,2-4` (sorted, each once), every one below `fileCount`.
 * Ranges are inclusive and ascending; spaces around items are allowed.
 */
export const parseFileIndices = (text: string, fileCount: number): Either.Either<ReadonlyArray<number>, FileSelectionError> => {
  const fail = (reason: FileSelectionError["reason"], detail: string) => Either.left(new FileSelectionError({ reason, input: text, detail }))
  const chosen = new Set<number>()
  for (const raw of text.split(",")) {
    const match = item.exec(raw.trim())
    if (match === null) return fail("Malformed", `${JSON.stringify(raw)} is not an index or a range like 2-4`)
    const first = Number(match[1])
    const last = match[2] === undefined ? first : Number(match[2])
    if (last < first) return fail("Malformed", `the range ${first}-${last} runs backwards`)
    if (last >= fileCount) {
      return fail("OutOfRange", `file ${last} does not exist: the torrent has ${fileCount} file${fileCount === 1 ? "" : "s"} (0-${fileCount - 1})`)
    }
    for (let i = first; i <= last; i++) chosen.add(i)
  }
  return Either.right([...chosen].sort((a, b) => a - b))
}

/** The list `parseFileIndices` reads back: runs of consecutive indices as ranges. */
export const formatFileIndices = (indices: ReadonlyArray<number>): string => {
  const sorted = [...new Set(indices)].sort((a, b) => a - b)
  const parts: Array<string> = []
  for (let k = 0; k < sorted.length; ) {
    let end = k
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end]! + 1) end++
    parts.push(end === k ? `${sorted[k]}` : `${sorted[k]}-${sorted[end]}`)
    k = end + 1
  }
  return parts.join(",")
}

/** `normal` for the chosen files, `skip` for the others. */
export const onlyFiles = (fileCount: number, chosen: ReadonlyArray<number>): ReadonlyArray<FilePriority> => {
  const set = new Set(chosen)
  return Array.from({ length: fileCount }, (_, i) => (set.has(i) ? "normal" : "skip"))
}

/** One priority per file of the torrent, or an error saying how the list is off. */
export const checkPriorities = (info: Info, priorities: ReadonlyArray<FilePriority>): Either.Either<ReadonlyArray<FilePriority>, FileSelectionError> =>
  priorities.length === info.files.length && priorities.every((p) => filePriorities.includes(p))
    ? Either.right(priorities)
    : Either.left(new FileSelectionError({
        reason: "OutOfRange",
        input: `${priorities.length} priorities`,
        detail: `the torrent has ${info.files.length} files; give one of ${filePriorities.join(", ")} for each`
      }))

/** Whether the file is to be on disk: wanted and holding data of its own (not padding). */
export const isWantedFile = (file: TorrentFile, priority: FilePriority): boolean => priority !== "skip" && !isPadding(file)

/** Per file, whether Storage should create it. */
export const wantedFiles = (info: Info, priorities: ReadonlyArray<FilePriority>): ReadonlyArray<boolean> =>
  info.files.map((file, i) => isWantedFile(file, priorities[i] ?? "normal"))

/** The pieces to fetch and their tiers (`priorityTier`; 0 where not wanted). A file without a priority is `normal`. */
export interface PiecePlan {
  readonly wanted: Bitfield
  readonly tiers: Uint8Array
}

export const piecePlan = (info: Info, priorities: ReadonlyArray<FilePriority>): PiecePlan => {
  const tiers = new Uint8Array(info.pieceCount)
  info.files.forEach((file, i) => {
    const priority = priorities[i] ?? "normal"
    if (file.length === 0 || !isWantedFile(file, priority)) return
    const tier = priorityTier(priority)
    const last = Math.floor((file.offset + file.length - 1) / info.pieceLength)
    for (let p = Math.floor(file.offset / info.pieceLength); p <= last; p++) tiers[p] = Math.max(tiers[p]!, tier)
  })
  const wanted = Bitfield.empty(info.pieceCount)
  tiers.forEach((tier, p) => tier > 0 && wanted.add(p))
  return { wanted, tiers }
}
