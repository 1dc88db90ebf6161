/**
 * `--state-dir DIR` (else `$XDG_STATE_HOME/effect-bittorrent`, beside the DHT's `dht.dat`): where
 * `download` keeps each torrent's resume data (`<info hash>.resume`), so that a download started
 * again takes the verified pieces of unchanged files without reading them.
 */
import * as Options from "@effect/cli/Options"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Option } from "effect"
import { homedir } from "node:os"
import { defaultStateDirectory, StateStore, type StateStoreService } from "../../services/StateStore.js"
import { note } from "./report.js"

export const stateDirOption = Options.text("state-dir").pipe(
  Options.withPseudoName("dir"),
  Options.optional,
  Options.withDescription("where resume data is kept, so that a restarted download reads no unchanged file (default: $XDG_STATE_HOME/effect-bittorrent)")
)

/** The folder's store; none (with a note on stderr) when it cannot be made: the download goes on without resume data. */
export const openStateStore = (flag: Option.Option<string>): Effect.Effect<StateStoreService | undefined> =>
  Effect.provide(StateStore, StateStore.layer(Option.getOrElse(flag, () => defaultStateDirectory(process.env, homedir())))).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.catchAll((e) => Effect.as(note(`no resume data: ${e.message}`), undefined))
  )
