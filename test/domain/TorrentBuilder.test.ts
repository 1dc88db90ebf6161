import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { concatBytes, equalBytes } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import * as Merkle from "../../src/domain/Merkle.js"
import { matchesV2 } from "../../src/domain/MetainfoV2.js"
import * as TorrentBuilder from "../../src/domain/TorrentBuilder.js"
import { payloadBytes, pieceHashes, sha1 } from "../support/torrent.js"

const { buildTorrent, checkSpec, defaultPieceLength, validatePieceLength } = TorrentBuilder
type TorrentSpec = TorrentBuilder.TorrentSpec

const built = (spec: TorrentSpec, pieces: Uint8Array) => Either.getOrThrow(buildTorrent(spec, pieces))
const buildError = (spec: TorrentSpec, pieces = new Uint8Array(TorrentBuilder.pieceCount(spec) * 20)) =>
  Either.getOrThrowWith(Either.flip(buildTorrent(spec, pieces)), () => new Error("built"))

const single = (payload: Uint8Array, extra: Partial<TorrentSpec> = {}): TorrentSpec => ({
  name: "file.bin",
  content: { _tag: "SingleFile", length: payload.length },
  pieceLength: 16384,
  ...extra
})

const topLevel = (bytes: Uint8Array) => {
  const value = Either.getOrThrow(Bencode.decode(bytes))
  if (!Bencode.isDict(value)) throw new Error("not a dict")
  return value
}

describe("defaultPieceLength", () => {
  it("is 16 KiB for small payloads and 16 MiB at most", () => {
    expect(defaultPieceLength(0)).toBe(16384)
    expect(defaultPieceLength(1)).toBe(16384)
    expect(defaultPieceLength(2000 * 16384)).toBe(16384)
    expect(defaultPieceLength(2000 * 16384 + 1)).toBe(32768)
    expect(defaultPieceLength(700 * 1024 ** 3)).toBe(16 * 1024 ** 2)
  })

  it.prop("is a power of two giving 1001..2000 pieces between 32 MiB and 32 GB", [fc.integer({ min: 2000 * 16384 + 1, max: 2000 * 16 * 1024 ** 2 })], ([total]) => {
    const length = defaultPieceLength(total)
    expect(validatePieceLength(length)).toEqual(Either.right(length))
    const count = Math.ceil(total / length)
    expect(count).toBeGreaterThan(1000)
    expect(count).toBeLessThanOrEqual(2000)
  })
})

describe("validatePieceLength", () => {
  it("accepts powers of two from 16 KiB to 64 MiB and rejects the rest with a typed error", () => {
    for (const ok of [16384, 32768, 1 << 20, 64 * 1024 ** 2]) expect(validatePieceLength(ok)).toEqual(Either.right(ok))
    for (const bad of [0, -16384, 1000, 8192, 3 * 16384, 16384.5, 128 * 1024 ** 2, Number.NaN]) {
      const e = Either.getOrThrowWith(Either.flip(validatePieceLength(bad)), () => new Error(`accepted ${bad}`))
      expect(e).toMatchObject({ _tag: "TorrentBuildError", reason: "PieceLength" })
      expect(e.message).toContain(`piece length ${bad}`)
    }
  })
})

