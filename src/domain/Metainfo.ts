/**
 * The torrent model (BEP 3 metainfo, BEP 12 announce-list, BEP 27 private flag).
 * Types first; the parser and validation follow below.
 */

/** One file of the torrent, in torrent order; `offset` is where it starts in the concatenated payload. */
export interface TorrentFile {
  readonly path: ReadonlyArray<string>
  readonly length: number
  readonly offset: number
}

export interface Info {
  readonly name: string
  readonly pieceLength: number
  /** 20-byte SHA-1 of each piece. */
  readonly pieceHashes: ReadonlyArray<Uint8Array>
  readonly pieceCount: number
  /** A single-file torrent has one entry whose path is `[name]`. */
  readonly files: ReadonlyArray<TorrentFile>
  readonly isMultiFile: boolean
  readonly totalLength: number
  readonly private: boolean
  /** SHA-1 of the info dict's exact bytes. */
  readonly infoHash: Uint8Array
  /** The info dict's exact bytes (served to peers over ut_metadata). */
  readonly raw: Uint8Array
}

export interface Metainfo {
  readonly announce: string | undefined
  /** BEP 12 tiers; empty when the torrent has no announce-list. */
  readonly announceList: ReadonlyArray<ReadonlyArray<string>>
  readonly info: Info
}
