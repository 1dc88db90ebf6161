import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as ValidationError from "@effect/cli/ValidationError"
import { Cause, Effect } from "effect"
import { describeOsError } from "../../domain/OsError.js"
import { spanText } from "./helpText.js"

/** Platform methods that change the file system; the others only read it. */
const writingMethods = /^(write|writeFile|makeDirectory|truncate|remove|rename|copy|copyFile|chmod|chown|symlink|link|utimes|makeTempDirectory|makeTempFile|open)/

/** A platform `SystemError` (a file-system call that failed), in our words. */
const describeSystemError = (error: { method?: unknown; pathOrDescriptor?: unknown; cause?: unknown }): string => {
  const method = String(error.method ?? "")
  const verb = method !== "open" && writingMethods.test(method) ? "write" : "read"
  return `cannot ${verb} ${String(error.pathOrDescriptor)}: ${describeOsError(error)}`
}

const isSystemError = (error: unknown): error is { _tag: "SystemError"; method: string; pathOrDescriptor: unknown } =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "SystemError" &&
  "pathOrDescriptor" in error

/**
 * One human-readable line for a failed command: the typed error's message (every domain error
 * defines one), a platform error in the same words, or, for a defect, its message without a stack trace.
 */
export const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  const error: unknown = failure._tag === "Some" ? failure.value : Cause.squash(cause)
  if (isSystemError(error)) return describeSystemError(error)
  if (error instanceof Error) return error.message.split("\n")[0] ?? String(error)
  return String(error)
}

const docText = (doc: HelpDoc.HelpDoc): string => {
  switch (doc._tag) {
    case "Paragraph":
    case "Header":
      return spanText(doc.value)
    case "Sequence":
      return [docText(doc.left), docText(doc.right)].filter((t) => t !== "").join("\n")
    case "DescriptionList":
      return doc.definitions.map(([span, d]) => `${spanText(span)} ${docText(d)}`).join("\n")
    case "Enumeration":
      return doc.elements.map(docText).join("\n")
    default:
      return ""
  }
}
/** @effect/cli's wording of a usage error, rewritten to ours: `missing argument <torrent>`. */
const rewrites: ReadonlyArray<readonly [RegExp, (groups: ReadonlyArray<string>, argv: ReadonlyArray<string>) => string]> = [
  [/^Expected to find option: '(.+)'/, ([flag]) => `missing option ${flag}`],
  [/^Missing argument (<.+>)/, ([name]) => `missing argument ${name}`],
  [/^Received unknown argument: '(.+)'/, ([arg]) => `unexpected argument '${arg}'`],
  [/^'(.*)' is not an? (integer|float|boolean|date)$/, ([value, type], argv) =>
    `${optionOf(value!, argv)}'${value}' is not ${/^[aeiou]/.test(type!) ? "an" : "a"} ${type}`]
]

/** `--port: ` when `value` was given to an option on this command line (@effect/cli does not say which). */
const optionOf = (value: string, argv: ReadonlyArray<string>): string => {
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === value && argv[i - 1]!.startsWith("-")) return `${argv[i - 1]}: `
    if (argv[i]!.endsWith(`=${value}`)) return `${argv[i]!.split("=")[0]}: `
  }
  return ""
}

/** The one line that names what is wrong with a command line (`argv` to name the option of a bad value). */
export const describeUsageError = (error: ValidationError.ValidationError, argv: ReadonlyArray<string>): string => {
  const text = docText(error.error).split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "invalid command line"
  for (const [pattern, rewrite] of rewrites) {
    const match = pattern.exec(text)
    if (match !== null) return rewrite(match.slice(1), argv)
  }
  return text.charAt(0).toLowerCase() + text.slice(1)
}

/**
 * A line for the user on stderr. Not Console.error: main.ts silences that one, which @effect/cli
 * uses for its own usage errors.
 */
export const note = (text: string) => Effect.sync(() => { process.stderr.write(`${text}\n`) })
