/**
 * Where a web seed (BEP 19 `url-list`) serves the payload: the URL of each file, and the HTTP
 * range requests that fetch a range of the payload, one per file it covers.
 *
 * - Single-file torrent: the URL is the file itself; a URL ending in `/` names a folder, and the
 *   torrent's name is appended.
 * - Multi-file torrent: the URL names the folder above the torrent's; `<name>/<path...>` is
 *   appended, after a `/` when the URL lacks one (as libtorrent does for such torrents).
 * - Every appended component is percent-encoded on its own, so a `/`, `?`, `#` or `%` inside a
 *   name stays part of it.
 */
import type { Info, TorrentFile } from "./Metainfo.js"
import { fileSpans } from "./PieceGeometry.js"

/** One HTTP range request: bytes `[fileOffset, fileOffset + length)` of the file at `url`. */
export interface WebSeedRequest {
  readonly url: string
  readonly fileIndex: number
  readonly fileOffset: number
  readonly length: number
}

const encodePath = (components: ReadonlyArray<string>): string => components.map(encodeURIComponent).join("/")

/** The URL of one file of the torrent at web seed `seed`. */
export const webSeedFileUrl = (seed: string, info: Pick<Info, "name" | "isMultiFile">, file: Pick<TorrentFile, "path">): string => {
  if (!info.isMultiFile) return seed.endsWith("/") ? seed + encodeURIComponent(info.name) : seed
  return (seed.endsWith("/") ? seed : `${seed}/`) + encodePath([info.name, ...file.path])
}

/**
 * The requests that fetch payload bytes `[offset, offset + length)` from web seed `seed`, in
 * payload order (their bodies concatenated are the range); zero-length files get none. The range
 * is clipped to the payload.
 */
export const webSeedRequests = (seed: string, info: Info, offset: number, length: number): ReadonlyArray<WebSeedRequest> => {
  const spans: Array<{ fileIndex: number; fileOffset: number; length: number }> = []
  const end = Math.min(info.totalLength, offset + length)
  for (let at = Math.max(0, offset); at < end;) {
    const index = Math.floor(at / info.pieceLength)
    const begin = at - index * info.pieceLength
    const take = Math.min(end - at, info.pieceLength - begin)
    for (const span of fileSpans(info, index, begin, take)) {
      const last = spans.at(-1)
      // A file that goes on into the next piece is one request, not one per piece.
      if (last !== undefined && last.fileIndex === span.fileIndex && last.fileOffset + last.length === span.fileOffset) {
        last.length += span.length
      } else {
        spans.push({ fileIndex: span.fileIndex, fileOffset: span.fileOffset, length: span.length })
      }
    }
    at += take
  }
  return spans.map((s) => ({ url: webSeedFileUrl(seed, info, info.files[s.fileIndex]!), ...s }))
}