describe("buildTorrent", () => {
  const payload = payloadBytes(50_000)

  it("builds a single-file torrent that parses back with the same fields", () => {
    const result = built(
      single(payload, { announce: ["http://127.0.0.1:6969/announce"], private: true, comment: "hello" }),
      pieceHashes(payload, 16384)
    )
    const meta = Either.getOrThrow(parseTorrent(result.bytes))
    expect(meta.announce).toBe("http://127.0.0.1:6969/announce")
    expect(meta.announceList).toEqual([])
    expect(meta.info).toMatchObject({ name: "file.bin", pieceLength: 16384, totalLength: 50_000, pieceCount: 4, private: true, isMultiFile: false })
    expect(meta.info.files).toEqual([{ path: ["file.bin"], length: 50_000, offset: 0 }])
    expect(equalBytes(concatBytes(meta.info.pieceHashes), pieceHashes(payload, 16384))).toBe(true)
    expect(equalBytes(result.infoHash, meta.info.infoHash)).toBe(true)
    expect(equalBytes(result.infoHash, sha1(Bencode.encode(Bencode.get(topLevel(result.bytes), "info")!)))).toBe(true)
    const top = topLevel(result.bytes)
    expect(Bencode.toText(Bencode.get(top, "comment") as Uint8Array)).toBe("hello")
    expect(Bencode.toText(Bencode.get(top, "created by") as Uint8Array)).toBe("effect-bittorrent 0.1.0")
    expect(Bencode.get(top, "creation date")).toBeUndefined()
  })

  it("is reproducible: the same input gives identical bytes; a creation date only when asked", () => {
    const spec = single(payload, { announce: ["http://a/announce"] })
    const a = built(spec, pieceHashes(payload, 16384))
    const b = built({ ...spec }, pieceHashes(payload, 16384))
    expect(equalBytes(a.bytes, b.bytes)).toBe(true)
    const dated = built({ ...spec, creationDate: 1_700_000_000 }, pieceHashes(payload, 16384))
    expect(Bencode.get(topLevel(dated.bytes), "creation date")).toBe(1_700_000_000n)
    // The date is outside the info dict: same torrent identity.
    expect(equalBytes(dated.infoHash, a.infoHash)).toBe(true)
  })

  it("leaves out `private` when not private, and writes an announce-list with one tier per URL when there are several", () => {
    const urls = ["http://a.example/announce", "udp://b.example:80", "https://c.example/announce"]
    const result = built(single(payload, { announce: urls }), pieceHashes(payload, 16384))
    const meta = Either.getOrThrow(parseTorrent(result.bytes))
    expect(meta.announce).toBe(urls[0])
    expect(meta.announceList).toEqual(urls.map((u) => [u]))
    expect(meta.info.private).toBe(false)
    expect(Bencode.get(Bencode.get(topLevel(result.bytes), "info") as Bencode.BencodeDict, "private")).toBeUndefined()
    const none = built(single(payload), pieceHashes(payload, 16384))
    expect(Bencode.get(topLevel(none.bytes), "announce")).toBeUndefined()
  })

  it("builds a multi-file torrent in the given file order", () => {
    const files = [
      { path: ["b.txt"], data: payloadBytes(20_000, 2) },
      { path: ["sub", "a.txt"], data: payloadBytes(0, 3) },
      { path: ["sub", "c.txt"], data: payloadBytes(13_000, 4) }
    ]
    const all = concatBytes(files.map((f) => f.data))
    const spec: TorrentSpec = {
      name: "folder",
      content: { _tag: "MultiFile", files: files.map((f) => ({ path: f.path, length: f.data.length })) },
      pieceLength: 16384
    }
    const meta = built(spec, pieceHashes(all, 16384)).metainfo
    expect(meta.info.isMultiFile).toBe(true)
    expect(meta.info.files).toEqual([
      { path: ["b.txt"], length: 20_000, offset: 0 },
      { path: ["sub", "a.txt"], length: 0, offset: 20_000 },
      { path: ["sub", "c.txt"], length: 13_000, offset: 20_000 }
    ])
    expect(meta.info.pieceCount).toBe(3)
  })

  it("rejects unsafe names, conflicting paths, empty content, bad trackers and wrong hashes with typed errors", () => {
    const multi = (paths: ReadonlyArray<ReadonlyArray<string>>): TorrentSpec => ({
      name: "folder",
      content: { _tag: "MultiFile", files: paths.map((path) => ({ path, length: 10 })) },
      pieceLength: 16384
    })
    for (const name of ["", ".", "..", "a/b", "c:evil", "nul\0"]) {
      expect(buildError(single(payload, { name }))).toMatchObject({ reason: "UnsafeName" })
    }
    for (const path of [[], [".."], ["a", ".."], ["x/y"], ["a\\b"], ["C:", "x"], [""]]) {
      expect(buildError(multi([path]))).toMatchObject({ reason: "UnsafeName" })
    }
    // Paths that would collide are refused at creation (a reader would have to rename one).
    expect(buildError(multi([["a"], ["a"]]))).toMatchObject({ reason: "Invalid" })
    expect(buildError(multi([["a"], ["a", "b"]])).message).toMatch(/^cannot create the torrent: .*"a" is a file, not a folder/)
    expect(buildError(multi([]))).toMatchObject({ reason: "Empty" })
    expect(buildError(single(new Uint8Array(0)))).toMatchObject({ reason: "Empty" })
    expect(buildError(single(payload, { announce: ["not a url"] }))).toMatchObject({ reason: "AnnounceUrl" })
    expect(buildError(single(payload, { announce: ["ftp://x/announce"] }))).toMatchObject({ reason: "AnnounceUrl" })
    expect(buildError(single(payload, { pieceLength: 20000 }))).toMatchObject({ reason: "PieceLength" })
    expect(buildError(single(payload), new Uint8Array(60))).toMatchObject({ reason: "PieceHashes" })
    expect(Either.isLeft(checkSpec(multi([["a"], ["a"]])))).toBe(true)
    expect(checkSpec(multi([["a"], ["b"]]))).toEqual(Either.right(multi([["a"], ["b"]])))
  })

  it.prop(
    "whatever names are asked for, what gets built is a torrent our parser accepts",
    [fc.array(fc.array(fc.string({ maxLength: 6 }), { minLength: 0, maxLength: 3 }), { minLength: 1, maxLength: 4 })],
    ([paths]) => {
      const spec: TorrentSpec = {
        name: "t",
        content: { _tag: "MultiFile", files: paths.map((path) => ({ path, length: 1 })) },
        pieceLength: 16384
      }
      const result = buildTorrent(spec, new Uint8Array(20))
      if (Either.isRight(result)) expect(Either.isRight(parseTorrent(result.right.bytes))).toBe(true)
      else expect(["UnsafeName", "Invalid"]).toContain(result.left.reason)
    }
  )
})

