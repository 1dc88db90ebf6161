/**
 * Creating a torrent from a file or a folder on disk: list the files, hash the pieces as one stream
 * across file boundaries, and build the metainfo (src/domain/TorrentBuilder.ts).
 *
 * Folder rules: every regular file is included, hidden ones too (the payload is what the user
 * pointed at), in a stable order: component by component, by the UTF-8 bytes of the names, so a
 * folder's files stay together. Empty folders leave no trace (a torrent lists files only).
 * Symbolic links are followed only to regular files inside the folder; links that point outside,
 * dangle, or lead to folders (which could loop) are skipped, as are sockets, FIFOs and devices.
 * Skipped entries are returned so that the caller can report them.
 *
 * Memory stays bounded whatever the size: data is read in chunks of at most 1 MiB into one reused
 * buffer, fed to an incremental SHA-1 (and, for v2, a file's merkle tree, of which only the piece
 * layer is kept), and only the digests are kept.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import type { PlatformError } from "@effect/platform/Error"
import { Data, Effect, Option } from "effect"
import { createHash, type Hash } from "node:crypto"
import { type FileHashes, FileHasherV2 } from "../domain/Merkle.js"
import { describeOsError } from "../domain/OsError.js"
import {
  buildTorrent,
  type BuiltTorrent,
  checkSpec,
  defaultPieceLength,
  type FileEntry,
  pieceCount,
  type TorrentContent,
  type TorrentSpec,
  type TorrentVersion,
  totalLength,
  validatePieceLength
} from "../domain/TorrentBuilder.js"

export interface CreateTorrentOptions {
  /** Tracker URLs: the first is `announce`, several make an `announce-list` of one tier each. */
  readonly announce?: ReadonlyArray<string>
  /** A power of two from 16 KiB to 64 MiB; by default `defaultPieceLength(total size)`. */
  readonly pieceLength?: number
  readonly private?: boolean
  /** Defaults to the base name of the path. */
  readonly name?: string
  readonly comment?: string
  /** Unix seconds; none by default, so the same input gives the same bytes. */
  readonly creationDate?: number
  /** BEP 52: `v2` (v2 only) or `hybrid` (v1 and v2); `v1` by default. */
  readonly version?: TorrentVersion
  /** Paths to leave out of a folder: the CLI passes its output file, so that a torrent saved inside the folder never hashes itself next time. */
  readonly exclude?: ReadonlyArray<string>
}

export type CreateTorrentErrorReason = "NotFound" | "Unreadable" | "Unsupported" | "Changed" | "Unwritable"

export class CreateTorrentError extends Data.TaggedError("CreateTorrentError")<{
  readonly path: string
  readonly reason: CreateTorrentErrorReason
  readonly cause?: unknown
}> {
  override get message() {
    const cause = this.cause === undefined ? "" : `: ${describeOsError(this.cause)}`
    switch (this.reason) {
      case "NotFound":
        return `cannot create a torrent from ${this.path}: no such file or folder`
      case "Unsupported":
        return `cannot create a torrent from ${this.path}: neither a regular file nor a folder`
      case "Changed":
        return `${this.path} changed size while it was being hashed`
      case "Unreadable":
        return `cannot read ${this.path}${cause}`
      case "Unwritable":
        return `cannot write ${this.path}${cause}`
    }
  }
}

/** A folder entry left out of the torrent, and why. */
export interface SkippedEntry {
  readonly path: string
  readonly why: "symlink outside the folder" | "symlink to a folder" | "dangling symlink" | "not a regular file"
}

export interface CreatedTorrent extends BuiltTorrent {
  /** The files hashed, in torrent order, as paths on disk. */
  readonly sources: ReadonlyArray<string>
  readonly skipped: ReadonlyArray<SkippedEntry>
}

const readChunk = 1024 * 1024

