/**
 * The two path segments of `/stream/<torrent>/<file>`: the torrent as its info hash (40 hex
 * digits, either case) or its session id, and the file as a 0-based index. Nothing else is taken,
 * so no path on disk can be named (a `..`, a slash or an encoded one is simply not a match).
 */

export type TorrentRef =
  | { readonly _tag: "InfoHash"; readonly hex: string }
  | { readonly _tag: "Id"; readonly id: number }

export interface StreamTarget {
  readonly torrent: TorrentRef
  readonly fileIndex: number
}

const infoHash = /^[0-9a-fA-F]{40}$/
/** Session ids and file indices: no sign, no leading zero, below 2^31. */
const index = /^(0|[1-9]\d{0,9})$/

const smallIndex = (text: string): number | undefined => {
  if (!index.test(text)) return undefined
  const n = Number(text)
  return n < 2 ** 31 ? n : undefined
}

/** The target, or undefined when either segment is not one (a 400). */
export const parseStreamTarget = (torrent: string | undefined, file: string | undefined): StreamTarget | undefined => {
  const fileIndex = file === undefined ? undefined : smallIndex(file)
  if (torrent === undefined || fileIndex === undefined) return undefined
  if (infoHash.test(torrent)) return { torrent: { _tag: "InfoHash", hex: torrent.toLowerCase() }, fileIndex }
  const id = smallIndex(torrent)
  return id === undefined || id === 0 ? undefined : { torrent: { _tag: "Id", id }, fileIndex }
}
