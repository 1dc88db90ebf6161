/**
 * `daemon`: a session of many torrents that runs until SIGINT, SIGTERM or an RPC `session-close`,
 * kept in a state folder (restarted, it takes its torrents back) and driven over HTTP: Transmission's RPC (so
 * `transmission-remote` and the tools built on it work), a REST API, a web UI, file streaming and
 * metrics, all on one port of loopback by default.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Console, Data, Effect, Layer, Option } from "effect"
import { homedir } from "node:os"
import * as path from "node:path"
import { type Credentials, parseCredentials } from "../../domain/HttpAccess.js"
import { defaultStateDirectory, StateStore } from "../../services/StateStore.js"
import { sessionDefaults } from "../session/SessionEvent.js"
import { atLeast, checked, defaultPort, encryptionOption, listenPortOption, maxDownloadRateOption, maxUploadRateOption, newPeerId } from "./clientOptions.js"
import { bootstrapNodes, DhtLive, dhtOptions } from "./dht.js"
import { withShownDefault } from "./helpText.js"
import { ClientLayer } from "./layers.js"
import { hostOption } from "./seed.js"

/** `--rpc-auth` or `BITTORRENT_RPC_AUTH` is not `user:password`. */
export class InvalidRpcAuth extends Data.TaggedError("InvalidRpcAuth")<{ readonly source: string }> {
  override get message() {
    return `${this.source}: expected user:password`
  }
}

const count = (name: string, description: string, value: number) =>
  Options.integer(name).pipe(Options.withDescription(description), withShownDefault(value), checked(`--${name}`, atLeast(1)))

const optionalText = (name: string, pseudoName: string, description: string) =>
  Options.text(name).pipe(Options.withPseudoName(pseudoName), Options.optional, Options.withDescription(description))

const daemonOptions = {
  rpcHost: Options.text("rpc-host").pipe(Options.withDescription("the address the HTTP API listens on"), withShownDefault("127.0.0.1")),
  rpcPort: Options.integer("rpc-port").pipe(Options.withDescription("the HTTP API's port (0: any free port)"), withShownDefault(9091)),
  rpcAuth: optionalText("rpc-auth", "user:password", "ask every HTTP client for these Basic credentials (default: $BITTORRENT_RPC_AUTH, else none)"),
  rpcAllowedHosts: optionalText("rpc-allowed-hosts", "names", "comma-separated host names the API answers to, beside IP addresses and localhost (against DNS rebinding)"),
  downloadDir: optionalText("download-dir", "dir", "where added torrents go unless told otherwise (default: ~/Downloads)"),
  stateDir: optionalText("state-dir", "dir", "where the daemon keeps its torrents and their resume data (default: $XDG_STATE_HOME/effect-bittorrent/daemon)"),
  port: listenPortOption,
  host: hostOption,
  maxDownloadRate: maxDownloadRateOption,
  maxUploadRate: maxUploadRateOption,
  maxActiveDownloads: count("max-active-downloads", "torrents downloading at once (the others wait in the queue)", sessionDefaults.maxActiveDownloads),
  maxActiveSeeds: count("max-active-seeds", "torrents seeding at once", sessionDefaults.maxActiveSeeds),
  maxConnections: count("max-connections", "peer connections at once, across all torrents", sessionDefaults.maxConnections),
  maxPeersPerTorrent: count("max-peers-per-torrent", "peer connections at once for one torrent", sessionDefaults.maxPeersPerTorrent),
  encryption: encryptionOption,
  ...dhtOptions
}

const credentialsOf = (flag: Option.Option<string>): Effect.Effect<Credentials | undefined, InvalidRpcAuth> => {
  const [source, text] = Option.isSome(flag) ? ["--rpc-auth", flag.value] : ["BITTORRENT_RPC_AUTH", process.env["BITTORRENT_RPC_AUTH"]]
  if (text === undefined || text === "") return Effect.succeed(undefined)
  const credentials = parseCredentials(text)
  return credentials === undefined ? Effect.fail(new InvalidRpcAuth({ source })) : Effect.succeed(credentials)
}

export const daemonCommand = Command.make("daemon", daemonOptions, (flags) =>
  Effect.gen(function* () {
    const credentials = yield* credentialsOf(flags.rpcAuth)
    const stateDir = Option.getOrElse(flags.stateDir, () => path.join(defaultStateDirectory(process.env, homedir()), "daemon"))
    const stateStore = yield* Effect.provide(StateStore, StateStore.layer(stateDir))
    const port = Option.getOrElse(flags.port, () => defaultPort)
    const dht = flags.noDht === true ? undefined : { bootstrap: yield* bootstrapNodes(flags), ...Option.match(flags.dhtState, { onNone: () => ({}), onSome: (statePath) => ({ statePath }) }) }
    const { start } = yield* Effect.promise(() => import("../Daemon.js"))
    const daemon = yield* start({
      http: {
        host: flags.rpcHost,
        port: flags.rpcPort,
        ...(credentials === undefined ? {} : { credentials }),
        allowedHosts: Option.match(flags.rpcAllowedHosts, { onNone: () => [], onSome: (t) => t.split(",").map((h) => h.trim()).filter((h) => h !== "") })
      },
      session: {
        peerId: newPeerId(),
        // The default port falls back to the next free ones; a port asked for is that port.
        listen: { host: flags.host, port, fallback: Option.isNone(flags.port) },
        downloadDirectory: path.resolve(Option.getOrElse(flags.downloadDir, () => path.join(homedir(), "Downloads"))),
        maxConnections: flags.maxConnections,
        maxPeersPerTorrent: flags.maxPeersPerTorrent,
        maxActiveDownloads: flags.maxActiveDownloads,
        maxActiveSeeds: flags.maxActiveSeeds,
        encryption: flags.encryption,
        ...(dht === undefined ? {} : { dht })
      },
      stateStore,
      ...Option.match(flags.maxDownloadRate, { onNone: () => ({}), onSome: (downloadRate) => ({ downloadRate }) }),
      ...Option.match(flags.maxUploadRate, { onNone: () => ({}), onSome: (uploadRate) => ({ uploadRate }) }),
      version: "0.1.0"
    })
    const { url } = daemon.address
    yield* Console.log(`daemon: listening on ${url} (Transmission RPC ${url}/transmission/rpc, web UI ${url}/web/), peers on port ${daemon.session.port ?? "none"}`)
    // Until interrupted (SIGINT, SIGTERM) or asked over RPC; either way the scope closes the same.
    yield* daemon.closeRequested
    yield* Console.log("daemon: shutting down (session-close)")
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(ClientLayer, NodeFileSystem.layer, flags.noDht === true ? Layer.empty : DhtLive))
  )).pipe(Command.withDescription("Run a session of many torrents, driven over HTTP (Transmission RPC, REST, web UI, streaming), until SIGINT, SIGTERM or a session-close over RPC"))
