/**
 * A session's torrents in its state store, so a restart adds them again as they were: per torrent
 * `<info hash>.session` (its record: input, folder, paused, options, when added), `<info
 * hash>.torrent` (its metainfo: the .torrent's bytes, or for a magnet link, once known, a torrent
 * of its info dict alone) and `<info hash>.resume` (fast-resume data, kept by `torrent/Resume.ts`).
 * Every file is replaced atomically by the store. A save that fails is logged and never stops the
 * torrent; a damaged file is a typed error naming it, and only its torrent is left out.
 */
import { Data, Duration, Effect, Either, Option } from "effect"
import { concatBytes, fromHex, toHex } from "../../domain/Bytes.js"
import { type Info, parseTorrent } from "../../domain/Metainfo.js"
import * as Bencode from "../../domain/Bencode.js"
import { knownLayers, pieceLayersDict } from "../../domain/PieceLayers.js"
import * as SessionRecord from "../../domain/SessionRecord.js"
import type { StateStoreService } from "../../services/StateStore.js"
import type { AddOptions, TorrentInput } from "./SessionEvent.js"
import { TorrentInput as Input } from "./SessionEvent.js"

const recordSuffix = ".session"
export const recordFileName = (key: string) => `${key}${recordSuffix}`
export const metainfoFileName = (key: string) => `${key}.torrent`
const resumeFileName = (key: string) => `${key}.resume`

/** A state file of the session that is there but cannot be used: its torrent is not restored. */
export class SessionStateUnusable extends Data.TaggedError("SessionStateUnusable")<{
  readonly path: string
  readonly detail: string
}> {
  override get message() {
    return `saved torrent not restored: ${this.path}: ${this.detail}`
  }
}

/** What a torrent's record says, from the session's view of it. */
export interface RecordedTorrent {
  readonly key: string
  readonly input: TorrentInput
  readonly options: AddOptions
  readonly directory: string
  readonly paused: boolean
  readonly addedAtMs: number
  /** Its place in the queue (undefined in records older than queue moves). */
  readonly queuePosition: number | undefined
}

const recordOf = (t: RecordedTorrent): SessionRecord.SessionRecord => ({
  infoHash: fromHex(t.key, 20)!,
  input: Input.$match(t.input, {
    Metainfo: () => ({ _tag: "Metainfo" }) as const,
    Magnet: ({ uri }) => ({ _tag: "Magnet", uri }) as const,
    InfoHash: () => ({ _tag: "InfoHash" }) as const
  }),
  directory: t.directory,
  paused: t.paused,
  addedAtMs: t.addedAtMs,
  maxPeers: t.options.maxPeers,
  seedRatio: t.options.seedingGoal?.ratio,
  seedTimeMs: t.options.seedingGoal?.time === undefined ? undefined : Duration.toMillis(Duration.decode(t.options.seedingGoal.time)),
  peers: t.options.peers ?? [],
  files: t.options.files,
  downloadLimit: limitOf(t.options.rateLimits?.download),
  uploadLimit: limitOf(t.options.rateLimits?.upload),
  queuePosition: t.queuePosition
})

/** A limit as the record keeps it: whole bytes per second, none for 0. */
const limitOf = (bytesPerSecond: number | undefined) =>
  bytesPerSecond === undefined || bytesPerSecond <= 0 ? undefined : Math.round(bytesPerSecond)

const logged = <E extends { readonly message: string }>(effect: Effect.Effect<void, E>) =>
  Effect.catchAll(effect, (e) => Effect.logWarning(`could not save the session's state: ${e.message}`))

/** Saves the torrent's record (after its metainfo, on add: a record never names a missing .torrent). */
export const saveRecord = (store: StateStoreService, torrent: RecordedTorrent): Effect.Effect<void> =>
  logged(store.write(recordFileName(torrent.key), SessionRecord.encode(recordOf(torrent))))

/** Saves the torrent's metainfo: a .torrent's own bytes, or a torrent of the info dict alone. */
export const saveMetainfo = (store: StateStoreService, key: string, metainfo: Uint8Array | Info): Effect.Effect<void> =>
  logged(store.write(metainfoFileName(key), metainfo instanceof Uint8Array ? metainfo : infoTorrent(metainfo)))

/**
 * `d4:info<info dict>e`: the info dict's exact bytes, so its hash is the torrent's; with the piece
 * layers a v2 magnet fetched (they live beside the info dict), so that it loads again.
 */
