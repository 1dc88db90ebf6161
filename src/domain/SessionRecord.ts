/**
 * A session's record of one torrent: what it was added from, where its files go, whether it is
 * paused, the options it was added with and when, so a restarted session adds it again as it was.
 * Bencoded, as the resume data beside it is. The torrent's metainfo is kept in a file of its own
 * (`<info hash>.torrent`); a magnet link's record keeps the link, for its trackers and name.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { type FilePriority, filePriorities } from "./FileSelection.js"
import type { PeerAddress } from "./Peer.js"

/** What the torrent was added from (a .torrent's bytes live in the metainfo file). */
export type RecordInput =
  | { readonly _tag: "Metainfo" }
  | { readonly _tag: "Magnet"; readonly uri: string }
  | { readonly _tag: "InfoHash" }

export interface SessionRecord {
  readonly infoHash: Uint8Array
  readonly input: RecordInput
  readonly directory: string
  readonly paused: boolean
  /** When it was added, in milliseconds since the epoch: restored torrents get their ids in this order. */
  readonly addedAtMs: number
  readonly maxPeers: number | undefined
  /** Uploaded over size, then stop. */
  readonly seedRatio: number | undefined
  /** Seeding time, then stop. */
  readonly seedTimeMs: number | undefined
  /** Peers it was added with. */
  readonly peers: ReadonlyArray<PeerAddress>
  /** One priority per file, once set (undefined: every file normal). */
  readonly files: ReadonlyArray<FilePriority> | undefined
  /** Its own speed limits, bytes per second. */
  readonly downloadLimit: number | undefined
  readonly uploadLimit: number | undefined
  /** Its place in the session's queue (0 first): restored torrents keep their order (absent in older records). */
  readonly queuePosition: number | undefined
}

const formatVersion = 1n

export class SessionRecordError extends Data.TaggedError("SessionRecordError")<{
  /** Which field is wrong, e.g. `peers[1]`. */
  readonly field: string
  readonly detail: string
}> {
  override get message() {
    return `invalid session record: ${this.field}: ${this.detail}`
  }
}

const inputTags = { Metainfo: "metainfo", Magnet: "magnet", InfoHash: "info hash" } as const

const optionalInt = (n: number | undefined) => (n === undefined ? undefined : Bencode.int(n))

export const encode = (record: SessionRecord): Uint8Array =>
  Bencode.encode(
    Bencode.dict({
      version: formatVersion,
      "info hash": record.infoHash,
      input: Bencode.text(inputTags[record.input._tag]),
      magnet: record.input._tag === "Magnet" ? Bencode.text(record.input.uri) : undefined,
      directory: Bencode.text(record.directory),
      paused: Bencode.int(record.paused ? 1 : 0),
      "added at": Bencode.int(record.addedAtMs),
      "max peers": optionalInt(record.maxPeers),
      // Bencode has no fractions: the ratio as its shortest decimal text.
      "seed ratio": record.seedRatio === undefined ? undefined : Bencode.text(String(record.seedRatio)),
      "seed time": optionalInt(record.seedTimeMs),
      peers: record.peers.map((p) => [Bencode.text(p.host), Bencode.int(p.port)]),
      files: record.files?.map(Bencode.text),
      "download limit": optionalInt(record.downloadLimit),
      "upload limit": optionalInt(record.uploadLimit),
      "queue position": optionalInt(record.queuePosition)
    })
  )

type Decoded<A> = Either.Either<A, SessionRecordError>

const wrong = (field: string, detail: string): Decoded<never> => Either.left(new SessionRecordError({ field, detail }))

const field = (d: Bencode.BencodeDict, key: string): Decoded<Bencode.Bencode> => {
  const value = Bencode.get(d, key)
  return value === undefined ? wrong(key, "is missing") : Either.right(value)
}

const safeInt = (value: Bencode.Bencode | undefined, name: string, max = Number.MAX_SAFE_INTEGER): Decoded<number> =>
  Bencode.isInt(value) && value >= 0n && value <= BigInt(max) ? Either.right(Number(value)) : wrong(name, `is not an integer from 0 to ${max}`)

