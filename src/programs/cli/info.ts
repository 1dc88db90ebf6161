import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Console, Effect } from "effect"
import { toHex } from "../../domain/Bytes.js"
import type { Info } from "../../domain/Metainfo.js"
import { readTorrent } from "./torrentFile.js"

/**
 * The `info` lines (the classic contract), shared with `magnet_info`. A multi-file torrent adds `Files:` and
 * one `<length> <path>` line per file. A torrent without any tracker has no `Tracker URL` line.
 */
export const formatInfo = (trackerUrl: string | undefined, info: Info): string => {
  const lines: Array<string> = []
  if (trackerUrl !== undefined) lines.push(`Tracker URL: ${trackerUrl}`)
  lines.push(
    `Length: ${info.totalLength}`,
    `Info Hash: ${toHex(info.infoHash)}`,
    `Piece Length: ${info.pieceLength}`,
    "Piece Hashes:"
  )
  for (const hash of info.pieceHashes) lines.push(toHex(hash))
  if (info.isMultiFile) {
    lines.push("Files:")
    for (const file of info.files) lines.push(`${file.length} ${file.path.join("/")}`)
  }
  return lines.join("\n")
}

/** `info <file.torrent>`: tracker, length, info hash and piece hashes. */
export const infoCommand = Command.make(
  "info",
  { torrent: Args.file({ name: "torrent" }).pipe(Args.withDescription("path to a .torrent file")) },
  ({ torrent }) =>
    Effect.flatMap(readTorrent(torrent), (meta) =>
      Console.log(formatInfo(meta.announce ?? meta.announceList[0]?.[0], meta.info))
    )
).pipe(Command.withDescription("Print a torrent's tracker, length, info hash and piece hashes"))
