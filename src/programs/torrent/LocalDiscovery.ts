/**
 * Local service discovery (BEP 14) for one torrent, when an `Lsd` service is provided: the peers
 * heard announcing its info hash become candidates, and a listening torrent announces itself at
 * the start and every 5 minutes. A private torrent (BEP 27) does neither. Without an `Lsd` in the
 * context there is no LSD: it is asked for by providing the layer.
 */
import { Effect, Option, Schedule, type Scope, Stream } from "effect"
import { equalBytes } from "../../domain/Bytes.js"
import type { PeerAddress } from "../../domain/Peer.js"
import { Lsd } from "../../services/Lsd.js"
import type { TorrentState } from "./TorrentState.js"

export const lsdAnnounceInterval = "5 minutes"

export const startLocalDiscovery = (
  state: TorrentState,
  addPeer: (address: PeerAddress) => Effect.Effect<void>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const lsd = yield* Effect.serviceOption(Lsd)
    if (Option.isNone(lsd) || state.info.private) return
    const { infoHash } = state.info
    const heard = yield* lsd.value.subscribe
    yield* heard.pipe(
      Stream.filter((p) => equalBytes(p.infoHash, infoHash)),
      Stream.runForEach((p) => addPeer(p.address)),
      Effect.forkScoped
    )
    if (!state.listening) return
    yield* lsd.value.announce([infoHash], state.port).pipe(
      Effect.catchAll((e) => Effect.logWarning(e.message)),
      Effect.repeat(Schedule.spaced(lsdAnnounceInterval)),
      Effect.forkScoped
    )
  })
