/**
 * Downloading, the classic way in: a torrent run until every wanted piece is verified and on
 * disk (`runEngine` into any piece sink, `download` into a torrent's files). Both are the one
 * torrent core of `torrent/Torrent.ts`; these entry points only pick its defaults: the Fast
 * extension stays off (the classic commands' strict peers expect exactly the extension bit, see
 * CONTRACT.md) unless asked for.
 */
import { Effect, Option, Stream } from "effect"
import type { Bitfield } from "../domain/Bitfield.js"
import { wantedFiles } from "../domain/FileSelection.js"
import type { Hasher } from "../services/Hasher.js"
import type { PeerWire } from "../services/PeerWire.js"
import type { StateStoreService } from "../services/StateStore.js"
import { type OpenOptions, Storage } from "../services/Storage.js"
import type { Tracker } from "../services/Tracker.js"
import type { Transport } from "../services/Transport.js"
import { keepResumeData, loadResume, notingWrites, scanResumed } from "./torrent/Resume.js"
import { type PieceSink, run } from "./torrent/Torrent.js"
import {
  DownloadStalled,
  NoPeerSources,
  TorrentEvent,
  type TorrentError,
  type TorrentOptions,
  type TorrentSource
} from "./torrent/TorrentEvent.js"

export { clientName } from "./torrent/PeerSession.js"
export { announceRetry } from "./torrent/Announcer.js"
export { DownloadStalled, NoPeerSources, type PieceSink }

export type DownloadEvent = TorrentEvent
export const DownloadEvent = TorrentEvent
export type DownloadError = TorrentError
export type DownloadSource = TorrentSource
export type EngineOptions = TorrentOptions

/**
 * Runs a download into an opened storage. The stream ends after the last wanted piece is
 * verified and written (or goes on seeding with `seed`); every connection is closed when it ends
 * or is interrupted.
 */
export const runEngine = (
  source: DownloadSource,
  sink: PieceSink,
  have: Bitfield,
  options: EngineOptions
): Stream.Stream<DownloadEvent, DownloadError, Tracker | PeerWire | Hasher | Transport> =>
  run(source, sink, have, { fast: false, ...options })

/**
 * Downloads a torrent to `target` (the file of a single-file torrent, the folder of a multi-file
 * one). Data already there is checked first and only verified pieces are kept (resume); the scan
 * reads nothing of a fresh download (Storage knows what lies beyond the files' sizes at open).
 * Unfinished files are `<path>.part` until verified; data there that is not this torrent's fails
 * the download (`StorageError` with reason `NotOurs`) unless `open.overwrite`. With a `resume`
 * store, the torrent's resume data there settles the pieces of unchanged files without reading
 * them, and is kept current as pieces verify (a damaged record is logged and ignored).
 */
export const download = (
  source: DownloadSource,
  target: string,
  options: EngineOptions,
  /** How the storage opens (e.g. `overwrite` data that is not this torrent's). */
  open: OpenOptions = {},
  resume?: StateStoreService
): Stream.Stream<DownloadEvent, DownloadError, Tracker | PeerWire | Hasher | Transport | Storage> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      // Skipped files are not created (`TorrentOptions.files`).
      const wanted = options.files === undefined ? {} : { wanted: wantedFiles(source.info, options.files) }
      const storage = yield* (yield* Storage).open(source.info, target, { ...open, ...wanted })
      if (resume === undefined) return runEngine(source, storage, yield* storage.scan, options)
      const record = yield* loadResume(resume, source.info).pipe(
        Effect.catchAll((e) => Effect.as(Effect.logWarning(e.message), Option.none()))
      )
      const resumed = yield* scanResumed(storage, source.info, record)
      const keeper = yield* keepResumeData(resume, source.info, storage, resumed.have)
      return runEngine(source, notingWrites(storage, keeper.verified), resumed.have, options)
    })
  )
