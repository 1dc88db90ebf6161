/**
 * The command tree of the `bittorrent` CLI. Each command lives in its own module; this one only
 * assembles them. Deep imports keep the bundled CLI's start-up short (STYLE.md §3.9).
 */
import * as Command from "@effect/cli/Command"
import { decodeCommand } from "./decode.js"
import { infoCommand } from "./info.js"
import { magnetParseCommand } from "./magnetParse.js"

export const rootCommand = Command.make("bittorrent").pipe(
  Command.withDescription("A BitTorrent client built on Effect"),
  Command.withSubcommands([decodeCommand, infoCommand, magnetParseCommand])
)

export const cli = Command.run(rootCommand, { name: "bittorrent", version: "0.1.0" })
