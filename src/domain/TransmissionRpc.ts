/**
 * Transmission's RPC, the pure parts: a request's envelope (`method`, `arguments`, `tag`), the
 * argument readers (ids, index lists, numbers, flags), what our states and numbers become in
 * Transmission's vocabulary (status codes, eta, peer flags, file priorities) and the `table`
 * form of `torrent-get`. Speeds cross the wire in Transmission's kB/s: 1000 bytes per second.
 */
import { Data, Either } from "effect"
import { fromBase64 } from "./Bytes.js"
import type { FilePriority } from "./FileSelection.js"

/** What a request failed on: Transmission answers it as `{"result": message}` with HTTP 200. */
export class RpcArgumentError extends Data.TaggedError("RpcArgumentError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

export interface RpcRequest {
  readonly method: string
  readonly arguments: Readonly<Record<string, unknown>>
  /** Echoed in the answer, whatever it is. */
  readonly tag: unknown
}

type Read<A> = Either.Either<A, RpcArgumentError>

const wrong = (message: string): Read<never> => Either.left(new RpcArgumentError({ reason: message }))

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The envelope of a parsed JSON body; what is not an object with a method name is refused. */
export const decodeRequest = (body: unknown): Read<RpcRequest> => {
  if (!isRecord(body)) return wrong("the request is not a JSON object")
  const { method, tag } = body
  if (typeof method !== "string") return wrong("no method name")
  const args = body["arguments"] ?? {}
  if (!isRecord(args)) return wrong("arguments is not an object")
  return Either.right({ method, arguments: args, tag })
}

/** Which torrents a request names. */
export type IdSelector =
  | { readonly _tag: "All" }
  | { readonly _tag: "RecentlyActive" }
  /** Session ids and info hashes (lower-case hex); names of torrents that are not there are ignored. */
  | { readonly _tag: "Some"; readonly ids: ReadonlyArray<number>; readonly hashes: ReadonlyArray<string> }

const hashPattern = /^[0-9a-f]{40}$/i

/** `ids`: absent (all), a number, "recently-active", a hash, or a list of numbers and hashes. */
export const readIds = (value: unknown): Read<IdSelector> => {
  if (value === undefined) return Either.right({ _tag: "All" })
  if (value === "recently-active") return Either.right({ _tag: "RecentlyActive" })
  const items = Array.isArray(value) ? value : [value]
  const ids: Array<number> = []
  const hashes: Array<string> = []
  for (const item of items) {
    if (typeof item === "number" && Number.isSafeInteger(item)) ids.push(item)
    else if (typeof item === "string" && hashPattern.test(item)) hashes.push(item.toLowerCase())
    else return wrong(`ids: ${JSON.stringify(item)} is not a torrent id or an info hash`)
  }
  return Either.right({ _tag: "Some", ids, hashes })
}

export const selects = (selector: IdSelector, torrent: { readonly id: number; readonly infoHash: string }): boolean =>
  selector._tag !== "Some" || selector.ids.includes(torrent.id) || selector.hashes.includes(torrent.infoHash)

/** An optional argument of a type; a present value of another type is an error. */
const optional = <A>(check: (v: unknown) => v is A, what: string) => (args: Readonly<Record<string, unknown>>, key: string): Read<A | undefined> => {
  const value = args[key]
  return value === undefined ? Either.right(undefined) : check(value) ? Either.right(value) : wrong(`${key} is not ${what}`)
}

export const readString = optional((v): v is string => typeof v === "string", "a string")
export const readNumber = optional((v): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0, "a non-negative number")
/** Transmission's clients send flags as booleans, and some as 0 or 1. */
export const readFlag = (args: Readonly<Record<string, unknown>>, key: string): Read<boolean | undefined> => {
  const value = args[key]
  if (value === undefined || typeof value === "boolean") return Either.right(value)
  return value === 0 || value === 1 ? Either.right(value === 1) : wrong(`${key} is not a boolean`)
}

const isIndexList = (v: unknown): v is ReadonlyArray<number> => Array.isArray(v) && v.every((i) => Number.isSafeInteger(i) && i >= 0)
export const readIndexList = optional(isIndexList, "a list of file indices")
export const readStringList = optional((v): v is ReadonlyArray<string> => Array.isArray(v) && v.every((s) => typeof s === "string"), "a list of strings")

/** How `torrent-set` changes the files: index lists, where an empty list means every file. */
export interface FileChanges {
  readonly wanted?: ReadonlyArray<number> | undefined
  readonly unwanted?: ReadonlyArray<number> | undefined
  readonly high?: ReadonlyArray<number> | undefined
  readonly normal?: ReadonlyArray<number> | undefined
  readonly low?: ReadonlyArray<number> | undefined
}

export const readFileChanges = (args: Readonly<Record<string, unknown>>): Read<FileChanges> =>
  Either.all({
    wanted: readIndexList(args, "files-wanted"),
    unwanted: readIndexList(args, "files-unwanted"),
    high: readIndexList(args, "priority-high"),
    normal: readIndexList(args, "priority-normal"),
    low: readIndexList(args, "priority-low")
  })

export const hasFileChanges = (c: FileChanges): boolean => Object.values(c).some((v) => v !== undefined)

/**
 * The priorities after the changes. Ours merge "wanted" and "priority": an unwanted file is
 * `skip`; a file wanted again is `normal`; a priority set on an unwanted file leaves it unwanted.
 */
export const applyFileChanges = (current: ReadonlyArray<FilePriority>, changes: FileChanges): Read<ReadonlyArray<FilePriority>> => {
  const next = [...current]
  const each = (list: ReadonlyArray<number> | undefined, f: (p: FilePriority) => FilePriority): Read<void> => {
    if (list === undefined) return Either.right(undefined)
    const bad = list.find((i) => i >= next.length)
    if (bad !== undefined) return wrong(`file index ${bad} does not exist: the torrent has ${next.length} files`)
    for (const i of list.length === 0 ? next.keys() : list) next[i] = f(next[i]!)
    return Either.right(undefined)
  }
  return Either.gen(function* () {
    yield* each(changes.unwanted, () => "skip")
    yield* each(changes.wanted, (p) => (p === "skip" ? "normal" : p))
    yield* each(changes.high, (p) => (p === "skip" ? p : "high"))
    yield* each(changes.normal, (p) => (p === "skip" ? p : "normal"))
    yield* each(changes.low, (p) => (p === "skip" ? p : "low"))
    return next
  })
}

/** Transmission's priority number (-1 low, 0 normal, 1 high); an unwanted file keeps normal. */
export const priorityNumber = (p: FilePriority): number => (p === "high" ? 1 : p === "low" ? -1 : 0)

/** Our torrent states as Transmission's status numbers (0 stopped ... 6 seeding). */
export type RpcStatus = 0 | 1 | 2 | 3 | 4 | 5 | 6

export const statusCode = (status: string, complete: boolean): RpcStatus => {
  switch (status) {
    case "checking":
      return 2
    case "queued":
      return complete ? 5 : 3
    case "metadata":
    case "downloading":
      return 4
    case "seeding":
      return 6
    default:
      return 0 // paused, finished, error
  }
}

/** Seconds to go at the current rate; -1 when there is nothing left, -2 when it cannot be told. */
export const eta = (leftBytes: number, bytesPerSecond: number): number =>
  leftBytes <= 0 ? -1 : bytesPerSecond <= 0 ? -2 : Math.round(leftBytes / bytesPerSecond)

/** kB/s (Transmission's k is 1000) from bytes per second, whole. */
export const toKBps = (bytesPerSecond: number | undefined): number => Math.round((bytesPerSecond ?? 0) / 1000)
export const fromKBps = (kBps: number): number => Math.round(kBps * 1000)

export interface PeerFlags {
  readonly amChoking: boolean
  readonly amInterested: boolean
  readonly peerChoking: boolean
  readonly peerInterested: boolean
  readonly encrypted: boolean
  readonly inbound: boolean
  readonly transport: "tcp" | "utp"
}

/** Transmission's flag letters: D/d we download (or would), U/u we upload (or would), K/? unused unchokes, E, I, T. */
export const peerFlags = (p: PeerFlags): string =>
  [
    p.amInterested ? (p.peerChoking ? "d" : "D") : p.peerChoking ? "" : "K",
    p.peerInterested ? (p.amChoking ? "u" : "U") : p.amChoking ? "" : "?",
    p.encrypted ? "E" : "",
    p.inbound ? "I" : "",
    p.transport === "utp" ? "T" : ""
  ].join("")

/** `format: "table"`: the field names, then one row of values per torrent, in that order. */
export const asTable = (fields: ReadonlyArray<string>, torrents: ReadonlyArray<Readonly<Record<string, unknown>>>): Array<Array<unknown>> => [
  [...fields],
  ...torrents.map((t) => fields.map((f) => t[f]))
]

/** `host:port` (`[v6]:port`) as Transmission's peer `address` and `port`. */
export const splitAddress = (address: string): { readonly address: string; readonly port: number } => {
  const colon = address.lastIndexOf(":")
  const host = colon < 0 ? address : address.slice(0, colon)
  return { address: host.replace(/^\[(.*)\]$/, "$1"), port: colon < 0 ? 0 : Number(address.slice(colon + 1)) }
}

/**
 * A torrent's (or the session's) limit after `downloadLimit`/`downloadLimited` and the like: a
 * value given turns the limit on unless told otherwise; turned on without a value, it is
 * Transmission's default, 100 kB/s. Bytes per second; undefined is no limit.
 */
export const nextLimit = (current: number | undefined, kBps: number | undefined, limited: boolean | undefined): number | undefined => {
  const on = limited ?? (kBps !== undefined ? true : current !== undefined)
  if (!on) return undefined
  return kBps !== undefined ? fromKBps(kBps) : current ?? fromKBps(100)
}

/** A `metainfo` argument: base64, whitespace allowed (some clients wrap it). */
export const decodeBase64 = (text: string): Read<Uint8Array> => {
  const bytes = fromBase64(text)
  return bytes === undefined ? wrong("metainfo is not base64") : Either.right(bytes)
}

/** `free-space`'s `path`: required and absolute, in Transmission's words when it is not. */
export const readFreeSpacePath = (args: Readonly<Record<string, unknown>>): Read<string> =>
  Either.flatMap(readString(args, "path"), (path) =>
    path === undefined || path === ""
      ? wrong("directory path argument is missing")
      : !path.startsWith("/")
      ? wrong("directory path is not absolute")
      : Either.right(path))

/** A file system's size as `statfs` tells it: blocks of `bsize` bytes, `bavail` of them free to us. */
export interface FileSystemSize {
  readonly bsize: number
  readonly blocks: number
  readonly bavail: number
}

/** `free-space`'s answer: the bytes an unprivileged user may still write there, and (RPC 17) the whole size. */
export const freeSpaceAnswer = (path: string, size: FileSystemSize) => ({
  path,
  "size-bytes": size.bavail * size.bsize,
  total_size: size.blocks * size.bsize
})
