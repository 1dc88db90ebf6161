import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Data, Duration, Effect, identity, Option, Stream } from "effect"
import type { DhtNode } from "../../services/Dht.js"
import type { StorageError } from "../../services/Storage.js"
import { webSeedSources } from "../../services/WebSeed.js"
import { formatPeer } from "../../domain/Peer.js"
import { download, type DownloadEvent } from "../Download.js"
import { bindListener } from "../torrent/Torrent.js"
import { defaultPort, encryptionOption, fastOption, giveUpAfterOption, listenPortOption, maxDownloadRateOption, maxPeersOption, maxUploadRateOption, newPeerId, onlyFilesOf, onlyFilesOption, outputOption, quietOption, rateLimitsOf, sequentialOption } from "./clientOptions.js"
import { lsdOption, noPexOption, withLocalDiscovery } from "./discovery.js"
import { makeJsonRenderer } from "./downloadJson.js"
import { makeRenderer, progressMode } from "./progress.js"
import { announceIntervalOption, hostOption } from "./seed.js"
import { ClientLayer } from "./layers.js"
import { note } from "./report.js"
import { isMagnet, resolveSource } from "./source.js"
import { dhtOptions, dhtPeerSource, dhtPeersOnce, startDht } from "./dht.js"
import { openStateStore, stateDirOption } from "./stateDir.js"

/** The output holds something that is not this torrent's data, and --force was not given. */
export class OutputNotOurs extends Data.TaggedError("OutputNotOurs")<{ readonly path: string }> {
  override get message() {
    return `${this.path} exists and is not this torrent's data (use --force to overwrite)`
  }
}

/** With --seed: once the download is complete, where it goes on serving (after its summary). */
const seedingNotice = () => {
  let listening = ""
  return (e: DownloadEvent): Effect.Effect<void> => {
    if (e._tag === "Started" && e.port !== undefined) listening = formatPeer({ host: e.host ?? "", port: e.port })
    return e._tag === "Completed" ? note(`seeding, listening on ${listening}; Ctrl-C to stop`) : Effect.void
  }
}

/** The options and argument of `download` and `magnet_download`. */
const downloadSpec = (argName: string, what: string) => ({
  output: outputOption.pipe(
    Options.optional,
    Options.withDescription("default: the torrent's name in the current folder (for a magnet, known once its metadata arrives)")
  ),
  source: Args.text({ name: argName }).pipe(Args.withDescription(what)),
  quiet: quietOption,
  force: Options.boolean("force").pipe(Options.withDescription("overwrite an existing output that is not this torrent's data")),
  json: Options.boolean("json").pipe(Options.withDescription("events as JSON Lines on stdout (see docs/cli.md), no progress on stderr")),
  port: listenPortOption,
  maxPeers: maxPeersOption,
  maxDownloadRate: maxDownloadRateOption,
  maxUploadRate: maxUploadRateOption,
  giveUpAfter: giveUpAfterOption,
  sequential: sequentialOption,
  onlyFiles: onlyFilesOption,
  seed: Options.boolean("seed").pipe(Options.withDescription("keep seeding after the download, until interrupted")),
  fast: fastOption,
  encryption: encryptionOption,
  host: hostOption,
  announceInterval: announceIntervalOption,
  noPex: noPexOption,
  lsd: lsdOption,
  noWebSeeds: Options.boolean("no-web-seeds").pipe(Options.withDescription("ignore the torrent's web seeds (BEP 19 url-list)")),
  stateDir: stateDirOption,
  ...dhtOptions
})

