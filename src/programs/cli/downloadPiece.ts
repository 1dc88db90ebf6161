import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as FileSystem from "@effect/platform/FileSystem"
import { Data, Effect, Stream } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import { trackerTiers } from "../../domain/Metainfo.js"
import { StorageError } from "../../services/Storage.js"
import { runEngine } from "../Download.js"
import { newPeerId, outputOption, portOption, quietOption } from "./clientOptions.js"
import { ClientLayer } from "./layers.js"
import { makeRenderer, progressMode } from "./progress.js"
import { readTorrent } from "./torrentFile.js"

export class PieceIndexOutOfRange extends Data.TaggedError("PieceIndexOutOfRange")<{
  readonly index: number
  readonly pieceCount: number
}> {
  override get message() {
    return `piece ${this.index} does not exist: the torrent has pieces 0 to ${this.pieceCount - 1}`
  }
}

/** `download_piece -o <out> <torrent> <index>`: one piece, verified, written alone to <out>. */
export const downloadPieceCommand = Command.make(
  "download_piece",
  {
    output: outputOption,
    torrent: Args.text({ name: "torrent" }).pipe(Args.withDescription("a .torrent file")),
    index: Args.integer({ name: "piece-index" }),
    quiet: quietOption,
    port: portOption
  },
  ({ index, output, port, quiet, torrent }) =>
    Effect.gen(function* () {
      const meta = yield* readTorrent(torrent)
      const { info } = meta
      if (index < 0 || index >= info.pieceCount) return yield* new PieceIndexOutOfRange({ index, pieceCount: info.pieceCount })
      const fs = yield* FileSystem.FileSystem
      const sink = {
        writePiece: (_: number, data: Uint8Array) =>
          fs.writeFile(output, data).pipe(
            Effect.mapError((cause) => new StorageError({ path: output, operation: "write", reason: "Io", cause }))
          )
      }
      const render = makeRenderer(progressMode(quiet))
      yield* runEngine({ info, trackers: trackerTiers(meta) }, sink, Bitfield.empty(info.pieceCount), {
        peerId: newPeerId(),
        port,
        pieces: [index]
      }).pipe(Stream.runForEach(render))
    }).pipe(Effect.provide(ClientLayer))
).pipe(Command.withDescription("Download one piece of a torrent, verified, to a file"))
