import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import { Console, Effect, Either, Option } from "effect"
import { toHex } from "../../domain/Bytes.js"
import { type TorrentVersion, validatePieceLength } from "../../domain/TorrentBuilder.js"
import { CreateTorrentError, createTorrent } from "../CreateTorrent.js"
import { checked } from "./clientOptions.js"
import { jsonOption } from "./info.js"
import { note } from "./report.js"

/** `--v2` or `--hybrid` (BEP 52), v1 without either. */
const versionOption = Options.all({
  v2: Options.boolean("v2").pipe(Options.withDescription("a v2-only torrent (BEP 52: SHA-256 merkle trees, each file on piece boundaries)")),
  hybrid: Options.boolean("hybrid").pipe(Options.withDescription("a hybrid torrent, v1 and v2 (BEP 52) at once, its files padded to piece boundaries"))
}).pipe(
  checked("--v2/--hybrid", ({ hybrid, v2 }) => (v2 && hybrid ? "--v2 and --hybrid exclude each other" : undefined)),
  Options.map(({ hybrid, v2 }): TorrentVersion => (v2 ? "v2" : hybrid ? "hybrid" : "v1"))
)

/**
 * `create <path> -o <file.torrent>`: a torrent of a file or folder. Prints `Info Hash: <hex>` on stdout;
 * skipped folder entries and a summary go to stderr. No creation date: the same input gives the same file.
 */
export const createCommand = Command.make(
  "create",
  {
    path: Args.text({ name: "path" }).pipe(Args.withDescription("the file or folder to share")),
    output: Options.text("output").pipe(Options.withAlias("o"), Options.withDescription("where to write the .torrent file")),
    announce: Options.text("announce").pipe(
      Options.withAlias("a"),
      Options.repeated,
      Options.withDescription("a tracker URL (repeatable: the first is `announce`, all of them form the announce-list)")
    ),
    pieceLength: Options.integer("piece-length").pipe(
      Options.optional,
      Options.withDescription("bytes per piece, a power of two from 16384 to 67108864 (default: 1000 to 2000 pieces, 16 KiB to 16 MiB)"),
      checked("--piece-length", Option.match({
        onNone: () => undefined,
        onSome: (n) => Either.match(validatePieceLength(n), { onLeft: () => `${n} is not a power of two from 16384 to 67108864`, onRight: () => undefined })
      }))
    ),
    private: Options.boolean("private").pipe(Options.withDescription("set the private flag (BEP 27): trackers only, no DHT or PEX")),
    name: Options.text("name").pipe(Options.optional, Options.withDescription("the torrent's name (default: the file or folder name)")),
    comment: Options.text("comment").pipe(Options.optional, Options.withDescription("a free-text comment")),
    version: versionOption,
    json: jsonOption
  },
  ({ announce, comment, json, name, output, path, pieceLength, private: isPrivate, version }) =>
    Effect.gen(function* () {
      const created = yield* createTorrent(path, {
        announce,
        version,
        private: isPrivate,
        exclude: [output],
        ...Option.match(pieceLength, { onNone: () => ({}), onSome: (n) => ({ pieceLength: n }) }),
        ...Option.match(name, { onNone: () => ({}), onSome: (n) => ({ name: n }) }),
        ...Option.match(comment, { onNone: () => ({}), onSome: (c) => ({ comment: c }) })
      })
      for (const s of created.skipped) yield* note(`skipped ${s.path}: ${s.why}`)
      const fs = yield* FileSystem.FileSystem
      yield* fs.writeFile(output, created.bytes).pipe(
        Effect.mapError((cause) => new CreateTorrentError({ path: output, reason: "Unwritable", cause }))
      )
      const { info } = created.metainfo
      if (json) {
        return yield* Console.log(JSON.stringify({
          output,
          infoHash: toHex(created.infoHash),
          infoHashV2: info.v2 === undefined ? null : toHex(info.v2.infoHash),
          name: info.name,
          length: info.totalLength,
          pieceLength: info.pieceLength,
          pieceCount: info.pieceCount,
          files: info.files.length,
          skipped: created.skipped.map((s) => ({ path: s.path, reason: s.why }))
        }))
      }
      const fileCount = info.files.filter((f) => f.padding !== true).length
      const files = fileCount === 1 ? "1 file" : `${fileCount} files`
      yield* note(`wrote ${output}: ${files}, ${info.totalLength} bytes, ${info.pieceCount === 1 ? "1 piece" : `${info.pieceCount} pieces`} of ${info.pieceLength} bytes`)
      yield* Console.log(`Info Hash: ${toHex(created.infoHash)}`)
      if (info.v2 !== undefined) yield* Console.log(`Info Hash v2: ${toHex(info.v2.infoHash)}`)
    })
).pipe(Command.withDescription("Create a .torrent file from a file or folder"))