const optional = <A>(d: Bencode.BencodeDict, key: string, read: (v: Bencode.Bencode) => Decoded<A>): Decoded<A | undefined> => {
  const value = Bencode.get(d, key)
  return value === undefined ? Either.right(undefined) : read(value)
}

const textOf = (value: Bencode.Bencode | undefined, name: string): Decoded<string> =>
  Bencode.isBytes(value) ? Either.right(Bencode.toText(value)) : wrong(name, "is not a string")

const inputOf = (root: Bencode.BencodeDict): Decoded<RecordInput> =>
  Either.gen(function* () {
    const tag = yield* textOf(yield* field(root, "input"), "input")
    if (tag === inputTags.Metainfo) return { _tag: "Metainfo" } as const
    if (tag === inputTags.InfoHash) return { _tag: "InfoHash" } as const
    if (tag !== inputTags.Magnet) return yield* wrong("input", `is not one of metainfo, magnet, info hash`)
    return { _tag: "Magnet", uri: yield* textOf(yield* field(root, "magnet"), "magnet") } as const
  })

const ratioOf = (value: Bencode.Bencode): Decoded<number> =>
  Either.flatMap(textOf(value, "seed ratio"), (s) => {
    const ratio = Number(s)
    return s.trim() !== "" && Number.isFinite(ratio) && ratio >= 0 ? Either.right(ratio) : wrong("seed ratio", "is not a non-negative number")
  })

const peerOf = (value: Bencode.Bencode, name: string): Decoded<PeerAddress> =>
  Bencode.isList(value) && value.length === 2
    ? Either.all({ host: textOf(value[0], `${name}.host`), port: safeInt(value[1], `${name}.port`, 65535) })
    : wrong(name, "is not [host, port]")

const peersOf = (value: Bencode.Bencode): Decoded<ReadonlyArray<PeerAddress>> =>
  Bencode.isList(value) ? Either.all(value.map((v, i) => peerOf(v, `peers[${i}]`))) : wrong("peers", "is not a list")

const prioritiesOf = (value: Bencode.Bencode): Decoded<ReadonlyArray<FilePriority>> =>
  Bencode.isList(value)
    ? Either.all(value.map((v, i) =>
        Either.flatMap(textOf(v, `files[${i}]`), (p) =>
          filePriorities.includes(p as FilePriority) ? Either.right(p as FilePriority) : wrong(`files[${i}]`, `is not one of ${filePriorities.join(", ")}`))))
    : wrong("files", "is not a list")

/** Reads a record; any damage (truncation, a wrong type, a missing field) is a typed error naming the field. */
export const decode = (bytes: Uint8Array): Decoded<SessionRecord> =>
  Either.gen(function* () {
    const root = yield* Either.mapLeft(Bencode.decode(bytes), (e) => new SessionRecordError({ field: "(file)", detail: e.message }))
    if (!Bencode.isDict(root)) return yield* wrong("(file)", "is not a dictionary")
    if ((yield* field(root, "version")) !== formatVersion) return yield* wrong("version", `is not ${formatVersion}`)
    const infoHash = yield* field(root, "info hash")
    if (!Bencode.isBytes(infoHash) || infoHash.length !== 20) return yield* wrong("info hash", "is not 20 bytes")
    const paused = yield* safeInt(yield* field(root, "paused"), "paused", 1)
    return {
      infoHash,
      input: yield* inputOf(root),
      directory: yield* textOf(yield* field(root, "directory"), "directory"),
      paused: paused === 1,
      addedAtMs: yield* safeInt(yield* field(root, "added at"), "added at"),
      maxPeers: yield* optional(root, "max peers", (v) => safeInt(v, "max peers")),
      seedRatio: yield* optional(root, "seed ratio", ratioOf),
      seedTimeMs: yield* optional(root, "seed time", (v) => safeInt(v, "seed time")),
      peers: yield* peersOf(yield* field(root, "peers")),
      files: yield* optional(root, "files", prioritiesOf),
      downloadLimit: yield* optional(root, "download limit", (v) => safeInt(v, "download limit")),
      uploadLimit: yield* optional(root, "upload limit", (v) => safeInt(v, "upload limit")),
      queuePosition: yield* optional(root, "queue position", (v) => safeInt(v, "queue position"))
    }
  })
