import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Duration, Effect, Option, Stream } from "effect"
import { trackerTiers } from "../../domain/Metainfo.js"
import { formatPeer } from "../../domain/Peer.js"
import type { Encryption } from "../../services/PeerWire.js"
import { type SeedEvent, type SeedOptions, seedPath } from "../Seed.js"
import { encryptionOption, maxUploadRateOption, newPeerId, quietOption, rateLimitsOf } from "./clientOptions.js"
import { lsdOption, noPexOption, withLocalDiscovery } from "./discovery.js"
import { ClientLayer } from "./layers.js"
import { makeStatusLines, mib, type ProgressMode, progressMode } from "./progress.js"
import { readTorrent } from "./torrentFile.js"
import { withShownDefault } from "./helpText.js"
import { dhtOptions, dhtPeerSource, startDht } from "./dht.js"

export const hostOption = Options.text("host").pipe(
  Options.withDescription("the address to accept peers on (0.0.0.0: every interface)"), withShownDefault("0.0.0.0"))

export const announceIntervalOption = Options.integer("announce-interval").pipe(
  Options.optional,
  Options.withDescription("seconds between announces while seeding (default: the tracker's interval)")
)

/** The seeding options the CLI flags give. */
export const seedOptions = (
  peerId: Uint8Array,
  port: number,
  host: string,
  announceInterval: Option.Option<number>,
  pex = true
): SeedOptions => ({
  peerId,
  port,
  host,
  pex,
  ...Option.match(announceInterval, { onNone: () => ({}), onSome: (s) => ({ announceInterval: Duration.seconds(s) }) })
})

const encryptionNote: Record<Encryption, string> = { plaintext: "", "mse-plaintext": ", encrypted handshake", "mse-rc4": ", encrypted (RC4)" }

/**
 * Renders seeding on stderr: the start line (a warning when pieces of the data at `payloadPath`
 * failed to verify) and peers always (unless quiet), the upload totals as a
 * live line on a terminal, otherwise a plain line when they changed, at most every few seconds.
 */
export const makeSeedRenderer = (mode: ProgressMode, plainEveryMs = 5000, payloadPath?: string) => {
  const { line, status } = makeStatusLines(mode, plainEveryMs)
  let lastBytes = 0
  return (event: SeedEvent): Effect.Effect<void> =>
    Effect.sync(() => {
      if (mode === "quiet") return
      switch (event._tag) {
        case "Started":
          line(
            event.verified < event.pieces && payloadPath !== undefined
              ? `seeding ${event.verified} of ${event.pieces} pieces: the data at ${payloadPath} is incomplete; listening on ${formatPeer(event)}`
              : `seeding ${event.verified} of ${event.pieces} pieces, listening on ${formatPeer(event)}`
          )
          return
        case "AnnounceFailed":
          line(`announce failed: ${event.reason}`)
          return
        case "PeerConnected":
          line(`peer ${event.peer} connected (${event.client}, ${event.inbound ? "inbound" : "dialled"}${event.transport === "utp" ? ", uTP" : ""})${encryptionNote[event.encryption]}`)
          return
        case "PeerDropped":
          line(`peer ${event.peer} gone: ${event.reason}`)
          return
        case "Uploaded": {
          const text = `uploaded ${mib(event.bytes)} MiB  ${mib(event.bytesPerSecond)} MiB/s  ${event.peers} peers, ${event.unchoked} unchoked`
          if (status(text, event.bytes !== lastBytes)) lastBytes = event.bytes
          return
        }
        default:
          return
      }
    })
}

/**
 * `seed <torrent> <path>`: checks the payload at <path> against the torrent, then serves the pieces
 * that verified until interrupted (Ctrl-C announces `stopped` to the trackers and exits).
 */
export const seedCommand = Command.make(
  "seed",
  {
    torrent: Args.text({ name: "torrent" }).pipe(Args.withDescription("a .torrent file")),
    path: Args.text({ name: "path" }).pipe(
      Args.withDescription("the payload: the file of a single-file torrent, the folder of a multi-file one")
    ),
    port: Options.integer("port").pipe(
      Options.withDescription("the port to accept peers on, announced to the trackers (0: any free port)"), withShownDefault(6881)),
    host: hostOption,
    announceInterval: announceIntervalOption,
    encryption: encryptionOption,
    maxUploadRate: maxUploadRateOption,
    quiet: quietOption,
    noPex: noPexOption,
    lsd: lsdOption,
    ...dhtOptions
  },
  ({ announceInterval, encryption, host, lsd, maxUploadRate, noPex, path, port, quiet, torrent, ...dhtFlags }) =>
    Effect.gen(function* () {
      const meta = yield* readTorrent(torrent)
      const render = makeSeedRenderer(progressMode(quiet), 5000, path)
      // A private torrent (BEP 27) is announced to its trackers only.
      const dht = meta.info.private ? undefined : yield* startDht(dhtFlags, { host, port, fallback: false })
      const options = {
        // Port 0 takes the DHT's (any free) port for TCP too; an explicit port stays, whatever the DHT got.
        ...seedOptions(newPeerId(), port === 0 ? dht?.port ?? 0 : port, host, announceInterval, !noPex),
        encryption,
        rateLimits: yield* rateLimitsOf(Option.none(), maxUploadRate),
        ...(dht === undefined ? {} : { peerSources: [dhtPeerSource(dht, meta.info.infoHash)] })
      }
      yield* seedPath({ info: meta.info, trackers: trackerTiers(meta) }, path, options).pipe(
        Stream.runForEach(render),
        withLocalDiscovery(lsd, host)
      )
    }).pipe(Effect.scoped, Effect.provide(ClientLayer))
).pipe(Command.withDescription("Verify a torrent's payload on disk and seed it until interrupted"))
