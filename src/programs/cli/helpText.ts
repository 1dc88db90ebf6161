/**
 * Help and usage text, rendered by us from @effect/cli's own HelpDoc: one line per option with its
 * default, none of the primitive types' filler sentences, wrapped to a given width, and styled
 * only when the caller says the output is a colour terminal.
 */
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"

export interface OptionHelp {
  /** `-o`, `--output`: the short alias first when there is one. */
  readonly names: ReadonlyArray<string>
  /** The value's placeholder (`<n>`, `<output>`); undefined for a flag. */
  readonly value: string | undefined
  readonly description: string
  readonly required: boolean
  readonly repeatable: boolean
}

export interface ArgHelp {
  readonly name: string
  readonly description: string
  readonly optional: boolean
}

export interface CommandHelp {
  readonly name: string
  readonly summary: string
  readonly args: ReadonlyArray<ArgHelp>
  readonly options: ReadonlyArray<OptionHelp>
  readonly examples: ReadonlyArray<string>
}

/** How help is written: the width to wrap at, and whether bold headings are allowed. */
export interface HelpStyle {
  readonly width: number
  readonly color: boolean
}

/** `Options.withDefault` plus a `(default: …)` line in the help, which @effect/cli leaves out. */
export const withShownDefault = <A>(fallback: A, shown: string = String(fallback)) => (self: Options.Options<A>) =>
  self.pipe(Options.withDefault(fallback), Options.withDescription(`(default: ${shown})`))

// ---------------------------------------------------------------------------------------------
// From HelpDoc to our model

/** The plain text of a span, styles dropped. */
export const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    default:
      return spanText(span.value)
  }
}

const flatten = (doc: HelpDoc.HelpDoc): ReadonlyArray<HelpDoc.HelpDoc> =>
  doc._tag === "Sequence" ? [...flatten(doc.left), ...flatten(doc.right)] : doc._tag === "Empty" ? [] : [doc]

const paragraphs = (doc: HelpDoc.HelpDoc): ReadonlyArray<string> =>
  flatten(doc).flatMap((d) => (d._tag === "Paragraph" ? [spanText(d.value)] : []))

/** The sentences @effect/cli adds to every option of a type; our own descriptions say more. */
const filler = [
  /^A true or false value\.$/,
  /^An integer\.$/,
  /^A floating point number\.$/,
  /^A user-defined piece of text\.$/,
  /^(An existing )?(file|directory|file or directory)\b/i,
  /^A (file|directory|file or directory)( that must not exist)?\.$/,
  /^A date without a time-zone/,
  /^One of the following: /,
  /^This setting is optional\./,
  /^This option (may|must) be repeated/
]
const isFiller = (text: string) => filler.some((re) => re.test(text))

/** `(-o, --output text)` → names `-o`, `--output` and the type `text`. */
const parseOptionSpan = (text: string): { names: Array<string>; type: string | undefined } => {
  const inner = text.replace(/\.\.\.$/, "").replace(/^\((.*)\)$/, "$1")
  const parts = inner.split(", ")
  const last = parts.pop() ?? ""
  const space = last.indexOf(" ")
  const names = [...parts, space < 0 ? last : last.slice(0, space)]
  return { names, type: space < 0 ? undefined : last.slice(space + 1).trim() }
}

/** A choice shows as its option's name (`<encryption>`): the description lists the values, and a long list would widen the column. */
const placeholder = (type: string, names: ReadonlyArray<string>): string => {
  if (type === "integer") return "<n>"
  if (type === "text" || type.includes(" | ")) return `<${(names[names.length - 1] ?? "value").replace(/^-+/, "")}>`
  return `<${type}>`
}

const toOption = ([span, doc]: readonly [Span.Span, HelpDoc.HelpDoc]): OptionHelp => {
  const { names, type } = parseOptionSpan(spanText(span))
  const texts = paragraphs(doc)
  return {
    names,
    value: type === undefined ? undefined : placeholder(type, names),
    description: texts.filter((t) => !isFiller(t)).join(" "),
    required: !texts.some((t) => /^This setting is optional\./.test(t)) && !texts.some((t) => /may be repeated zero/.test(t)),
    repeatable: texts.some((t) => /^This option (may|must) be repeated/.test(t))
  }
}

const toArg = ([span, doc]: readonly [Span.Span, HelpDoc.HelpDoc]): ArgHelp => {
  const texts = paragraphs(doc)
  return {
    name: spanText(span).trim(),
    description: texts.filter((t) => !isFiller(t)).join(" "),
    optional: texts.some((t) => /^This setting is optional\./.test(t))
  }
}

