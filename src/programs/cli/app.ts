/**
 * The command tree of the `bittorrent` CLI. Each command lives in its own module; this one only
 * assembles them. Deep imports keep the bundled CLI's start-up short.
 */
import * as Command from "@effect/cli/Command"
import { createCommand } from "./create.js"
import { decodeCommand } from "./decode.js"
import { demoCommand } from "./demo.js"
import { downloadCommand, magnetDownloadCommand } from "./download.js"
import { downloadPieceCommand, magnetDownloadPieceCommand } from "./downloadPiece.js"
import { handshakeCommand } from "./handshake.js"
import { infoCommand } from "./info.js"
import { magnetHandshakeCommand } from "./magnetHandshake.js"
import { magnetInfoCommand } from "./magnetInfo.js"
import { magnetParseCommand } from "./magnetParse.js"
import { peersCommand } from "./peers.js"
import { seedCommand } from "./seed.js"
import { trackerCommand } from "./tracker.js"

export const rootCommand = Command.make("bittorrent").pipe(
  Command.withDescription("A BitTorrent client built on Effect"),
  Command.withSubcommands([decodeCommand, infoCommand, magnetParseCommand, peersCommand, handshakeCommand, downloadPieceCommand, downloadCommand, magnetHandshakeCommand, magnetInfoCommand, magnetDownloadPieceCommand, magnetDownloadCommand, createCommand, trackerCommand, demoCommand, seedCommand])
)

export const cli = Command.run(rootCommand, { name: "bittorrent", version: "0.1.0" })
