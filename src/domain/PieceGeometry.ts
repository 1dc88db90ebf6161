/**
 * Where pieces and blocks sit: the block layout of a piece, and the file ranges a piece (or a range
 * inside it) covers in a torrent whose payload is the concatenation of its files.
 */
import type { Bitfield } from "./Bitfield.js"
import { type Info, pieceSize } from "./Metainfo.js"
import { blockSize } from "./Wire.js"

export { blockSize }

export interface Block {
  readonly begin: number
  readonly length: number
}

/** A contiguous range of one file covered by part of a piece. */
export interface FileSpan {
  readonly fileIndex: number
  /** Where the range starts inside the file. */
  readonly fileOffset: number
  /** Where the range starts inside the piece. */
  readonly pieceOffset: number
  readonly length: number
}

export const blockCount = (info: Info, index: number): number => Math.ceil(pieceSize(info, index) / blockSize)

/** The blocks of piece `index` in order; the last one is short when the piece is not a multiple of `blockSize`. */
export const blocksOf = (info: Info, index: number): ReadonlyArray<Block> => {
  const size = pieceSize(info, index)
  const blocks: Array<Block> = []
  for (let begin = 0; begin < size; begin += blockSize) blocks.push({ begin, length: Math.min(blockSize, size - begin) })
  return blocks
}

/** Index of the first file that ends after payload position `at` (files are sorted by offset). */
const fileAt = (files: Info["files"], at: number): number => {
  let lo = 0
  let hi = files.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const f = files[mid]!
    if (f.offset + f.length <= at) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * The file ranges covered by bytes `[begin, begin + length)` of piece `index` (the whole piece by
 * default), in payload order; zero-length files get no span. The range is clipped to the piece, so
 * callers validate requests first when an out-of-range one must be an error.
 */
export const fileSpans = (info: Info, index: number, begin = 0, length?: number): ReadonlyArray<FileSpan> => {
  const size = pieceSize(info, index)
  const start = Math.max(0, begin)
  const end = Math.min(size, length === undefined ? size : begin + length)
  const spans: Array<FileSpan> = []
  if (start >= end) return spans
  const pieceStart = index * info.pieceLength
  let at = pieceStart + start
  const stop = pieceStart + end
  for (let i = fileAt(info.files, at); at < stop && i < info.files.length; i++) {
    const file = info.files[i]!
    const fileEnd = file.offset + file.length
    if (fileEnd <= at) continue // zero-length files at this position
    const spanEnd = Math.min(fileEnd, stop)
    spans.push({ fileIndex: i, fileOffset: at - file.offset, pieceOffset: at - pieceStart, length: spanEnd - at })
    at = spanEnd
  }
  return spans
}

/** Bytes of the pieces in `have`: every piece is full-size but the last. O(1): asked at every listing. */
export const bytesOfPieces = (info: Info, have: Bitfield): number => {
  const last = info.pieceCount - 1
  const short = last >= 0 && have.has(last) ? info.pieceLength - pieceSize(info, last) : 0
  return have.cardinality * info.pieceLength - short
}

/** Bytes of each file (by index) that verified pieces cover: what a file has of its own data, checked. */
export const verifiedFileBytes = (info: Info, verified: (piece: number) => boolean): Array<number> => {
  const bytes = info.files.map(() => 0)
  for (let piece = 0; piece < info.pieceCount; piece++) {
    if (!verified(piece)) continue
    for (const span of fileSpans(info, piece)) bytes[span.fileIndex]! += span.length
  }
  return bytes
}
