/** Options shared by the commands that download, and the peer id they announce. */
import * as Args from "@effect/cli/Args"
import * as Options from "@effect/cli/Options"
import { randomBytes } from "node:crypto"
import { makePeerId } from "../../domain/Peer.js"

export const outputOption = Options.text("output").pipe(
  Options.withAlias("o"),
  Options.withDescription("where to write: the file of a single-file torrent, the folder of a multi-file one")
)
export const quietOption = Options.boolean("quiet").pipe(Options.withAlias("q"), Options.withDescription("no progress on stderr"))
export const portOption = Options.integer("port").pipe(
  Options.withDefault(6881),
  Options.withDescription("the port announced to trackers")
)
export const defaultPort = 6881
export const listenPortOption = Options.integer("port").pipe(
  Options.optional,
  Options.withDescription(`where to accept peers while downloading (default ${defaultPort}, or the next free port up to ${defaultPort + 8}, else any; 0: any)`)
)
export const fastOption = Options.boolean("fast").pipe(
  Options.withDescription("negotiate the Fast extension (BEP 6); off by default for strict classic peers")
)
export const maxPeersOption = Options.integer("max-peers").pipe(
  Options.withDefault(30),
  Options.withDescription("how many peers to download from at once")
)
export const sequentialOption = Options.boolean("sequential").pipe(
  Options.withDescription("fetch pieces in order instead of rarest first")
)

export const newPeerId = (): Uint8Array => makePeerId((n) => new Uint8Array(randomBytes(n)))

export const magnetArg = Args.text({ name: "magnet" }).pipe(Args.withDescription("a magnet:?xt=urn:btih:... link"))
