import { Cause } from "effect"

/**
 * One human-readable line for a failed command: the typed error's message (every domain error
 * defines one), or, for a defect, its message without a stack trace.
 */
export const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  const error: unknown = failure._tag === "Some" ? failure.value : Cause.squash(cause)
  if (error instanceof Error) return error.message.split("\n")[0] ?? String(error)
  return String(error)
}
