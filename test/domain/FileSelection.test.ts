import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import {
  checkPriorities,
  type FilePriority,
  filePriorities,
  formatFileIndices,
  onlyFiles,
  parseFileIndices,
  piecePlan,
  priorityTier,
  wantedFiles
} from "../../src/domain/FileSelection.js"
import type { Info } from "../../src/domain/Metainfo.js"
import { hasPadding, isPadding, paddingIsZero } from "../../src/domain/Padding.js"
import { fileSpans } from "../../src/domain/PieceGeometry.js"
import { geometryInfo } from "../support/handInfo.js"

/** File lengths (zeros included), some files padding, a piece length, and a priority per file. */
const selectionArb = fc
  .record({
    lengths: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 })), { minLength: 1, maxLength: 12 }),
    pieceLength: fc.integer({ min: 1, max: 150 }),
    seed: fc.array(fc.tuple(fc.constantFrom(...filePriorities), fc.boolean()), { minLength: 12, maxLength: 12 })
  })
  .filter(({ lengths }) => lengths.some((l) => l > 0))
  .map(({ lengths, pieceLength, seed }) => {
    const base = geometryInfo(pieceLength, lengths)
    const info: Info = { ...base, files: base.files.map((f, i) => (seed[i]![1] && i % 3 === 1 ? { ...f, padding: true } : f)) }
    return { info, priorities: lengths.map((_, i) => seed[i]![0]) }
  })

const indicesArb = fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 20 })

describe("parseFileIndices", () => {
  it.prop("reads back what formatFileIndices writes: the same indices, sorted", [indicesArb], ([indices]) => {
    const text = formatFileIndices(indices)
    expect(Either.getOrThrow(parseFileIndices(text, 61))).toEqual([...indices].sort((a, b) => a - b))
    expect(formatFileIndices(Either.getOrThrow(parseFileIndices(text, 61)))).toBe(text)
  })

  it("reads single indices, inclusive ranges, repeats and spaces", () => {
    expect(Either.getOrThrow(parseFileIndices("0,2-4", 5))).toEqual([0, 2, 3, 4])
    expect(Either.getOrThrow(parseFileIndices(" 3 , 1-1,3", 5))).toEqual([1, 3])
    expect(formatFileIndices([4, 0, 2, 3])).toBe("0,2-4")
  })

  it.prop("an index at or beyond the file count is OutOfRange, naming the torrent's files", [indicesArb, fc.integer({ min: 1, max: 60 })], ([indices, count]) => {
    const result = parseFileIndices(formatFileIndices(indices), count)
    expect(Either.isRight(result)).toBe(indices.every((i) => i < count))
    if (Either.isRight(result)) return
    const error = Either.getLeft(result)
    expect(error._tag === "Some" && error.value.reason).toBe("OutOfRange")
    expect(error._tag === "Some" && error.value.message).toMatch(/does not exist: the torrent has \d+ files? \(0-\d+\)$/)
  })

  it.prop(
    "malformed lists are refused as Malformed",
    [fc.constantFrom("", ",", "1,", "a", "1-", "-1", "1--2", "1-2-3", "3-1", "1.5", "0x1", "+1", "1;2", "1 2")],
    ([text]) => {
      const error = Either.getLeft(parseFileIndices(text, 100))
      expect(error._tag === "Some" && error.value.reason).toBe("Malformed")
    }
  )

  it.prop("random text is either a valid list or refused, never anything else", [fc.string({ maxLength: 12 })], ([text]) => {
    const result = parseFileIndices(text, 1000)
    if (Either.isRight(result)) expect(formatFileIndices(result.right).length).toBeGreaterThan(0)
    else expect(["Malformed", "OutOfRange"]).toContain(result.left.reason)
  })
})

describe("piecePlan", () => {
  it.prop(
    "a piece is wanted exactly when it touches a wanted, non-padding file, at the highest tier among them",
    [selectionArb],
    ([{ info, priorities }]) => {
      const plan = piecePlan(info, priorities)
      for (let index = 0; index < info.pieceCount; index++) {
        const tiers = fileSpans(info, index)
          .filter((s) => priorities[s.fileIndex] !== "skip" && !isPadding(info.files[s.fileIndex]!))
          .map((s) => priorityTier(priorities[s.fileIndex]!))
        const expected = tiers.length === 0 ? 0 : Math.max(...tiers)
        expect(plan.tiers[index]).toBe(expected)
        expect(plan.wanted.has(index)).toBe(expected > 0)
      }
    }
  )

  it.prop("every file wanted and no padding: every piece is wanted at the normal tier", [selectionArb], ([{ info }]) => {
    const plain: Info = { ...info, files: info.files.map(({ padding: _, ...f }) => f) }
    const plan = piecePlan(plain, onlyFiles(plain.files.length, plain.files.map((_, i) => i)))
    expect(plan.wanted.isComplete).toBe(true)
    expect(plan.tiers.every((t) => t === priorityTier("normal"))).toBe(true)
  })

  it.prop("wantedFiles: on disk only what is wanted and not padding", [selectionArb], ([{ info, priorities }]) => {
    expect(wantedFiles(info, priorities)).toEqual(info.files.map((f, i) => priorities[i] !== "skip" && !isPadding(f)))
  })

  it("checkPriorities wants one known priority per file", () => {
    const info = geometryInfo(10, [5, 5])
    expect(Either.isRight(checkPriorities(info, ["high", "skip"]))).toBe(true)
    expect(Either.getLeft(checkPriorities(info, ["high"]))._tag).toBe("Some")
    expect(Either.getLeft(checkPriorities(info, ["high", "urgent" as FilePriority]))._tag).toBe("Some")
  })
})

describe("Padding", () => {
  it.prop("a piece passes when its padding bytes are zero, and fails when one of them is not", [selectionArb, fc.nat()], ([{ info }, pick]) => {
    const index = pick % info.pieceCount
    const data = new Uint8Array(info.pieceCount === index + 1 ? info.totalLength - index * info.pieceLength : info.pieceLength).fill(7)
    const padSpans = fileSpans(info, index).filter((s) => isPadding(info.files[s.fileIndex]!))
    for (const s of padSpans) data.fill(0, s.pieceOffset, s.pieceOffset + s.length)
    expect(paddingIsZero(info, index, data)).toBe(true)
    if (padSpans.length === 0) return
    data[padSpans[0]!.pieceOffset] = 1
    expect(paddingIsZero(info, index, data)).toBe(false)
    expect(hasPadding(info)).toBe(true)
  })

  it("a file under .pad/ is padding without the attribute", () => {
    expect(isPadding({ path: [".pad", "123"], length: 123, offset: 0 })).toBe(true)
    expect(isPadding({ path: [".pad"], length: 1, offset: 0 })).toBe(false)
  })
})
