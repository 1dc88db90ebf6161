/** What `info --details` and `info --json` say about each file beyond its path and length: BEP 47 attributes and sanitised paths. */
import type { Info, TorrentFile } from "../../domain/Metainfo.js"

const joined = (path: ReadonlyArray<string>): string => path.join("/")

/** ` [padding]`, ` [executable, hidden]`, ` [symlink -> d/a]`, or nothing for a plain file. */
export const attributeSuffix = (file: TorrentFile): string => {
  const attributes = [
    ...(file.padding === true ? ["padding"] : []),
    ...(file.executable === true ? ["executable"] : []),
    ...(file.hidden === true ? ["hidden"] : []),
    ...(file.symlink !== undefined ? [`symlink -> ${joined(file.symlink)}`] : [])
  ]
  return attributes.length === 0 ? "" : ` [${attributes.join(", ")}]`
}

/**
 * `Changed Paths:` and one line for each name or path that sanitising changed: the original as a JSON
 * list of its components (they may hold separators or control characters), then the path used.
 * Nothing when no path changed.
 */
export const changedPathLines = (info: Info): Array<string> => {
  const lines = [
    ...(info.originalName === undefined ? [] : [`  name: ${JSON.stringify([info.originalName])} -> ${info.name}`]),
    ...info.files.flatMap((file, i) =>
      file.originalPath === undefined ? [] : [`  ${i}: ${JSON.stringify(file.originalPath)} -> ${joined(file.path)}`]
    )
  ]
  return lines.length === 0 ? [] : ["Changed Paths:", ...lines]
}

/** One entry of `info --json`'s `files` (docs/cli.md). */
export const fileJson = (file: TorrentFile, index: number) => ({
  index,
  path: joined(file.path),
  length: file.length,
  offset: file.offset,
  padding: file.padding === true,
  executable: file.executable === true,
  hidden: file.hidden === true,
  symlink: file.symlink === undefined ? null : joined(file.symlink),
  originalPath: file.originalPath ?? null
})
