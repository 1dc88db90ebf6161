/** Builders for synthetic torrents in tests: real piece hashes over an in-memory payload. */
import { createHash } from "node:crypto"
import { Either } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { concatBytes } from "../../src/domain/Bytes.js"
import { fileHashes } from "../../src/domain/Merkle.js"
import { buildTorrent } from "../../src/domain/TorrentBuilder.js"

export const sha1 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash("sha1").update(bytes).digest())

/** The concatenated 20-byte hashes of `payload` cut into pieces. */
export const pieceHashes = (payload: Uint8Array, pieceLength: number): Uint8Array => {
  const hashes: Array<Uint8Array> = []
  for (let at = 0; at < payload.length; at += pieceLength) hashes.push(sha1(payload.subarray(at, at + pieceLength)))
  return concatBytes(hashes)
}

/** Deterministic pseudo-random bytes (no two pieces alike). */
export const payloadBytes = (size: number, seed = 1): Uint8Array => {
  const out = new Uint8Array(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

export const singleFileInfo = (name: string, payload: Uint8Array, pieceLength: number): Bencode.BencodeDict =>
  Bencode.dict({
    length: Bencode.int(payload.length),
    name: Bencode.text(name),
    "piece length": Bencode.int(pieceLength),
    pieces: pieceHashes(payload, pieceLength)
  })

export interface FileSpec {
  readonly path: ReadonlyArray<string>
  readonly data: Uint8Array
}

export const multiFileInfo = (name: string, files: ReadonlyArray<FileSpec>, pieceLength: number): Bencode.BencodeDict =>
  Bencode.dict({
    files: files.map((f) => Bencode.dict({ length: Bencode.int(f.data.length), path: f.path.map(Bencode.text) })),
    name: Bencode.text(name),
    "piece length": Bencode.int(pieceLength),
    pieces: pieceHashes(concatBytes(files.map((f) => f.data)), pieceLength)
  })

/** A copy of `d` with text keys set, or removed where the value is `undefined`. */
export const withKeys = (d: Bencode.BencodeDict, changes: Record<string, Bencode.Bencode | undefined>): Bencode.BencodeDict => {
  const out = new Map(d)
  for (const [k, v] of Object.entries(changes)) {
    const key = Bencode.bytesToKey(Bencode.text(k))
    if (v === undefined) out.delete(key)
    else out.set(key, v)
  }
  return out
}

export const defaultAnnounce = "http://127.0.0.1:6969/announce"

/** A whole `.torrent` file: `info` plus top-level fields (an announce URL unless overridden). */
export const torrentBytes = (
  info: Bencode.Bencode,
  top: Record<string, Bencode.Bencode | undefined> = { announce: Bencode.text(defaultAnnounce) }
): Uint8Array => Bencode.encode(Bencode.dict({ ...top, info }))

/** A v2-only torrent of the folder `folder` holding `files` (name and bytes), built as `create --v2` builds one. */
export const v2Torrent = (files: ReadonlyArray<readonly [string, Uint8Array]>, pieceLength: number) =>
  Either.getOrThrow(
    buildTorrent(
      { name: "folder", pieceLength, version: "v2", content: { _tag: "MultiFile", files: files.map(([name, data]) => ({ path: [name], length: data.length })) } },
      new Uint8Array(0),
      files.map(([, data]) => fileHashes(data, pieceLength))
    )
  )
