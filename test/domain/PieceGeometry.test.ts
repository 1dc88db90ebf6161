import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { pieceSize } from "../../src/domain/Metainfo.js"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { blockCount, blocksOf, blockSize, bytesOfPieces, type FileSpan, fileSpans, verifiedFileBytes } from "../../src/domain/PieceGeometry.js"
import { geometryInfo } from "../support/handInfo.js"

/** File lengths (zeros included, payload never empty) and a piece length, small so that pieces span many files. */
const layoutArb = fc
  .record({
    lengths: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 })), { minLength: 1, maxLength: 12 }),
    pieceLength: fc.integer({ min: 1, max: 150 })
  })
  .filter(({ lengths }) => lengths.some((l) => l > 0))

/** Checks the spans of bytes [begin, begin+length) of a piece and returns the payload positions they cover. */
const checkSpans = (
  info: ReturnType<typeof geometryInfo>,
  index: number,
  spans: ReadonlyArray<FileSpan>,
  begin: number,
  length: number
) => {
  let pieceOffset = begin
  let lastFile = -1
  for (const s of spans) {
    const file = info.files[s.fileIndex]!
    expect(s.length).toBeGreaterThan(0)
    expect(s.fileIndex).toBeGreaterThan(lastFile) // in payload order, each file once
    expect(s.pieceOffset).toBe(pieceOffset) // contiguous inside the piece
    expect(s.fileOffset).toBeGreaterThanOrEqual(0)
    expect(s.fileOffset + s.length).toBeLessThanOrEqual(file.length) // inside the file
    expect(file.offset + s.fileOffset).toBe(index * info.pieceLength + s.pieceOffset) // the right payload bytes
    pieceOffset += s.length
    lastFile = s.fileIndex
  }
  expect(pieceOffset).toBe(begin + length) // covers exactly the range
}

describe("fileSpans", () => {
  it.prop("the spans of every piece cover it exactly, in order, inside the files; all pieces cover the payload once", [layoutArb], ([l]) => {
    const info = geometryInfo(l.pieceLength, l.lengths)
    const covered = new Uint8Array(info.totalLength)
    for (let index = 0; index < info.pieceCount; index++) {
      const spans = fileSpans(info, index)
      checkSpans(info, index, spans, 0, pieceSize(info, index))
      for (const s of spans) for (let i = 0; i < s.length; i++) covered[info.files[s.fileIndex]!.offset + s.fileOffset + i]!++
    }
    expect(covered.every((n) => n === 1)).toBe(true)
  })

  it.prop(
    "a range inside a piece gives the part of the piece's spans it covers",
    [layoutArb, fc.nat(), fc.nat(), fc.nat()],
    ([l, pick, a, b]) => {
      const info = geometryInfo(l.pieceLength, l.lengths)
      const index = pick % info.pieceCount
      const size = pieceSize(info, index)
      const begin = a % size
      const length = 1 + (b % (size - begin))
      checkSpans(info, index, fileSpans(info, index, begin, length), begin, length)
    }
  )

  it("splits a piece across files and skips zero-length files", () => {
    const info = geometryInfo(10, [4, 0, 3, 0, 0, 8])
    expect(fileSpans(info, 0)).toEqual([
      { fileIndex: 0, fileOffset: 0, pieceOffset: 0, length: 4 },
      { fileIndex: 2, fileOffset: 0, pieceOffset: 4, length: 3 },
      { fileIndex: 5, fileOffset: 0, pieceOffset: 7, length: 3 }
    ])
    // The last piece is short (15 bytes in all).
    expect(fileSpans(info, 1)).toEqual([{ fileIndex: 5, fileOffset: 3, pieceOffset: 0, length: 5 }])
    expect(fileSpans(info, 0, 5, 4)).toEqual([
      { fileIndex: 2, fileOffset: 1, pieceOffset: 5, length: 2 },
      { fileIndex: 5, fileOffset: 0, pieceOffset: 7, length: 2 }
    ])
  })

  it("clips ranges to the piece and gives nothing outside the torrent", () => {
    const info = geometryInfo(10, [15])
    expect(fileSpans(info, 1, 3, 100)).toEqual([{ fileIndex: 0, fileOffset: 13, pieceOffset: 3, length: 2 }])
    expect(fileSpans(info, 2)).toEqual([])
    expect(fileSpans(info, -1)).toEqual([])
  })
})

describe("blocksOf", () => {
  it("cuts pieces into 16 KiB blocks, the last block and the last piece short", () => {
    const info = geometryInfo(40000, [100000])
    expect(blocksOf(info, 0)).toEqual([
      { begin: 0, length: blockSize },
      { begin: blockSize, length: blockSize },
      { begin: 2 * blockSize, length: 40000 - 2 * blockSize }
    ])
    expect(blocksOf(info, 2)).toEqual([
      { begin: 0, length: blockSize },
      { begin: blockSize, length: 20000 - blockSize }
    ])
    expect(blockCount(info, 0)).toBe(3)
    expect(blockCount(info, 2)).toBe(2)
    expect(blocksOf(info, 3)).toEqual([])
  })

  it.prop(
    "blocks are contiguous, full-size but the last, and cover the piece",
    [fc.integer({ min: 1, max: 5 * blockSize }), fc.integer({ min: 0, max: 3 }), fc.nat()],
    ([pieceLength, fullPieces, rest]) => {
      const info = geometryInfo(pieceLength, [fullPieces * pieceLength + 1 + (rest % pieceLength)])
      for (let index = 0; index < info.pieceCount; index++) {
        const blocks = blocksOf(info, index)
        expect(blocks.length).toBe(blockCount(info, index))
        let at = 0
        for (const [i, b] of blocks.entries()) {
          expect(b.begin).toBe(at)
          if (i < blocks.length - 1) expect(b.length).toBe(blockSize)
          else expect(b.length).toBeGreaterThan(0)
          at += b.length
        }
        expect(at).toBe(pieceSize(info, index))
      }
    }
  )
})

describe("verifiedFileBytes", () => {
  it.prop("gives each file the bytes of it that verified pieces cover: all of it when all are, none when none are", [layoutArb, fc.array(fc.boolean(), { maxLength: 3000 })], ([l, flags]) => {
    const info = geometryInfo(l.pieceLength, l.lengths)
    const verified = (piece: number) => flags[piece] === true
    const bytes = verifiedFileBytes(info, verified)
    expect(verifiedFileBytes(info, () => true)).toEqual(info.files.map((f) => f.length))
    expect(verifiedFileBytes(info, () => false)).toEqual(info.files.map(() => 0))
    bytes.forEach((b, i) => expect(b).toBeLessThanOrEqual(info.files[i]!.length))
    let sum = 0
    for (let p = 0; p < info.pieceCount; p++) if (verified(p)) sum += pieceSize(info, p)
    expect(bytes.reduce((a, b) => a + b, 0)).toBe(sum)
    const have = Bitfield.empty(info.pieceCount)
    for (let p = 0; p < info.pieceCount; p++) if (verified(p)) have.add(p)
    expect(bytesOfPieces(info, have)).toBe(sum)
  })
})
