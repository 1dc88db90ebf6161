/** `Info` values built by hand (no parser, so tests can also craft ones the parser would reject). */
import { concatBytes } from "../../src/domain/Bytes.js"
import type { Info, TorrentFile } from "../../src/domain/Metainfo.js"
import { sha1 } from "./torrent.js"

export interface HandFile {
  readonly path: ReadonlyArray<string>
  readonly data: Uint8Array
  /** BEP 47 attributes, set by hand. */
  readonly attributes?: Pick<TorrentFile, "padding" | "executable" | "symlink">
}

/** An Info over `files` (concatenated in order) with real piece hashes; one file means single-file. */
export const handInfo = (pieceLength: number, files: ReadonlyArray<HandFile>, isMultiFile = files.length > 1) => {
  const payload = concatBytes(files.map((f) => f.data))
  const pieceHashes: Array<Uint8Array> = []
  for (let at = 0; at < payload.length; at += pieceLength) pieceHashes.push(sha1(payload.subarray(at, at + pieceLength)))
  let offset = 0
  const info: Info = {
    name: isMultiFile ? "hand" : files[0]!.path[0]!,
    pieceLength,
    pieceHashes,
    pieceCount: pieceHashes.length,
    files: files.map((f) => {
      const file = { path: f.path, length: f.data.length, offset, ...f.attributes }
      offset += f.data.length
      return file
    }),
    isMultiFile,
    totalLength: payload.length,
    private: false,
    infoHash: new Uint8Array(20),
    raw: new Uint8Array(0)
  }
  return { info, payload }
}

/** Info for file lengths alone (geometry tests): data is zeros, hashes are not meaningful. */
export const geometryInfo = (pieceLength: number, lengths: ReadonlyArray<number>): Info => {
  let offset = 0
  const files = lengths.map((length, i) => {
    const file = { path: [`f${i}`], length, offset }
    offset += length
    return file
  })
  const pieceCount = Math.ceil(offset / pieceLength)
  return {
    name: "geometry",
    pieceLength,
    pieceHashes: Array.from({ length: pieceCount }, () => new Uint8Array(20)),
    pieceCount,
    files,
    isMultiFile: lengths.length > 1,
    totalLength: offset,
    private: false,
    infoHash: new Uint8Array(20),
    raw: new Uint8Array(0)
  }
}
