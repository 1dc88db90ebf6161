import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { Bitfield } from "../../src/domain/Bitfield.js"
import * as Metainfo from "../../src/domain/Metainfo.js"
import { fileSpans } from "../../src/domain/PieceGeometry.js"
import * as ResumeData from "../../src/domain/ResumeData.js"
import { multiFileInfo, payloadBytes, torrentBytes } from "../support/torrent.js"

const stampArb: fc.Arbitrary<ResumeData.FileStamp | undefined> = fc.option(
  fc.record({ length: fc.nat({ max: 2 ** 40 }), mtimeNs: fc.bigInt({ min: 0n, max: 2n ** 63n }) }),
  { nil: undefined }
)

const bitfieldArb = fc
  .integer({ min: 1, max: 300 })
  .chain((size) => fc.array(fc.nat({ max: size - 1 })).map((pieces) => {
    const b = Bitfield.empty(size)
    for (const p of pieces) b.add(p)
    return b
  }))

const resumeArb: fc.Arbitrary<ResumeData.ResumeData> = fc.record({
  infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  have: bitfieldArb,
  files: fc.array(stampArb, { maxLength: 20 }),
  savedAtNs: fc.bigInt({ min: 0n, max: 2n ** 63n })
})

const decoded = (bytes: Uint8Array) => Either.getOrThrow(ResumeData.decode(bytes))
const failure = (bytes: Uint8Array) => Either.getOrThrowWith(Either.flip(ResumeData.decode(bytes)), () => new Error("decoded"))

describe("ResumeData codec", () => {
  it.prop("round-trips every record", [resumeArb], ([resume]) => {
    const back = decoded(ResumeData.encode(resume))
    expect(back.infoHash).toEqual(resume.infoHash)
    expect(back.have.bytes).toEqual(resume.have.bytes)
    expect(back.have.size).toBe(resume.have.size)
    expect(back.files).toEqual(resume.files)
    expect(back.savedAtNs).toBe(resume.savedAtNs)
  })

  it.prop("a truncated record is a typed error, never a partial record", [resumeArb, fc.double({ min: 0, max: 1, maxExcluded: true })], ([resume, at]) => {
    const bytes = ResumeData.encode(resume)
    const cut = bytes.subarray(0, Math.floor(bytes.length * at))
    expect(failure(cut)._tag).toBe("ResumeDataError")
  })

  it.prop("never throws on arbitrary bytes", [fc.uint8Array({ maxLength: 200 })], ([bytes]) => {
    expect(Either.isEither(ResumeData.decode(bytes))).toBe(true)
  })

  const good = ResumeData.encode({ infoHash: new Uint8Array(20), have: Bitfield.empty(10), files: [undefined], savedAtNs: 5n })
  const root = Either.getOrThrow(Bencode.decode(good)) as Bencode.BencodeDict
  const changed = (key: string, value: Bencode.Bencode | undefined) => {
    const d = new Map(root)
    if (value === undefined) d.delete(Bencode.bytesToKey(Bencode.text(key)))
    else d.set(Bencode.bytesToKey(Bencode.text(key)), value)
    return Bencode.encode(d)
  }

  it.each([
    { key: "version", value: 2n, field: "version" },
    { key: "info hash", value: new Uint8Array(19), field: "info hash" },
    { key: "pieces", value: new Uint8Array(3), field: "pieces" },
    { key: "pieces", value: Uint8Array.of(0, 0x01), field: "pieces" },
    { key: "piece count", value: -1n, field: "piece count" },
    { key: "files", value: [[1n]], field: "files[0]" },
    { key: "files", value: [[1n, -2n]], field: "files[0].mtime" },
    { key: "files", value: new Uint8Array(1), field: "files" },
    { key: "saved at", value: undefined, field: "saved at" }
  ])("rejects a bad $key ($field)", ({ key, value, field }) => {
    const e = failure(changed(key, value))
    expect(e.field).toBe(field)
    expect(e.message).toMatch(/^invalid resume data: /)
  })
})

describe("trusting saved pieces", () => {
  const info = Either.getOrThrow(
    Metainfo.parseTorrent(
      torrentBytes(
        multiFileInfo("t", [3000, 0, 5000, 2100].map((n, i) => ({ path: [`f${i}`], data: payloadBytes(n, i + 1) })), 1024)
      )
    )
  ).info

  const recordArb = fc.record({
    unchanged: fc.array(fc.boolean(), { minLength: info.files.length, maxLength: info.files.length })
  })

  it.prop("a piece is settled exactly when every file it covers is unchanged", [recordArb], ([{ unchanged }]) => {
    const settled = ResumeData.settledPieces(info, unchanged)
    for (let i = 0; i < info.pieceCount; i++) {
      expect(settled.has(i)).toBe(fileSpans(info, i).every((s) => unchanged[s.fileIndex]!))
    }
  })

  const second = 1_000_000_000n
  const stamp = (length: number, mtimeNs: bigint): ResumeData.FileStamp => ({ length, mtimeNs })

  it("trusts a file only when its size and time are the saved ones and older than the racy window", () => {
    const resume: ResumeData.ResumeData = {
      infoHash: info.infoHash,
      have: Bitfield.full(info.pieceCount),
      files: [stamp(3000, 10n * second), stamp(0, 10n * second), stamp(5000, 19n * second), undefined],
      savedAtNs: 20n * second
    }
    const now = [stamp(3000, 10n * second), stamp(0, 11n * second), stamp(5000, 19n * second), stamp(2100, 1n)]
    expect(ResumeData.unchangedFiles(resume, now)).toEqual([true, false, false, false])
    expect(ResumeData.hasRacyFiles(resume)).toBe(true)
    expect(ResumeData.hasRacyFiles({ ...resume, savedAtNs: 30n * second })).toBe(false)
    expect(ResumeData.matches(resume, info)).toBe(true)
    expect(ResumeData.matches({ ...resume, files: [] }, info)).toBe(false)
  })
})
