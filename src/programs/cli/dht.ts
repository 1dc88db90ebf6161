/**
 * The DHT on the command line: `--dht-bootstrap HOST:PORT` (repeatable; else
 * `$BITTORRENT_DHT_BOOTSTRAP`, comma-separated; else the public routers), `--no-dht`, and
 * `--dht-state PATH` (else `$XDG_STATE_HOME/effect-bittorrent/dht.dat`), for the commands that
 * find peers; and `dht_peers <info hash>`, which prints what the DHT knows for a hash.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Console, Data, Effect, Either, Layer, Option, type Scope } from "effect"
import { homedir } from "node:os"
import { fromHex, toHex } from "../../domain/Bytes.js"
import { formatPeer, listenPortCandidates, type PeerAddress, parsePeer } from "../../domain/Peer.js"
import { defaultStatePath, Dht, type DhtNode, publicBootstrapNodes } from "../../services/Dht.js"
import type { ListenError } from "../../services/Transport.js"
import { Udp } from "../../services/Udp.js"
import type { PeerSource } from "../torrent/TorrentEvent.js"
import { checked } from "./clientOptions.js"

/** A bootstrap node that is not HOST:PORT, from the environment (flags are checked as usage errors). */
export class InvalidDhtBootstrap extends Data.TaggedError("InvalidDhtBootstrap")<{ readonly value: string }> {
  override get message() {
    return `BITTORRENT_DHT_BOOTSTRAP: ${JSON.stringify(this.value)} is not HOST:PORT`
  }
}

/** No peer for the hash in the DHT. */
export class NoDhtPeers extends Data.TaggedError("NoDhtPeers")<{ readonly infoHash: string; readonly queries: number; readonly nodes: number }> {
  override get message() {
    return this.nodes === 0
      ? `no peers for ${this.infoHash}: no DHT node answered (check --dht-bootstrap)`
      : `no peers for ${this.infoHash} in the DHT (${this.queries} queries, ${this.nodes} nodes known)`
  }
}

const bootstrapOption = Options.text("dht-bootstrap").pipe(
  Options.withPseudoName("HOST:PORT"),
  Options.repeated,
  Options.withDescription("a DHT node to join through, HOST:PORT; repeatable (default: $BITTORRENT_DHT_BOOTSTRAP, comma-separated, else the public routers)"),
  checked("--dht-bootstrap", (values: ReadonlyArray<string>) => {
    const bad = values.find((value) => parsePeer(value) === undefined)
    return bad === undefined ? undefined : `${JSON.stringify(bad)} is not HOST:PORT`
  })
)
const stateOption = Options.text("dht-state").pipe(
  Options.withPseudoName("path"),
  Options.optional,
  Options.withDescription("the file the DHT routing table is kept in (default: $XDG_STATE_HOME/effect-bittorrent/dht.dat)")
)

/** The DHT flags of `download`, `magnet_download` and `magnet_info`. */
export const dhtOptions = {
  dhtBootstrap: bootstrapOption,
  dhtState: stateOption,
  noDht: Options.boolean("no-dht").pipe(Options.withDescription("do not use the DHT to find peers"))
}

export interface DhtFlags {
  readonly dhtBootstrap: ReadonlyArray<string>
  readonly dhtState: Option.Option<string>
  readonly noDht?: boolean
}

export const DhtLive = Dht.layer.pipe(Layer.provide(Layer.merge(Udp.Live, NodeFileSystem.layer)))

/** The flags' bootstrap nodes, else the environment's, else the public routers. */
export const bootstrapNodes = (flags: DhtFlags): Either.Either<ReadonlyArray<PeerAddress>, InvalidDhtBootstrap> => {
  if (flags.dhtBootstrap.length > 0) return Either.right(flags.dhtBootstrap.flatMap((v) => parsePeer(v) ?? []))
  const env = (process.env["BITTORRENT_DHT_BOOTSTRAP"] ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
  if (env.length === 0) return Either.right(publicBootstrapNodes)
  const nodes: Array<PeerAddress> = []
  for (const value of env) {
    const peer = parsePeer(value)
    if (peer === undefined) return Either.left(new InvalidDhtBootstrap({ value }))
    nodes.push(peer)
  }
  return Either.right(nodes)
}

/**
 * Starts the command's DHT node (none with `--no-dht`) on `host:port`, the port the torrent will
 * listen on (with `fallback`: the next few when taken), else on any free port: a taken UDP port
 * costs the DHT its shared port, not the command. Runs until the scope closes.
 */
export const startDht = (
  flags: DhtFlags,
  listen: { readonly host: string; readonly port: number; readonly fallback: boolean }
): Effect.Effect<DhtNode | undefined, InvalidDhtBootstrap | ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    if (flags.noDht === true) return undefined
    const bootstrap = yield* bootstrapNodes(flags)
    const statePath = Option.getOrElse(flags.dhtState, () => defaultStatePath(process.env, homedir()))
    const dht = yield* Effect.provide(Dht, DhtLive)
    // Unlike the TCP listener, always any free port at the end: a taken UDP port costs the DHT
    // its shared port, not the command.
    const candidates = listenPortCandidates(listen.port, listen.fallback)
    const ports = candidates.at(-1) === 0 ? candidates : [...candidates, 0]
    return yield* Effect.firstSuccessOf(ports.map((port) => dht.start({ host: listen.host, port, bootstrap, statePath })))
  })

/** The DHT as a torrent's peer source: get_peers and announce_peer with our port, every 5 minutes. */
export const dhtPeerSource = (node: DhtNode, infoHash: Uint8Array): PeerSource => (port) => node.peers(infoHash, { port })

/** Peers the DHT finds for a hash in one lookup (for a magnet link before its metadata). */
export const dhtPeersOnce = (node: DhtNode | undefined, infoHash: Uint8Array): Effect.Effect<ReadonlyArray<PeerAddress>> =>
  node === undefined ? Effect.succeed([]) : Effect.map(node.getPeers(infoHash), (found) => found.peers)

const infoHashArg = Args.text({ name: "info-hash" }).pipe(
  Args.withDescription("40 hex digits"),
  Args.mapEffect((text) => {
    const hash = fromHex(text, 20)
    return hash === undefined ? Effect.fail(HelpDoc.p(`${JSON.stringify(text)} is not an info hash (40 hex digits)`)) : Effect.succeed(hash)
  })
)

/** `dht_peers <info hash>`: joins the DHT, looks the hash up once and prints the peers found, one `ip:port` a line. */
export const dhtPeersCommand = Command.make(
  "dht_peers",
  {
    infoHash: infoHashArg,
    port: Options.integer("port").pipe(Options.withDescription("the UDP port to use (default 0: any)"), Options.withDefault(0)),
    dhtBootstrap: bootstrapOption,
    dhtState: stateOption
  },
  (flags) =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = (yield* startDht(flags, { host: "0.0.0.0", port: flags.port, fallback: false }))!
        const found = yield* node.getPeers(flags.infoHash)
        if (found.peers.length === 0) {
          const stats = yield* node.stats
          return yield* new NoDhtPeers({ infoHash: toHex(flags.infoHash), queries: found.queries, nodes: stats.nodes })
        }
        yield* Console.log(found.peers.map(formatPeer).join("\n"))
      })
    )
).pipe(Command.withDescription("Look an info hash up in the DHT and print the peers found as ip:port, one a line"))
