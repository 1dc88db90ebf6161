import * as FileSystem from "@effect/platform/FileSystem"
import { Data, Effect } from "effect"
import { parseTorrent } from "../../domain/Metainfo.js"
import { describeOsError } from "../../domain/OsError.js"

/** A torrent file that cannot be read (the parse errors are the domain's own). */
export class TorrentFileError extends Data.TaggedError("TorrentFileError")<{
  readonly path: string
  readonly reason: "NotFound" | "Unreadable"
  readonly cause: unknown
}> {
  override get message() {
    return this.reason === "NotFound" ? `cannot read ${this.path}: no such file` : `cannot read ${this.path}: ${describeOsError(this.cause)}`
  }
}

/** Reads and parses a `.torrent` file. */
export const readTorrent = Effect.fn("readTorrent")(function* (path: string) {
  const fs = yield* FileSystem.FileSystem
  const bytes = yield* fs.readFile(path).pipe(
    Effect.mapError((cause) =>
      new TorrentFileError({
        path,
        reason: cause._tag === "SystemError" && cause.reason === "NotFound" ? "NotFound" : "Unreadable",
        cause
      })
    )
  )
  return yield* parseTorrent(bytes)
})
