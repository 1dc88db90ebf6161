/**
 * Renaming of files whose path another file or a folder of the torrent already uses (the rule of
 * libtorrent, so that both clients put the same bytes at the same names).
 */

export interface PathEntry {
  readonly path: ReadonlyArray<string>
  readonly length: number
  readonly padding: boolean
}

/** ASCII case folding only: file systems that ignore case fold at least ASCII, and libtorrent folds no more. */
const fold = (path: ReadonlyArray<string>): string => path.join("/").replace(/[A-Z]/g, (c) => c.toLowerCase())

/** `bar.txt` → `bar.<n>.txt`, `bar` → `bar.<n>`: the counter goes before the last component's extension. */
const withCounter = (path: ReadonlyArray<string>, n: number): ReadonlyArray<string> => {
  const last = path[path.length - 1]!
  const dot = last.lastIndexOf(".")
  const renamed = dot < 0 ? `${last}.${n}` : `${last.slice(0, dot)}.${n}${last.slice(dot)}`
  return [...path.slice(0, -1), renamed]
}

/**
 * The final path of each entry, in order. A path that an earlier file, or any folder of the torrent,
 * already uses (ignoring ASCII case) gets the first free counter suffix. Two padding entries of one
 * length may share a path: they are never written.
 */
export const renameDuplicates = (entries: ReadonlyArray<PathEntry>): ReadonlyArray<ReadonlyArray<string>> => {
  const taken = new Set<string>()
  for (const { path } of entries) for (let j = 1; j < path.length; j++) taken.add(fold(path.slice(0, j)))
  const fileAt = new Map<string, PathEntry>()
  return entries.map((entry) => {
    const key = fold(entry.path)
    if (!taken.has(key)) {
      taken.add(key)
      fileAt.set(key, entry)
      return entry.path
    }
    const other = fileAt.get(key)
    if (other !== undefined && other.padding && entry.padding && other.length === entry.length) return entry.path
    for (let n = 1; ; n++) {
      const candidate = withCounter(entry.path, n)
      if (!taken.has(fold(candidate))) {
        taken.add(fold(candidate))
        return candidate
      }
    }
  })
}
