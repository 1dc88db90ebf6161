/**
 * What the command line asks for, decided before @effect/cli parses it: help (rendered by us),
 * a usage error we can name precisely (an unknown command or option), or a run. @effect/cli
 * reports an unknown option as whatever it expected next (`Expected to find option: '--output'`),
 * so unknown options are caught here, from the options each command's help lists.
 */
import type { CommandHelp } from "./helpText.js"

export type Invocation =
  | { readonly _tag: "RootHelp" }
  | { readonly _tag: "CommandHelp"; readonly command: CommandHelp }
  | { readonly _tag: "UsageError"; readonly command: CommandHelp | undefined; readonly message: string }
  | { readonly _tag: "Run"; readonly command: CommandHelp | undefined }

const isHelpFlag = (arg: string) => arg === "-h" || arg === "--help"
/** A token that stands for an option (a lone `-` and negative numbers are values). */
const isOptionToken = (arg: string) => arg.startsWith("-") && arg !== "-" && !/^-\d/.test(arg)

/** Built-in options of @effect/cli that come before the command; those that take a value. */
const rootValueOptions = new Set(["--log-level", "--completions"])
const rootFlags = new Set(["--version", "--wizard"])

const classifyCommandArgs = (command: CommandHelp, args: ReadonlyArray<string>): Invocation => {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") break
    if (isHelpFlag(arg)) return { _tag: "CommandHelp", command }
    if (!isOptionToken(arg)) continue
    const flag = arg.split("=")[0]!
    const option = command.options.find((o) => o.names.includes(flag))
    if (option === undefined) return { _tag: "UsageError", command, message: `unknown option ${flag}` }
    if (option.value !== undefined && !arg.includes("=")) {
      if (i + 1 >= args.length) return { _tag: "UsageError", command, message: `missing value for ${flag} ${option.value}` }
      i++
    }
  }
  return { _tag: "Run", command }
}

/** Classifies `argv` (without node and the script) against the commands' help. */
export const classify = (argv: ReadonlyArray<string>, commands: ReadonlyArray<CommandHelp>): Invocation => {
  let i = 0
  for (; i < argv.length && isOptionToken(argv[i]!); i++) {
    const arg = argv[i]!
    const flag = arg.split("=")[0]!
    if (isHelpFlag(arg)) return { _tag: "RootHelp" }
    if (rootFlags.has(flag)) return { _tag: "Run", command: undefined }
    if (!rootValueOptions.has(flag)) return { _tag: "UsageError", command: undefined, message: `unknown option ${flag}` }
    if (!arg.includes("=")) i++
  }
  if (i >= argv.length) return { _tag: "RootHelp" }
  const name = argv[i]!
  const command = commands.find((c) => c.name === name)
  if (command === undefined) return { _tag: "UsageError", command: undefined, message: `unknown command '${name}'` }
  return classifyCommandArgs(command, argv.slice(i + 1))
}