/** Our model of a command's help, read from `Command.getHelp`'s document. */
export const readCommandHelp = (name: string, doc: HelpDoc.HelpDoc, examples: ReadonlyArray<string>): CommandHelp => {
  let section = ""
  let summary = ""
  const args: Array<ArgHelp> = []
  const options: Array<OptionHelp> = []
  for (const block of flatten(doc)) {
    if (block._tag === "Header") section = spanText(block.value)
    else if (block._tag === "Paragraph" && section === "DESCRIPTION") summary = spanText(block.value)
    else if (block._tag === "DescriptionList" && section === "ARGUMENTS") args.push(...block.definitions.map(toArg))
    else if (block._tag === "DescriptionList" && section === "OPTIONS") options.push(...block.definitions.map(toOption))
  }
  return { name, summary, args, options, examples }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** Word-wraps `text` to `width` columns; a word longer than the width keeps a line of its own. */
export const wrap = (text: string, width: number): ReadonlyArray<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line.length === 0 ? word : `${line} ${word}`
    }
  }
  if (line.length > 0) lines.push(line)
  return lines.length === 0 ? [""] : lines
}

/** Two columns: `term` at an indent of 2, its description wrapped beside it (or below a long term). */
const twoColumns = (rows: ReadonlyArray<readonly [string, string]>, width: number): Array<string> => {
  const column = Math.min(Math.max(...rows.map(([term]) => term.length), 0) + 4, Math.floor(width / 2.5))
  const lines: Array<string> = []
  for (const [term, description] of rows) {
    const body = wrap(description, Math.max(width - column, 20))
    const head = `  ${term}`
    if (head.length + 2 <= column) {
      lines.push(head.padEnd(column) + body[0]!, ...body.slice(1).map((l) => " ".repeat(column) + l))
    } else {
      lines.push(head, ...(description === "" ? [] : body.map((l) => " ".repeat(column) + l)))
    }
  }
  return lines
}

const optionTerm = (option: OptionHelp): string => {
  const short = option.names.find((n) => /^-[^-]/.test(n))
  const long = option.names.filter((n) => n !== short).join(", ")
  const value = option.value === undefined ? "" : ` ${option.value}${option.repeatable ? "..." : ""}`
  return `${short === undefined ? "    " : `${short}, `}${long}${value}`
}

const requiredOptionUsage = (option: OptionHelp): string =>
  `${option.names[0]}${option.value === undefined ? "" : ` ${option.value}`}`

/** `bittorrent create [options] -o <output> <path>`. */
export const usageLine = (program: string, help: CommandHelp): string => {
  const required = help.options.filter((o) => o.required)
  return [
    program,
    help.name,
    ...(help.options.length > required.length ? ["[options]"] : []),
    ...required.map(requiredOptionUsage),
    ...help.args.map((a) => (a.optional ? `[${a.name}]` : a.name))
  ].join(" ")
}

const heading = (text: string, style: HelpStyle) => (style.color ? `\x1b[1m${text}\x1b[0m` : text)

/** `Usage: …`, wrapped with a hanging indent. */
export const renderUsage = (program: string, help: CommandHelp, style: HelpStyle): string => {
  const [first, ...rest] = wrap(usageLine(program, help), style.width - 7)
  return [`${heading("Usage:", style)} ${first}`, ...rest.map((l) => `       ${l}`)].join("\n")
}

/** The whole help of one command. */
export const renderCommandHelp = (program: string, help: CommandHelp, style: HelpStyle): string => {
  const helpOption: OptionHelp = { names: ["-h", "--help"], value: undefined, description: "show this help", required: false, repeatable: false }
  const sections: Array<string> = [wrap(help.summary, style.width).join("\n"), renderUsage(program, help, style)]
  if (help.args.length > 0) {
    sections.push([heading("Arguments:", style), ...twoColumns(help.args.map((a) => [a.name, a.description]), style.width)].join("\n"))
  }
  const options = [...help.options, helpOption]
  sections.push([heading("Options:", style), ...twoColumns(options.map((o) => [optionTerm(o), o.description]), style.width)].join("\n"))
  if (help.examples.length > 0) {
    sections.push([heading("Examples:", style), ...help.examples.flatMap((e) => wrap(e, style.width - 4).map((l, i) => `${i === 0 ? "  " : "      "}${l}`))].join("\n"))
  }
  return sections.join("\n\n")
}

/** The top-level help: the commands, one a line, and the global options. */
export const renderRootHelp = (
  program: string,
  version: string,
  summary: string,
  commands: ReadonlyArray<CommandHelp>,
  style: HelpStyle
): string =>
  [
    wrap(`${program} ${version}: ${summary}`, style.width).join("\n"),
    `${heading("Usage:", style)} ${program} <command> [options] [arguments]`,
    [heading("Commands:", style), ...twoColumns(commands.map((c) => [c.name, c.summary]), style.width)].join("\n"),
    [
      heading("Options:", style),
      ...twoColumns([
        ["-h, --help", "show this help, or a command's (bittorrent <command> --help)"],
        ["    --version", "print the version"],
        ["    --log-level <level>", "diagnostics on stderr: all, trace, debug, info, warning, error, fatal or none; before the command (default: info)"]
      ], style.width)
    ].join("\n"),
    wrap(`Run '${program} <command> --help' for a command's options and examples.`, style.width).join("\n")
  ].join("\n\n")
