import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect } from "effect"
import { toHex } from "../../domain/Bytes.js"
import type { Info, Metainfo } from "../../domain/Metainfo.js"
import { attributeSuffix, changedPathLines, fileJson } from "./infoFiles.js"
import { readTorrent } from "./torrentFile.js"

const classicHead = (trackerUrl: string | undefined, info: Info): Array<string> => [
  ...(trackerUrl === undefined ? [] : [`Tracker URL: ${trackerUrl}`]),
  `Length: ${info.totalLength}`,
  `Info Hash: ${toHex(info.infoHash)}`,
  `Piece Length: ${info.pieceLength}`
]

/** Each piece's v2 hash (its merkle root), hex; `unknown` where its file's piece layer is missing. */
const v2PieceHashes = (info: Info): Array<string> => (info.v2?.pieces ?? []).map((p) => (p.hash === undefined ? "unknown" : toHex(p.hash)))

/** A v2-only torrent has no SHA-1 of its pieces: its lines are the pieces' merkle roots. */
const hashLines = (info: Info): Array<string> => [
  "Piece Hashes:",
  ...(info.v2 !== undefined && !info.v2.hybrid ? v2PieceHashes(info) : info.pieceHashes.map(toHex))
]

/** BEP 52 facts, for a v2 or hybrid torrent only (a v1 torrent's `--details` stays as it was). */
const v2Lines = (info: Info): Array<string> =>
  info.v2 === undefined
    ? []
    : [`Meta Version: 2${info.v2.hybrid ? " (hybrid: also v1)" : ""}`, `Info Hash v2: ${toHex(info.v2.infoHash)}`]

/**
 * The `info` lines (the classic contract), shared with `magnet_info`. A multi-file torrent adds `Files:` and
 * one `<length> <path>` line per file. A torrent without any tracker has no `Tracker URL` line.
 */
export const formatInfo = (trackerUrl: string | undefined, info: Info): string => {
  const lines = [...classicHead(trackerUrl, info), ...hashLines(info)]
  if (info.isMultiFile) {
    lines.push("Files:")
    for (const file of info.files) lines.push(`${file.length} ${file.path.join("/")}`)
  }
  return lines.join("\n")
}

const firstTracker = (meta: Metainfo): string | undefined => meta.announce ?? meta.announceList[0]?.[0]

const isoDate = (seconds: number | undefined): string | undefined =>
  seconds === undefined || seconds * 1000 > 8.64e15 ? undefined : new Date(seconds * 1000).toISOString().replace(".000Z", "Z")

const filePath = (meta: Metainfo, index: number): string => meta.info.files[index]!.path.join("/")

/**
 * `info --details`: the classic head lines in their order, then everything else the torrent says,
 * the files with their 0-based indices, and the piece hashes last (they run to thousands of lines).
 */
export const formatInfoDetails = (meta: Metainfo): string => {
  const { info } = meta
  const optional = (label: string, value: string | undefined) => (value === undefined ? [] : [`${label}: ${value}`])
  return [
    ...classicHead(firstTracker(meta), info),
    `Pieces: ${info.pieceCount}`,
    ...v2Lines(info),
    `Name: ${info.name}`,
    ...optional("Comment", meta.comment),
    ...optional("Created By", meta.createdBy),
    ...optional("Creation Date", isoDate(meta.creationDate)),
    `Private: ${info.private ? "yes" : "no"}`,
    ...(meta.announceList.length === 0 ? [] : ["Trackers:", ...meta.announceList.map((tier, i) => `  tier ${i}: ${tier.join(" ")}`)]),
    ...(meta.webSeeds.length === 0 ? [] : ["Web Seeds:", ...meta.webSeeds.map((url) => `  ${url}`)]),
    "Files:",
    ...info.files.map((file, i) => `  ${i}: ${file.length} ${filePath(meta, i)}${attributeSuffix(file)}`),
    ...changedPathLines(info),
    ...hashLines(info)
  ].join("\n")
}

/** `info --json`: one JSON document; the fields are documented in docs/cli.md. */
export const infoJson = (meta: Metainfo) => {
  const { info } = meta
  return {
    name: info.name,
    originalName: info.originalName ?? null,
    infoHash: toHex(info.infoHash),
    metaVersion: info.v2 === undefined ? 1 : 2,
    hybrid: info.v2?.hybrid ?? false,
    infoHashV2: info.v2 === undefined ? null : toHex(info.v2.infoHash),
    length: info.totalLength,
    pieceLength: info.pieceLength,
    pieceCount: info.pieceCount,
    private: info.private,
    multiFile: info.isMultiFile,
    announce: meta.announce ?? null,
    trackers: meta.announceList.length > 0 ? meta.announceList : meta.announce === undefined ? [] : [[meta.announce]],
    webSeeds: meta.webSeeds,
    comment: meta.comment ?? null,
    createdBy: meta.createdBy ?? null,
    creationDate: isoDate(meta.creationDate) ?? null,
    files: info.files.map(fileJson),
    pieceHashes: info.pieceHashes.map(toHex),
    pieceHashesV2: v2PieceHashes(info)
  }
}

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print one JSON document on stdout (see docs/cli.md)"))

/** `info <file.torrent>`: tracker, length, info hash and piece hashes; `--details` or `--json` for the rest. */
export const infoCommand = Command.make(
  "info",
  {
    torrent: Args.text({ name: "torrent" }).pipe(Args.withDescription("path to a .torrent file")),
    details: Options.boolean("details").pipe(
      Options.withDescription("also name, comment, creator, date, private flag, every tracker tier, web seeds and the files")
    ),
    json: jsonOption
  },
  ({ details, json, torrent }) =>
    Effect.flatMap(readTorrent(torrent), (meta) =>
      Console.log(
        json ? JSON.stringify(infoJson(meta)) : details ? formatInfoDetails(meta) : formatInfo(firstTracker(meta), meta.info)
      )
    )
).pipe(Command.withDescription("Print a torrent's tracker, length, info hash and piece hashes (--details: everything)"))