const makeDownloadCommand = (name: string, argName: string, what: string) =>
  Command.make(
    name,
    downloadSpec(argName, what),
    ({ announceInterval, encryption, fast, force, giveUpAfter, host, json, lsd, maxDownloadRate, maxPeers, maxUploadRate, noPex, noWebSeeds, onlyFiles, output, port, quiet, seed, sequential, source, stateDir, ...dhtFlags }) =>
      Effect.gen(function* () {
        const peerId = newPeerId()
        // The DHT's UDP socket takes the listen port first; the torrent's TCP listener then takes the
        // same. A magnet link needs the DHT for its metadata; a private torrent (BEP 27) never starts it.
        const wanted = { host, port: Option.getOrElse(port, () => defaultPort), fallback: Option.isNone(port) }
        // An explicit port is the TCP port whatever the DHT got; 0 and the default follow the DHT's.
        // The default port moves on when taken, an explicit one does not.
        const listen = (node: DhtNode | undefined) =>
          ({ host, port: Option.isSome(port) && port.value !== 0 ? port.value : node?.port ?? wanted.port, fallback: wanted.fallback })
        const early = isMagnet(source) ? yield* startDht(dhtFlags, wanted) : undefined
        // A magnet link listens before its metadata, so that those dials can fall back to uTP from the
        // listen port (a peer that takes TCP and drops it is dialled again, then over uTP first).
        const listener = isMagnet(source) ? yield* bindListener(listen(early)) : undefined
        const resolved = yield* resolveSource(source, { peerId, port: listener?.port ?? wanted.port, encryption, redialDropped: true }, (hash) => dhtPeersOnce(early, hash))
        const files = Option.isSome(onlyFiles) ? { files: yield* onlyFilesOf(onlyFiles.value, resolved.info) } : {}
        const dht = early ?? (resolved.info.private ? undefined : yield* startDht(dhtFlags, wanted))
        // The torrent's name is a single safe path component (Metainfo checks it).
        const target = Option.getOrElse(output, () => resolved.info.name)
        const renderer = json ? makeJsonRenderer(target) : makeRenderer(progressMode(quiet), target)
        // It listens while it downloads.
        const options = {
          peerId,
          ...(listener === undefined ? { listen: listen(dht) } : { listener }),
          maxPeers,
          giveUpAfter: Duration.seconds(giveUpAfter),
          sequential,
          ...files,
          fast,
          encryption,
          seed,
          pex: !noPex,
          rateLimits: yield* rateLimitsOf(maxDownloadRate, maxUploadRate),
          peerSources: dht === undefined || resolved.info.private ? [] : [dhtPeerSource(dht, resolved.info.infoHash)],
          webSeeds: yield* webSeedSources(noWebSeeds ? [] : resolved.webSeeds, resolved.info),
          ...Option.match(announceInterval, { onNone: () => ({}), onSome: (s) => ({ announceInterval: Duration.seconds(s) }) })
        }
        yield* download(resolved, target, options, { overwrite: force }, yield* openStateStore(stateDir)).pipe(
          // No stage at all without --seed: every stage costs per event (one per piece).
          seed ? Stream.tap(seedingNotice()) : identity,
          Stream.runForEachChunk(renderer.render),
          Effect.catchIf(
            (e): e is StorageError => e._tag === "StorageError" && e.reason === "NotOurs",
            (e) => new OutputNotOurs({ path: e.path })
          ),
          Effect.tapError((e) => renderer.failed(e.message)),
          Effect.onInterrupt(() => renderer.interrupted),
          withLocalDiscovery(lsd, host)
        )
      }).pipe(Effect.scoped, Effect.provide(ClientLayer))
  )

/** `download [-o <out>] <torrent|magnet>`: the whole torrent, verified, resumable. */
export const downloadCommand = makeDownloadCommand("download", "torrent", "a .torrent file or a magnet link").pipe(
  Command.withDescription("Download a torrent (file or magnet link), verified piece by piece, to a file or folder")
)

/** `magnet_download -o <out> <magnet>` (the classic contract): the same from a magnet link. */
export const magnetDownloadCommand = makeDownloadCommand("magnet_download", "magnet", "a magnet link").pipe(
  Command.withDescription("Download a magnet link's torrent, verified, to a file or folder")
)