describe("v2 and hybrid torrents (BEP 52)", () => {
  const sizes = fc.array(fc.integer({ min: 0, max: 150_000 }), { minLength: 1, maxLength: 4 }).filter((xs) => xs.some((n) => n > 0))

  /** Builds the torrent as CreateTorrent does: each file's merkle tree, and for a hybrid the SHA-1 of the padded payload. */
  const buildVersion = (version: "v2" | "hybrid", datas: ReadonlyArray<Uint8Array>, pieceLength: number) => {
    const spec: TorrentSpec = {
      name: "folder",
      content: { _tag: "MultiFile", files: datas.map((d, i) => ({ path: [`f${i}`], length: d.length })) },
      pieceLength,
      version
    }
    const padded = concatBytes(datas.map((d) => concatBytes([d, new Uint8Array((pieceLength - (d.length % pieceLength)) % pieceLength)])))
    const v2 = datas.map((d) => (d.length === 0 ? undefined : Merkle.fileHashes(d, pieceLength)))
    return { torrent: Either.getOrThrow(buildTorrent(spec, version === "v2" ? new Uint8Array(0) : pieceHashes(padded, pieceLength), v2)), padded }
  }

  it.prop("every piece of what we build verifies under its v2 hash (and, for a hybrid, its SHA-1)", [
    sizes, fc.constantFrom("v2" as const, "hybrid" as const), fc.constantFrom(16384, 32768)
  ], ([lengths, version, pieceLength]) => {
    const datas = lengths.map((n, i) => payloadBytes(n, i + 1))
    const { torrent, padded } = buildVersion(version, datas, pieceLength)
    const { info } = torrent.metainfo
    expect(info.v2!.hybrid).toBe(version === "hybrid")
    expect(info.pieceCount).toBe(TorrentBuilder.pieceCount({ name: "x", content: { _tag: "MultiFile", files: lengths.map((n) => ({ path: ["x"], length: n })) }, pieceLength, version }))
    for (let p = 0; p < info.pieceCount; p++) {
      const piece = padded.subarray(p * pieceLength, (p + 1) * pieceLength)
      expect(matchesV2(info, p, piece)).toBe(true)
      if (version === "hybrid") expect(sha1(piece)).toEqual(info.pieceHashes[p])
    }
    expect(info.files.filter((f) => f.padding !== true && f.path[0] !== ".pad").map((f) => f.length)).toEqual(lengths)
  }, { fastCheck: { numRuns: 25 } })

  it("refuses v2 hashes that do not fit the files", () => {
    const spec: TorrentSpec = { ...single(payloadBytes(5)), version: "v2" }
    expect(Either.getLeft(buildTorrent(spec, new Uint8Array(0), [])).pipe((e) => e._tag === "Some" && e.value.reason)).toBe("PieceHashes")
  })

  it.prop("a file's merkle hashes do not depend on how its bytes are chunked", [
    fc.integer({ min: 1, max: 120_000 }), fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 8 })
  ], ([length, cuts]) => {
    const data = payloadBytes(length, 3)
    const hasher = new Merkle.FileHasherV2(32768)
    let at = 0
    for (let i = 0; at < length; i++) {
      const next = Math.min(length, at + cuts[i % cuts.length]!)
      hasher.update(data.subarray(at, next))
      at = next
    }
    expect(hasher.digest()).toEqual(Merkle.fileHashes(data, 32768))
  }, { fastCheck: { numRuns: 30 } })
})