const infoTorrent = (info: Info) => {
  const layers = knownLayers(info)
  const pieceLayers = layers.size === 0 ? [] : [Bencode.text("12:piece layers"), Bencode.encode(pieceLayersDict(layers))]
  return concatBytes([Bencode.text("d4:info"), info.raw, ...pieceLayers, Bencode.text("e")])
}

/** Forgets the torrent: its record, metainfo and resume data. */
export const forget = (store: StateStoreService, key: string): Effect.Effect<void> =>
  logged(Effect.forEach([recordFileName(key), metainfoFileName(key), resumeFileName(key)], store.remove, { discard: true }))

/** A saved torrent to add again: its record, and its info dict when the metainfo is known. */
export interface SavedTorrent extends RecordedTorrent {
  readonly info: Info | undefined
}

export interface SavedState {
  /** In the order they were added (then by info hash). */
  readonly torrents: ReadonlyArray<SavedTorrent>
  readonly unusable: ReadonlyArray<SessionStateUnusable>
}

/** Every torrent the store holds a usable record of, and the files that could not be used. */
export const loadSaved = (store: StateStoreService): Effect.Effect<SavedState> =>
  Effect.gen(function* () {
    const listed = yield* Effect.either(store.list)
    if (Either.isLeft(listed)) return { torrents: [], unusable: [new SessionStateUnusable({ path: listed.left.path, detail: listed.left.detail })] }
    const records = listed.right.filter((name) => name.endsWith(recordSuffix))
    const loaded = yield* Effect.forEach(records, (name) => Effect.either(loadOne(store, name)))
    const torrents = loaded.flatMap((e) => (Either.isRight(e) ? [e.right] : []))
    torrents.sort((a, b) => a.addedAtMs - b.addedAtMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    return { torrents, unusable: loaded.flatMap((e) => (Either.isLeft(e) ? [e.left] : [])) }
  })

const readOrFail = (store: StateStoreService, name: string) =>
  Effect.mapError(store.read(name), (e) => new SessionStateUnusable({ path: e.path, detail: e.detail }))

const loadOne = (store: StateStoreService, name: string): Effect.Effect<SavedTorrent, SessionStateUnusable> =>
  Effect.gen(function* () {
    const unusable = (file: string) => (detail: string) => new SessionStateUnusable({ path: store.pathOf(file), detail })
    const bytes = yield* readOrFail(store, name)
    if (Option.isNone(bytes)) return yield* unusable(name)("it is gone")
    const record = yield* Either.mapLeft(SessionRecord.decode(bytes.value), (e) => unusable(name)(e.message))
    const key = name.slice(0, -recordSuffix.length)
    if (toHex(record.infoHash) !== key) return yield* unusable(name)("it is for another torrent")
    const metaName = metainfoFileName(key)
    const meta = yield* readOrFail(store, metaName)
    const metaBytes = Option.getOrUndefined(meta)
    if (metaBytes === undefined && record.input._tag === "Metainfo") return yield* unusable(metaName)("it is missing")
    const parsed = metaBytes === undefined ? undefined : yield* Either.mapLeft(parseTorrent(metaBytes), (e) => unusable(metaName)(e.message))
    if (parsed !== undefined && toHex(parsed.info.infoHash) !== key) return yield* unusable(metaName)("it is for another torrent")
    const input = record.input._tag === "Magnet"
      ? Input.Magnet({ uri: record.input.uri })
      : metaBytes !== undefined && record.input._tag === "Metainfo" ? Input.Metainfo({ bytes: metaBytes }) : Input.InfoHash({ hex: key })
    const { addedAtMs, directory, paused, queuePosition } = record
    return { key, input, options: optionsOf(record), directory, paused, addedAtMs, queuePosition, info: parsed?.info }
  })

const optionsOf = (record: SessionRecord.SessionRecord): AddOptions => {
  const goal = {
    ...(record.seedRatio === undefined ? {} : { ratio: record.seedRatio }),
    ...(record.seedTimeMs === undefined ? {} : { time: Duration.millis(record.seedTimeMs) })
  }
  return {
    directory: record.directory,
    ...(record.paused ? { paused: true } : {}),
    ...(record.maxPeers === undefined ? {} : { maxPeers: record.maxPeers }),
    ...(Object.keys(goal).length === 0 ? {} : { seedingGoal: goal }),
    ...(record.peers.length === 0 ? {} : { peers: record.peers }),
    ...(record.files === undefined ? {} : { files: record.files }),
    ...(record.downloadLimit === undefined && record.uploadLimit === undefined
      ? {}
      : { rateLimits: { download: record.downloadLimit, upload: record.uploadLimit } })
  }
}
