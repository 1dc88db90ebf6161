/**
 * The size of the file system a path lives on, for Transmission's `free-space`: `statfs`, which
 * the platform's FileSystem does not offer.
 */
import { Data, Effect } from "effect"
import * as fs from "node:fs"
import { describeOsError } from "../../domain/OsError.js"
import type { FileSystemSize } from "../../domain/TransmissionRpc.js"

/** The path's file system could not be asked (it is missing, or not readable). */
export class FreeSpaceError extends Data.TaggedError("FreeSpaceError")<{ readonly path: string; readonly cause: unknown }> {
  override get message() {
    return `${this.path}: ${describeOsError(this.cause)}`
  }
}

export const fileSystemSize = (path: string): Effect.Effect<FileSystemSize, FreeSpaceError> =>
  Effect.async((resume) => {
    fs.statfs(path, (cause, stats) => resume(cause === null ? Effect.succeed(stats) : Effect.fail(new FreeSpaceError({ path, cause }))))
  })
