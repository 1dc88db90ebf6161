import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as FileSystem from "@effect/platform/FileSystem"
import { Data, Effect, Stream } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import { partPath, StorageError } from "../../services/Storage.js"
import { runEngine } from "../Download.js"
import { newPeerId, outputOption, portOption, quietOption } from "./clientOptions.js"
import { TcpClientLayer } from "./layers.js"
import { makeRenderer, progressMode } from "./progress.js"
import { resolveSource } from "./source.js"

export class PieceIndexOutOfRange extends Data.TaggedError("PieceIndexOutOfRange")<{
  readonly index: number
  readonly pieceCount: number
}> {
  override get message() {
    return `piece ${this.index} does not exist: the torrent has pieces 0 to ${this.pieceCount - 1}`
  }
}

const makeDownloadPieceCommand = (name: string, argName: string, what: string) =>
  Command.make(
    name,
    {
      output: outputOption,
      source: Args.text({ name: argName }).pipe(Args.withDescription(what)),
      index: Args.integer({ name: "piece-index" }),
      quiet: quietOption,
      port: portOption
    },
    ({ index, output, port, quiet, source }) =>
      Effect.gen(function* () {
        const peerId = newPeerId()
        const resolved = yield* resolveSource(source, { peerId, port })
        const { info } = resolved
        if (index < 0 || index >= info.pieceCount) return yield* new PieceIndexOutOfRange({ index, pieceCount: info.pieceCount })
        const fs = yield* FileSystem.FileSystem
        // The piece alone goes to <out>: a one-piece sink instead of the torrent's files. The engine
        // hands it only a verified piece, written beside <out> and renamed, so <out> is never partial.
        const sink = {
          writePiece: (_: number, data: Uint8Array) =>
            fs.writeFile(partPath(output), data).pipe(
              Effect.mapError((cause) => new StorageError({ path: partPath(output), operation: "write", reason: "Io", cause })),
              Effect.zipRight(fs.rename(partPath(output), output).pipe(
                Effect.mapError((cause) => new StorageError({ path: output, operation: "rename", reason: "Io", cause }))
              ))
            )
        }
        const renderer = makeRenderer(progressMode(quiet), output)
        yield* runEngine(resolved, sink, Bitfield.empty(info.pieceCount), { peerId, port, pieces: [index] }).pipe(
          Stream.runForEachChunk(renderer.render),
          Effect.onInterrupt(() => renderer.interrupted)
        )
      }).pipe(Effect.provide(TcpClientLayer))
  )

/** `download_piece -o <out> <torrent|magnet> <index>`: one piece, verified, written alone to <out>. */
export const downloadPieceCommand = makeDownloadPieceCommand("download_piece", "torrent", "a .torrent file or a magnet link").pipe(
  Command.withDescription("Download one piece of a torrent, verified, to a file")
)

/** `magnet_download_piece -o <out> <magnet> <index>` (the classic contract). */
export const magnetDownloadPieceCommand = makeDownloadPieceCommand("magnet_download_piece", "magnet", "a magnet link").pipe(
  Command.withDescription("Download one piece of a magnet link's torrent, verified, to a file")
)
