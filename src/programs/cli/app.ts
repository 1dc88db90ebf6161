/**
 * The command tree of the `bittorrent` CLI. Each command lives in its own module; this one only
 * assembles them. Deep imports keep the bundled CLI's start-up short.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import { createCommand } from "./create.js"
import { daemonCommand } from "./daemon.js"
import { decodeCommand } from "./decode.js"
import { demoCommand } from "./demo.js"
import { dhtPeersCommand } from "./dht.js"
import { downloadCommand, magnetDownloadCommand } from "./download.js"
import { examples } from "./examples.js"
import { downloadPieceCommand, magnetDownloadPieceCommand } from "./downloadPiece.js"
import { handshakeCommand } from "./handshake.js"
import { type CommandHelp, readCommandHelp } from "./helpText.js"
import { infoCommand } from "./info.js"
import { magnetHandshakeCommand } from "./magnetHandshake.js"
import { magnetInfoCommand } from "./magnetInfo.js"
import { magnetParseCommand } from "./magnetParse.js"
import { peersCommand } from "./peers.js"
import { seedCommand } from "./seed.js"
import { trackerCommand } from "./tracker.js"

const subcommands = [decodeCommand, infoCommand, magnetParseCommand, peersCommand, handshakeCommand, downloadPieceCommand, downloadCommand, magnetHandshakeCommand, magnetInfoCommand, magnetDownloadPieceCommand, magnetDownloadCommand, createCommand, trackerCommand, demoCommand, seedCommand, dhtPeersCommand, daemonCommand] as const

export const program = { name: "bittorrent", version: "0.1.0", summary: "A BitTorrent client built on Effect" }

export const rootCommand = Command.make(program.name).pipe(
  Command.withDescription(program.summary),
  Command.withSubcommands(subcommands)
)

export const cli = Command.run(rootCommand, { name: program.name, version: program.version })

/** Built-in options are listed once, in the top-level help. */
const helpConfig = { ...CliConfig.defaultConfig, showBuiltIns: false }

/** Every command's help, in the order `bittorrent --help` lists them. */
export const commandHelps: ReadonlyArray<CommandHelp> = subcommands.map(({ descriptor }: { readonly descriptor: Descriptor.Command<unknown> }) => {
  const name = [...Descriptor.getNames(descriptor)][0]!
  return readCommandHelp(name, Descriptor.getHelp(descriptor, helpConfig), examples[name] ?? [])
})