const ioError = (path: string) => (cause: PlatformError) =>
  new CreateTorrentError({
    path,
    reason: cause._tag === "SystemError" && cause.reason === "NotFound" ? "NotFound" : "Unreadable",
    cause
  })

const utf8 = new TextEncoder()
const byUtf8 = (a: string, b: string): number => Buffer.compare(utf8.encode(a), utf8.encode(b))

interface Source {
  readonly diskPath: string
  readonly entry: FileEntry
}

/** The files of a folder in torrent order, following the rules in the module comment. */
const listFolder = (root: string, exclude: ReadonlySet<string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const sources: Array<Source> = []
    const skipped: Array<SkippedEntry> = []
    const inside = (real: string) => {
      const rel = path.relative(root, real)
      return rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel)
    }
    const visit = (dir: string, prefix: ReadonlyArray<string>): Effect.Effect<void, CreateTorrentError> =>
      Effect.gen(function* () {
        const names = (yield* fs.readDirectory(dir).pipe(Effect.mapError(ioError(dir)))).sort(byUtf8)
        for (const name of names) {
          const diskPath = path.join(dir, name)
          if (exclude.has(diskPath)) continue
          const real = yield* fs.realPath(diskPath).pipe(
            Effect.map(Option.some),
            Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeedNone),
            Effect.mapError(ioError(diskPath))
          )
          if (Option.isNone(real)) {
            skipped.push({ path: diskPath, why: "dangling symlink" })
            continue
          }
          const info = yield* fs.stat(real.value).pipe(Effect.mapError(ioError(diskPath)))
          // The walk goes through real folders only, so a real path that differs means a symlink.
          const isLink = real.value !== diskPath
          if (isLink && !inside(real.value)) skipped.push({ path: diskPath, why: "symlink outside the folder" })
          else if (info.type === "Directory") {
            if (isLink) skipped.push({ path: diskPath, why: "symlink to a folder" })
            else yield* visit(diskPath, [...prefix, name])
          } else if (info.type === "File") sources.push({ diskPath, entry: { path: [...prefix, name], length: Number(info.size) } })
          else skipped.push({ path: diskPath, why: "not a regular file" })
        }
      })
    yield* visit(root, [])
    return { sources, skipped }
  })

/** SHA-1 of consecutive pieces of a stream fed in chunks of any size; `padToPiece` ends a file with zeros (hybrids). */
const v1PieceHasher = (pieceLength: number, pieceCount: number) => {
  const out = new Uint8Array(pieceCount * 20)
  let hash: Hash = createHash("sha1")
  let inPiece = 0
  let piece = 0
  const finishPiece = () => {
    out.set(hash.digest(), piece * 20)
    piece++
    hash = createHash("sha1")
    inPiece = 0
  }
  const update = (data: Uint8Array) => {
    for (let at = 0; at < data.length;) {
      const take = Math.min(pieceLength - inPiece, data.length - at)
      hash.update(data.subarray(at, at + take))
      at += take
      inPiece += take
      if (inPiece === pieceLength) finishPiece()
    }
  }
  return {
    update,
    padToPiece: () => {
      if (inPiece > 0) update(new Uint8Array(pieceLength - inPiece))
    },
    finish: () => {
      if (inPiece > 0) finishPiece()
      return out
    }
  }
}

/** Reads one file in chunks of at most 1 MiB into `chunk`, handing each to `consume`; a file that changed size fails. */
const readFile = (source: Source, chunk: Uint8Array, consume: (bytes: Uint8Array) => void) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const { diskPath, entry } = source
    const file = yield* fs.open(diskPath, { flag: "r" })
    let left = entry.length
    while (left > 0) {
      const view = chunk.subarray(0, Math.min(chunk.length, left))
      const read = Number(yield* file.read(view))
      if (read === 0) return yield* new CreateTorrentError({ path: diskPath, reason: "Changed" })
      consume(view.subarray(0, read))
      left -= read
    }
    // A file that grew meanwhile would make the torrent describe a prefix of it.
    if (Number((yield* file.stat).size) !== entry.length) {
      return yield* new CreateTorrentError({ path: diskPath, reason: "Changed" })
    }
  }).pipe(Effect.scoped, Effect.catchTags({ BadArgument: ioError(source.diskPath), SystemError: ioError(source.diskPath) }))

