/**
 * A folder of small state files (a session's torrents and their resume data), each replaced
 * atomically: written to a temporary file beside it, synced, renamed over the old one and the
 * folder synced. A kill at any moment leaves either the old file or the new one, never a mix.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Context, Data, Effect, Layer, Option } from "effect"
import * as path from "node:path"

/** `$XDG_STATE_HOME/effect-bittorrent`, else `~/.local/state/effect-bittorrent`: the client's state folder. */
export const defaultStateDirectory = (env: Readonly<Record<string, string | undefined>>, home: string): string =>
  path.join(env["XDG_STATE_HOME"] || path.join(home, ".local", "state"), "effect-bittorrent")

export type StateOperation = "mkdir" | "read" | "write" | "list" | "remove"

export class StateStoreError extends Data.TaggedError("StateStoreError")<{
  readonly operation: StateOperation
  readonly path: string
  readonly detail: string
}> {
  override get message() {
    return `state ${this.operation} failed: ${this.path}: ${this.detail}`
  }
}

export interface StateStoreService {
  /** Where the files live (for messages: a damaged file is named by its path). */
  readonly pathOf: (name: string) => string
  /** Replaces the file `name` atomically. */
  readonly write: (name: string, bytes: Uint8Array) => Effect.Effect<void, StateStoreError>
  /** The file's bytes, or none when there is no such file. */
  readonly read: (name: string) => Effect.Effect<Option.Option<Uint8Array>, StateStoreError>
  /** The names of the files, sorted; temporary files of interrupted writes are not listed. */
  readonly list: Effect.Effect<ReadonlyArray<string>, StateStoreError>
  /** Removes the file; removing a missing one is fine. */
  readonly remove: (name: string) => Effect.Effect<void, StateStoreError>
}

/** Names are one plain path component: the store never reaches outside its folder. */
const validName = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/
const temporarySuffix = ".tmp"

const checkedName = (operation: StateOperation, name: string, pathOf: (name: string) => string) =>
  validName.test(name) && !name.endsWith(temporarySuffix)
    ? Effect.void
    : Effect.fail(new StateStoreError({ operation, path: pathOf(name), detail: "not a valid state file name" }))

const makeLive = (fs: FileSystem.FileSystem, directory: string): StateStoreService => {
  const pathOf = (name: string) => `${directory}/${name}`
  const failed = (operation: StateOperation, path: string) => (e: { readonly message: string }) =>
    new StateStoreError({ operation, path, detail: e.message })
  const syncPath = (path: string, flag: "r" | "w") =>
    Effect.scoped(Effect.flatMap(fs.open(path, { flag }), (file) => file.sync))
  return {
    pathOf,
    write: (name, bytes) => {
      const path = pathOf(name)
      // A name of its own: two processes saving the same file at once each rename a whole one.
      const temporary = `${path}.${crypto.randomUUID().slice(0, 8)}${temporarySuffix}`
      return checkedName("write", name, pathOf).pipe(
        Effect.zipRight(
          Effect.scoped(
            Effect.flatMap(fs.open(temporary, { flag: "w" }), (file) => Effect.zipRight(file.writeAll(bytes), file.sync))
          )
        ),
        Effect.zipRight(fs.rename(temporary, path)),
        Effect.zipRight(syncPath(directory, "r")),
        Effect.mapError(failed("write", path))
      )
    },
    read: (name) =>
      checkedName("read", name, pathOf).pipe(
        Effect.zipRight(fs.readFile(pathOf(name))),
        Effect.map(Option.some),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "NotFound",
          () => Effect.succeed(Option.none())
        ),
        Effect.mapError(failed("read", pathOf(name)))
      ),
    list: fs.readDirectory(directory).pipe(
      Effect.map((names) => names.filter((n) => validName.test(n) && !n.endsWith(temporarySuffix)).sort()),
      Effect.mapError(failed("list", directory))
    ),
    remove: (name) =>
      checkedName("remove", name, pathOf).pipe(
        Effect.zipRight(fs.remove(pathOf(name))),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "NotFound",
          () => Effect.void
        ),
        Effect.mapError(failed("remove", pathOf(name)))
      )
  }
}

const makeMemory = (): StateStoreService => {
  const files = new Map<string, Uint8Array>()
  const pathOf = (name: string) => `memory:${name}`
  return {
    pathOf,
    write: (name, bytes) => Effect.zipRight(checkedName("write", name, pathOf), Effect.sync(() => void files.set(name, Uint8Array.from(bytes)))),
    read: (name) => Effect.zipRight(checkedName("read", name, pathOf), Effect.sync(() => Option.fromNullable(files.get(name)))),
    list: Effect.sync(() => [...files.keys()].sort()),
    remove: (name) => Effect.zipRight(checkedName("remove", name, pathOf), Effect.sync(() => void files.delete(name)))
  }
}

export class StateStore extends Context.Tag("bt/StateStore")<StateStore, StateStoreService>() {
  /** Files in `directory` (created, with its parents, when missing). */
  static readonly layer = (directory: string): Layer.Layer<StateStore, StateStoreError, FileSystem.FileSystem> =>
    Layer.effect(
      StateStore,
      Effect.flatMap(FileSystem.FileSystem, (fs) =>
        fs.makeDirectory(directory, { recursive: true }).pipe(
          Effect.mapError((e) => new StateStoreError({ operation: "mkdir", path: directory, detail: e.message })),
          Effect.as(makeLive(fs, directory))
        )
      )
    )

  /** In memory, for tests. */
  static readonly Memory: Layer.Layer<StateStore> = Layer.sync(StateStore, makeMemory)
}
