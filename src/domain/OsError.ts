/**
 * One wording for the operating system's errors, whatever layer met them: `is a directory`,
 * `permission denied`, `the port is in use`. Errors carry Node's `code` (`EISDIR`), either
 * themselves or in a `cause` (a platform error wraps the Node one).
 */

const phrases: Readonly<Record<string, string>> = {
  ENOENT: "no such file or directory",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EEXIST: "already exists",
  ENAMETOOLONG: "the name is too long",
  EMFILE: "too many open files",
  ELOOP: "too many symbolic links",
  EBUSY: "busy",
  EIO: "input/output error",
  EADDRINUSE: "the port is in use",
  EADDRNOTAVAIL: "no such local address",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "timed out",
  ENOTFOUND: "host not found",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable"
}

/** The `code` (`EISDIR`) of an error or of the errors it wraps, if any. */
export const osErrorCode = (error: unknown): string | undefined => {
  let current = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/** A short lower-case phrase for an OS error; the code itself for one we have no words for. */
export const describeOsError = (error: unknown): string => {
  const code = osErrorCode(error)
  if (code !== undefined) return phrases[code] ?? code
  const reason = (error as { reason?: unknown } | null)?.reason
  if (reason === "NotFound") return phrases.ENOENT!
  if (reason === "PermissionDenied") return phrases.EACCES!
  if (reason === "AlreadyExists") return phrases.EEXIST!
  return error instanceof Error ? error.message.split("\n")[0]! : String(error)
}
