/**
 * A torrent's files on disk, as a session removes or moves them: the file of a single-file
 * torrent, or the folder of a multi-file one, in the torrent's directory, each file at its path
 * or (unfinished) at `<path>.part`. Removing deletes only the torrent's own files, and then the
 * folders they leave empty.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect } from "effect"
import type { Info } from "../../domain/Metainfo.js"
import { partPath, sidePath } from "../../services/Storage.js"
import { DataFilesError } from "./SessionEvent.js"

/** Where a torrent's payload lives: its name (a single safe path component) in the directory. */
export const targetOf = (directory: string, info: Info): string => `${directory.replace(/\/+$/, "")}/${info.name}`

const filePaths = (info: Info, target: string) =>
  info.isMultiFile ? info.files.map((file) => `${target}/${file.path.join("/")}`) : [target]

/** The folders between the target and its files, deepest first (the target last). */
const foldersOf = (info: Info, target: string) => {
  const folders = new Set<string>([target])
  for (const file of info.files) {
    for (let depth = 1; depth < file.path.length; depth++) folders.add(`${target}/${file.path.slice(0, depth).join("/")}`)
  }
  return [...folders].sort((a, b) => b.length - a.length)
}

const failed = (operation: DataFilesError["operation"], path: string) => (cause: unknown) =>
  new DataFilesError({ operation, path, cause })

/** Deletes the torrent's files in `directory` (both names of each), and the folders left empty. */
export const removeData = (info: Info, directory: string): Effect.Effect<void, DataFilesError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const target = targetOf(directory, info)
    // The side file too: what skipped files' shares of pieces went to.
    for (const path of [...filePaths(info, target).flatMap((p) => [p, partPath(p)]), sidePath(info, target)]) {
      yield* fs.remove(path, { force: true }).pipe(Effect.mapError(failed("remove", path)))
    }
    if (!info.isMultiFile) return
    for (const folder of foldersOf(info, target)) {
      const left = yield* fs.readDirectory(folder).pipe(Effect.orElseSucceed(() => undefined))
      // `recursive` only because the platform's remove refuses any folder without it: this one is empty.
      if (left !== undefined && left.length === 0) yield* fs.remove(folder, { recursive: true }).pipe(Effect.mapError(failed("remove", folder)))
    }
  })

/** Moves the torrent's file or folder (and a single file's `.part`) from one directory to another. */
export const moveData = (info: Info, from: string, to: string): Effect.Effect<void, DataFilesError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const source = targetOf(from, info)
    const destination = targetOf(to, info)
    yield* fs.makeDirectory(to, { recursive: true }).pipe(Effect.mapError(failed("move", to)))
    const names: ReadonlyArray<readonly [string, string]> = info.isMultiFile
      ? [[source, destination]]
      : [[source, destination], [partPath(source), partPath(destination)]]
    for (const [old, moved] of names) {
      const exists = yield* fs.exists(old).pipe(Effect.orElseSucceed(() => false))
      if (exists) yield* fs.rename(old, moved).pipe(Effect.mapError(failed("move", old)))
    }
  })