/**
 * Hashes the files in one pass: the SHA-1 of each piece (v1; for a hybrid of a folder, each file
 * padded with zeros to a piece boundary) and each file's merkle tree (v2, hybrid).
 */
const hashContent = (sources: ReadonlyArray<Source>, spec: TorrentSpec) =>
  Effect.gen(function* () {
    const version = spec.version ?? "v1"
    const v1 = version === "v2" ? undefined : v1PieceHasher(spec.pieceLength, pieceCount(spec))
    const v2: Array<FileHashes | undefined> = []
    const chunk = new Uint8Array(readChunk)
    for (const source of sources) {
      const tree = version !== "v1" && source.entry.length > 0 ? new FileHasherV2(spec.pieceLength) : undefined
      yield* readFile(source, chunk, (bytes) => {
        v1?.update(bytes)
        tree?.update(bytes)
      })
      if (version === "hybrid" && spec.content._tag === "MultiFile") v1?.padToPiece()
      v2.push(tree?.digest())
    }
    return { pieces: v1?.finish() ?? new Uint8Array(0), v2 }
  })

/**
 * Creates a torrent from a file (single-file torrent) or a folder (multi-file torrent). Returns the
 * `.torrent` bytes, the info hash and the parsed metainfo; writing the bytes is up to the caller.
 */
export const createTorrent = Effect.fn("createTorrent")(function* (input: string, options: CreateTorrentOptions = {}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  if (options.pieceLength !== undefined) yield* validatePieceLength(options.pieceLength)
  const real = yield* fs.realPath(input).pipe(Effect.mapError(ioError(input)))
  const info = yield* fs.stat(real).pipe(Effect.mapError(ioError(input)))
  let content: TorrentContent
  let sources: ReadonlyArray<Source>
  let skipped: ReadonlyArray<SkippedEntry> = []
  if (info.type === "File") {
    const length = Number(info.size)
    content = { _tag: "SingleFile", length }
    sources = [{ diskPath: real, entry: { path: [], length } }]
  } else if (info.type === "Directory") {
    const exclude = new Set<string>()
    for (const p of options.exclude ?? []) {
      // Compare real paths: the walk sees the folder through its real path.
      const absolute = path.resolve(p)
      const dir = yield* fs.realPath(path.dirname(absolute)).pipe(Effect.orElseSucceed(() => path.dirname(absolute)))
      exclude.add(path.join(dir, path.basename(absolute)))
    }
    const listed = yield* listFolder(real, exclude)
    content = { _tag: "MultiFile", files: listed.sources.map((s) => s.entry) }
    sources = listed.sources
    skipped = listed.skipped
  } else {
    return yield* new CreateTorrentError({ path: input, reason: "Unsupported" })
  }
  const spec = yield* checkSpec({
    name: options.name ?? path.basename(path.resolve(input)),
    content,
    pieceLength: options.pieceLength ?? defaultPieceLength(totalLength(content)),
    ...(options.announce !== undefined ? { announce: options.announce } : {}),
    ...(options.private !== undefined ? { private: options.private } : {}),
    ...(options.comment !== undefined ? { comment: options.comment } : {}),
    ...(options.creationDate !== undefined ? { creationDate: options.creationDate } : {}),
    ...(options.version !== undefined ? { version: options.version } : {})
  })
  const { pieces, v2 } = yield* hashContent(sources, spec)
  const built = yield* buildTorrent(spec, pieces, v2)
  const result: CreatedTorrent = { ...built, sources: sources.map((s) => s.diskPath), skipped }
  return result
})
