/**
 * BEP 47 padding files: ranges of the payload that align the next file to a piece boundary. Their
 * bytes are zeros by definition, so they are never stored: they read back as zeros, and a piece
 * is only accepted when its padding bytes are zero (what we verified is then what we serve).
 */
import type { Info, TorrentFile } from "./Metainfo.js"
import { fileSpans } from "./PieceGeometry.js"

/** Attribute `p`, or (older creators) a file under `.pad/`. */
export const isPadding = (file: TorrentFile): boolean =>
  file.padding === true || (file.path.length > 1 && file.path[0] === ".pad")

/** Whether the torrent has any padding at all (lets the hot path skip the check). */
export const hasPadding = (info: Info): boolean => info.files.some(isPadding)

/** Whether every byte of `data`, piece `index` whole, that falls in a padding file is zero. */
export const paddingIsZero = (info: Info, index: number, data: Uint8Array): boolean =>
  fileSpans(info, index).every((span) => {
    if (!isPadding(info.files[span.fileIndex]!)) return true
    for (let k = span.pieceOffset; k < span.pieceOffset + span.length; k++) if (data[k] !== 0) return false
    return true
  })
