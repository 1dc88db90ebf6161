/**
 * Validation of BEP 47 symlink targets (libtorrent's rule): a link may only name a file or a folder
 * of the same torrent. Targets are sanitised components relative to the torrent's folder, so none
 * can leave it; one that names nothing of the torrent is made to point at the link itself.
 */

export interface LinkEntry {
  readonly path: ReadonlyArray<string>
  /** The sanitised `symlink path`, for a symlink entry. */
  readonly symlink: ReadonlyArray<string> | undefined
}

const key = (path: ReadonlyArray<string>): string => path.join("/")

/** Every folder that holds a file of the torrent, at any depth. */
const foldersOf = (entries: ReadonlyArray<LinkEntry>): Set<string> => {
  const folders = new Set<string>()
  for (const { path } of entries) for (let j = 1; j < path.length; j++) folders.add(key(path.slice(0, j)))
  return folders
}

/**
 * Whether `target` names a file or folder once links to folders along it are followed (each link at
 * most once, so that a cycle ends).
 */
const resolvesThroughLinks = (
  target: ReadonlyArray<string>,
  files: ReadonlySet<string>,
  folders: ReadonlySet<string>,
  folderLinks: ReadonlyMap<string, ReadonlyArray<string>>
): boolean => {
  let current = target
  const followed = new Set<string>()
  for (let j = 1; j < current.length; j++) {
    const branch = key(current.slice(0, j))
    if (folders.has(branch)) continue
    const link = folderLinks.get(branch)
    if (link === undefined || followed.has(branch)) return false
    followed.add(branch)
    current = [...link, ...current.slice(j)]
    j = 0
  }
  return files.has(key(current)) || folders.has(key(current))
}

/**
 * The target of each entry (undefined for a file that is no link), in order: the sanitised target
 * when it names a file or folder of the torrent, directly, relative to the link's own folder (an
 * older convention), or through other links; else the link's own path.
 */
export const resolveSymlinkTargets = (entries: ReadonlyArray<LinkEntry>): ReadonlyArray<ReadonlyArray<string> | undefined> => {
  if (entries.every((e) => e.symlink === undefined)) return entries.map(() => undefined)
  const files = new Set(entries.map((e) => key(e.path)))
  const linkAt = new Map(entries.flatMap((e) => (e.symlink === undefined ? [] : [[key(e.path), e] as const])))
  const folders = foldersOf(entries)
  const names = (path: ReadonlyArray<string>) => files.has(key(path)) || folders.has(key(path))
  // Links that may point at folders: a link to a folder, to another link, or not yet resolved.
  const folderLinks = new Map<string, ReadonlyArray<string>>()
  const targets = entries.map((entry): ReadonlyArray<string> | undefined => {
    if (entry.symlink === undefined) return undefined
    const beside = [...entry.path.slice(0, -1), ...entry.symlink]
    const found = [entry.symlink, ...(entry.path.length > 1 ? [beside] : [])].find(names)
    if (found !== undefined) {
      if (folders.has(key(found)) || linkAt.has(key(found))) folderLinks.set(key(entry.path), found)
      return found
    }
    folderLinks.set(key(entry.path), entry.symlink)
    return entry.symlink
  })
  return targets.map((target, i) => {
    if (target === undefined || names(target)) return target
    return resolvesThroughLinks(target, files, folders, folderLinks) ? target : entries[i]!.path
  })
}
