import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { toHex } from "../../src/domain/Bytes.js"
import * as Metainfo from "../../src/domain/Metainfo.js"
import { fixturesDir } from "../support/cli.js"
import {
  defaultAnnounce,
  multiFileInfo,
  payloadBytes,
  pieceHashes,
  sha1,
  singleFileInfo,
  torrentBytes,
  withKeys
} from "../support/torrent.js"

const { text, int } = Bencode

const parseOk = (bytes: Uint8Array): Metainfo.Metainfo => Either.getOrThrow(Metainfo.parseTorrent(bytes))

const parseErr = (bytes: Uint8Array): Metainfo.MetainfoError | Bencode.BencodeError =>
  Either.getOrThrowWith(Either.flip(Metainfo.parseTorrent(bytes)), () => new Error("parsed"))

const expectRule = (info: Bencode.Bencode, reason: Metainfo.MetainfoRule, field: string) => {
  const e = parseErr(torrentBytes(info))
  expect(e._tag).toBe("MetainfoError")
  expect(e).toMatchObject({ reason, field })
  expect(e.message).toMatch(new RegExp(`^invalid torrent: ${field.replace(/[[\].]/g, "\\$&")}: .+`))
  return e as Metainfo.MetainfoError
}

const fixtures = [
  { file: "codercat.gif", hash: "c77829d2a77d6516f88cd7a3de1a26abcbfab0db", length: 2994120, pieces: 12 },
  { file: "congratulations.gif", hash: "1cad4a486798d952614c394eb15e75bec587fd08", length: 820892, pieces: 4 },
  { file: "itsworking.gif", hash: "70edcac2611a8829ebf467a6849f5d8408d9d8f4", length: 2549700, pieces: 10 },
  { file: "sample.txt", hash: "d69f91e6b2ae4c542468d1073a71d4ea13879a7f", length: 92063, pieces: 3 }
]

const payload = payloadBytes(1000)
const files = [
  { path: ["a.txt"], data: payload.subarray(0, 300) },
  { path: ["sub", "b.bin"], data: payload.subarray(300, 300) },
  { path: ["sub", "deeper", "c.bin"], data: payload.subarray(300) }
]
const multi = multiFileInfo("folder", files, 256)
const fileEntry = (p: ReadonlyArray<Bencode.Bencode>, length: Bencode.Bencode = int(1)) => Bencode.dict({ length, path: p })
/** A multi-file info whose files list is `entries` (one 1-byte piece per byte: hashes computed to match). */
const multiWith = (entries: ReadonlyArray<Bencode.Bencode>, total = entries.length) =>
  withKeys(multi, { files: entries, "piece length": int(1), pieces: pieceHashes(new Uint8Array(total), 1) })

describe("Metainfo.parseTorrent", () => {
  describe("the codecrafters fixtures", () => {
    it.each(fixtures)("$file: info hash, length and piece hashes of the payload", ({ file, hash, length, pieces }) => {
      const dir = path.join(fixturesDir, "seeder/base")
      const meta = parseOk(readFileSync(path.join(dir, `${file}.torrent`)))
      const data = readFileSync(path.join(dir, file))
      const { info } = meta
      expect(meta.announce).toBe("http://bittorrent-test-tracker.codecrafters.io/announce")
      expect(toHex(info.infoHash)).toBe(hash)
      expect(info.name).toBe(file)
      expect(info.totalLength).toBe(length)
      expect(info.pieceCount).toBe(pieces)
      expect(info.isMultiFile).toBe(false)
      expect(info.private).toBe(false)
      expect(info.files).toEqual([{ path: [file], length, offset: 0 }])
      expect(info.pieceHashes.map(toHex)).toEqual(
        Array.from({ length: pieces }, (_, i) => toHex(sha1(data.subarray(i * info.pieceLength, (i + 1) * info.pieceLength))))
      )
      // The magnet path parses the same bytes to the same Info.
      expect(Either.getOrThrow(Metainfo.parseInfo(info.raw))).toEqual(info)
      expect(Metainfo.trackerTiers(meta)).toEqual([["http://bittorrent-test-tracker.codecrafters.io/announce"]])
    })
  })

  it("hashes the info dict's bytes as written, not a re-encoding", () => {
    // Keys out of order: a canonical re-encoding would differ, and so would its hash.
    const info = singleFileInfo("x", payload, 512)
    const entries = [...info].reverse().map(([k, v]) => `${k.length}:${k}${new TextDecoder("latin1").decode(Bencode.encode(v))}`)
    const infoText = `d${entries.join("")}e`
    const bytes = Uint8Array.from(`d8:announce${defaultAnnounce.length}:${defaultAnnounce}4:info${infoText}e`, (c) => c.charCodeAt(0))
    const rawInfo = Uint8Array.from(infoText, (c) => c.charCodeAt(0))
    const meta = parseOk(bytes)
    expect(meta.info.raw).toEqual(rawInfo)
    expect(meta.info.infoHash).toEqual(sha1(rawInfo))
    expect(meta.info.infoHash).not.toEqual(sha1(Bencode.encode(info)))
  })

  it("does not share the caller's buffer", () => {
    const bytes = torrentBytes(singleFileInfo("x", payload, 512))
    const meta = parseOk(bytes)
    const before = meta.info.pieceHashes.map(toHex)
    const rawBefore = toHex(meta.info.raw)
    bytes.fill(0)
    expect(meta.info.pieceHashes.map(toHex)).toEqual(before)
    expect(toHex(meta.info.raw)).toBe(rawBefore)
  })

  it("parses a multi-file torrent: paths relative to the folder, offsets, total", () => {
    const meta = parseOk(torrentBytes(multi))
    const { info } = meta
    expect(info.name).toBe("folder")
    expect(info.isMultiFile).toBe(true)
    expect(info.totalLength).toBe(1000)
    expect(info.pieceCount).toBe(4)
    expect(info.files).toEqual([
      { path: ["a.txt"], length: 300, offset: 0 },
      { path: ["sub", "b.bin"], length: 0, offset: 300 },
      { path: ["sub", "deeper", "c.bin"], length: 700, offset: 300 }
    ])
    expect(info.pieceHashes.map(toHex)).toEqual([0, 1, 2, 3].map((i) => toHex(sha1(payload.subarray(i * 256, (i + 1) * 256)))))
  })

  it("reads the private flag and prefers name.utf-8 / path.utf-8", () => {
    const info = withKeys(multi, {
      private: int(1),
      "name.utf-8": text("dossier é"),
      files: files.map((f, i) =>
        Bencode.dict({ length: int(f.data.length), path: f.path.map(text), "path.utf-8": i === 0 ? [text("à.txt")] : undefined })
      )
    })
    const meta = parseOk(torrentBytes(info))
    expect(meta.info.private).toBe(true)
    expect(meta.info.name).toBe("dossier é")
    expect(meta.info.files.map((f) => f.path.join("/"))).toEqual(["à.txt", "sub/b.bin", "sub/deeper/c.bin"])
  })

  describe("validation", () => {
    const single = singleFileInfo("file.bin", payload, 256)

    it("rejects bad bencode and a non-dictionary as BencodeError", () => {
      expect(parseErr(new Uint8Array([0x64]))._tag).toBe("BencodeError")
      expect(parseErr(Bencode.encode([int(1)]))).toMatchObject({ _tag: "BencodeError", offset: 0 })
    })

    it("requires an info dictionary", () => {
      expect(parseErr(Bencode.encode(Bencode.dict({ announce: text("x") })))).toMatchObject({ reason: "MissingField", field: "info" })
      expectRule(text("nope"), "WrongType", "info")
    })

    it("checks the pieces field", () => {
      expectRule(withKeys(single, { pieces: undefined }), "MissingField", "info.pieces")
      expectRule(withKeys(single, { pieces: new Uint8Array(90) }), "PieceHashes", "info.pieces")
      const e = expectRule(withKeys(single, { pieces: new Uint8Array(60) }), "PieceCount", "info.pieces")
      expect(e.detail).toBe("has 3 hashes but 1000 bytes in pieces of 256 make 4")
      expectRule(withKeys(single, { pieces: new Uint8Array(100) }), "PieceCount", "info.pieces")
    })

    it("checks lengths: positive piece length, non-negative and safe file lengths", () => {
      expectRule(withKeys(single, { "piece length": int(0) }), "OutOfRange", "info.piece length")
      expectRule(withKeys(single, { "piece length": int(-5) }), "OutOfRange", "info.piece length")
      expectRule(withKeys(single, { "piece length": int(2 ** 30) }), "OutOfRange", "info.piece length")
      expectRule(withKeys(single, { "piece length": text("256") }), "WrongType", "info.piece length")
      expectRule(withKeys(single, { "piece length": undefined }), "MissingField", "info.piece length")
      expectRule(withKeys(single, { length: int(-1) }), "OutOfRange", "info.length")
      expectRule(withKeys(single, { length: int(2n ** 53n) }), "OutOfRange", "info.length")
      expectRule(multiWith([fileEntry([text("a")], int(-1))]), "OutOfRange", "info.files[0].length")
      expectRule(multiWith([fileEntry([text("a")], text("1"))]), "WrongType", "info.files[0].length")
    })

    it("needs a name, and a length or a files list; a files list wins over a length beside it", () => {
      expectRule(withKeys(single, { name: undefined }), "MissingField", "info.name")
      expectRule(withKeys(single, { name: int(1) }), "WrongType", "info.name")
      expectRule(withKeys(single, { name: text("") }), "MissingField", "info.name")
      expectRule(withKeys(single, { length: undefined }), "MissingField", "info")
      const both = parseOk(torrentBytes(withKeys(multi, { length: int(5) })))
      expect(both.info.isMultiFile).toBe(true)
      expect(both.info.totalLength).toBe(1000)
    })

    it("needs a well-formed files list", () => {
      expectRule(withKeys(multi, { files: text("x") }), "WrongType", "info.files")
      expectRule(multiWith([]), "MissingField", "info.files")
      expectRule(multiWith([int(1)]), "WrongType", "info.files[0]")
      expectRule(multiWith([Bencode.dict({ length: int(1) })]), "MissingField", "info.files[0].path")
      expectRule(multiWith([fileEntry([])]), "MissingField", "info.files[0].path")
      expectRule(multiWith([Bencode.dict({ path: [text("a")] })]), "MissingField", "info.files[0].length")
      expectRule(multiWith([fileEntry([text("a")]), Bencode.dict({ length: int(1), path: text("b") })]), "WrongType", "info.files[1].path")
      expectRule(multiWith([fileEntry([text("a"), int(3)])]), "WrongType", "info.files[0].path[1]")
    })

    it("refuses a torrent that holds no data (total length 0), single or multi-file", () => {
      const e = expectRule(singleFileInfo("empty", new Uint8Array(0), 16384), "OutOfRange", "info")
      expect(e.message).toBe("invalid torrent: info: holds no data (its total length is 0)")
      expectRule(multiWith([fileEntry([text("a")], int(0)), fileEntry([text("b")], int(0))], 0), "OutOfRange", "info")
    })

    it("refuses a file longer than libtorrent's bound, and a total past 2^53 - 1", () => {
      expectRule(multiWith([fileEntry([text("a")], int(Metainfo.maxFileLength + 1))]), "OutOfRange", "info.files[0].length")
      const many = Array.from({ length: 600 }, (_, i) => fileEntry([text(`f${i}`)], int(Metainfo.maxFileLength)))
      expectRule(multiWith(many), "OutOfRange", "info.files")
    })
  })

  describe("sanitising paths", () => {
    const single = singleFileInfo("file.bin", payload, 256)
    const pathsOf = (entries: ReadonlyArray<Bencode.Bencode>, total?: number) =>
      parseOk(torrentBytes(multiWith(entries, total))).info.files.map((f) => f.path.join("/"))
    const bytes = (...xs: ReadonlyArray<number>) => new Uint8Array(xs)

    // Each expected result is what libtorrent 2.0.8's torrent_info gives on Linux (checked by test/interop/metainfoCompat.test.ts).
    it.each([
      { raw: [text(".."), text("a")], path: "a" },
      { raw: [text("."), text("b")], path: "b" },
      { raw: [text("..")], path: "_" },
      { raw: [text(""), text("x")], path: "_/x" },
      { raw: [text("x/y")], path: "xy" },
      { raw: [text("/etc"), text("passwd")], path: "etc/passwd" },
      { raw: [text("a\\b")], path: "ab" },
      { raw: [text("z\0q")], path: "zq" },
      { raw: [text("a\u0001b")], path: "a_b" },
      { raw: [bytes(0xff, 0xfe, 0x2e, 0x74)], path: "__.t" },
      { raw: [text("x\u202ey")], path: "xy" },
      { raw: [text("...")], path: "..." },
      { raw: [text("C:"), text("w")], path: "w" },
      { raw: [text("c:\\windows"), text("x")], path: "windows/x" }
    ])("$raw becomes $path", ({ path: expected, raw }) => {
      const [file] = parseOk(torrentBytes(multiWith([fileEntry(raw)]))).info.files
      expect(file!.path.join("/")).toBe(expected)
      expect(file!.originalPath ?? file!.path).toEqual(raw.map((c) => Bencode.toText(c as Uint8Array)))
    })

    it("keeps an untouched path as is, with no originalPath", () => {
      expect(parseOk(torrentBytes(multi)).info.files[1]).toEqual({ path: ["sub", "b.bin"], length: 0, offset: 300 })
    })

    it("cuts a long component to 240 bytes, keeping a short extension", () => {
      const [long, withExtension] = pathsOf([fileEntry([text("a".repeat(300))]), fileEntry([text(`${"b".repeat(300)}.txt`)])])
      expect(long).toBe("a".repeat(240))
      expect(withExtension).toBe(`${"b".repeat(240)}.txt`)
    })

    it("sanitises the name: a folder name of which nothing remains becomes the info hash", () => {
      expect(parseOk(torrentBytes(withKeys(multi, { name: text("a/b") }))).info).toMatchObject({ name: "ab", originalName: "a/b" })
      const dotted = parseOk(torrentBytes(withKeys(multi, { name: text("..") }))).info
      expect(dotted.name).toBe(toHex(dotted.infoHash))
      expect(parseOk(torrentBytes(withKeys(single, { name: text("../../x") }))).info.files[0]!.path).toEqual(["....x"])
      expectRule(withKeys(single, { name: text("..") }), "UnsafePath", "info.name")
    })

    it("sanitises path.utf-8 when that is what it uses", () => {
      const entry = Bencode.dict({ length: int(1), path: [text("fine")], "path.utf-8": [text(".."), text("x")] })
      expect(pathsOf([entry])).toEqual(["x"])
    })

    it("renames a path an earlier file or any folder uses, ignoring ASCII case, with a counter before the extension", () => {
      expect(pathsOf([fileEntry([text("bar.txt")]), fileEntry([text("bar.txt")]), fileEntry([text("bar.txt")])]))
        .toEqual(["bar.txt", "bar.1.txt", "bar.2.txt"])
      expect(pathsOf([fileEntry([text("a")]), fileEntry([text("A")])])).toEqual(["a", "A.1"])
      expect(pathsOf([fileEntry([text("a")]), fileEntry([text("a"), text("b")])])).toEqual(["a.1", "a/b"])
      expect(pathsOf([fileEntry([text("a"), text("b")]), fileEntry([text("a")])])).toEqual(["a/b", "a.1"])
      expect(pathsOf([fileEntry([text(".."), text("a")]), fileEntry([text("a")])])).toEqual(["a", "a.1"])
    })

    it.prop(
      "a sanitised path never leaves the folder: no '', '.', '..', separator, NUL or drive letter, and no two files collide",
      [fc.array(
        fc.array(fc.oneof(
          fc.constantFrom("..", ".", "", "/", "\\", "C:", "c:..", "a", "A", "b.txt", "..\\x", "%2e%2e", "\0", "x/../.."),
          fc.string({ maxLength: 4 }),
          fc.uint8Array({ maxLength: 6 })
        ), { minLength: 1, maxLength: 4 }),
        { minLength: 1, maxLength: 5 }
      )],
      ([paths]) => {
        const entries = paths.map((p) => fileEntry(p.map((c) => (typeof c === "string" ? text(c) : c))))
        const { files } = parseOk(torrentBytes(multiWith(entries))).info
        const seen = new Set<string>()
        for (const file of files) {
          for (const component of file.path) {
            expect(component).not.toMatch(/^(\.|\.\.|)$|[/\\\0]|^[A-Za-z]:/)
          }
          for (const p of [path.posix, path.win32]) {
            const root = p.resolve(p.sep, "out", "folder")
            expect(p.resolve(root, ...file.path).startsWith(root + p.sep)).toBe(true)
          }
          const key = file.path.join("/").toLowerCase()
          expect(seen.has(key)).toBe(false)
          seen.add(key)
        }
        for (const file of files) {
          for (let j = 1; j < file.path.length; j++) expect(seen.has(file.path.slice(0, j).join("/").toLowerCase())).toBe(false)
        }
      },
      { fastCheck: { numRuns: 1000 } }
    )
  })

  describe("BEP 47 attributes, padding and symlinks", () => {
    const filesOf = (entries: ReadonlyArray<Bencode.Bencode>, total: number) => parseOk(torrentBytes(multiWith(entries, total))).info.files
    const entry = (fields: Record<string, Bencode.Bencode | undefined>) => Bencode.dict(fields)

    it("reads x and h, and p as padding; a padding entry without path goes to .pad/<length>; two of one length may share it", () => {
      const files = filesOf([
        entry({ attr: text("xh"), length: int(1), path: [text("run")] }),
        entry({ attr: text("p"), length: int(5) }),
        entry({ attr: text("p"), length: int(5) }),
        entry({ length: int(1), path: [text("_____padding_file_0")] }),
        entry({ length: int(1), path: [text(".pad"), text("1")] })
      ], 13)
      expect(files).toEqual([
        { path: ["run"], length: 1, offset: 0, executable: true, hidden: true },
        { path: [".pad", "5"], length: 5, offset: 1, padding: true, originalPath: [] },
        { path: [".pad", "5"], length: 5, offset: 6, padding: true, originalPath: [] },
        { path: ["_____padding_file_0"], length: 1, offset: 11, padding: true },
        { path: [".pad", "1"], length: 1, offset: 12, padding: true }
      ])
    })

    it("refuses a padding entry without a length", () => {
      expectRule(multiWith([entry({ attr: text("p") })]), "MissingField", "info.files[0].length")
    })

    it("resolves symlink targets inside the torrent; one that names nothing points at itself; an empty one is no link; no payload bytes", () => {
      const link = (p: ReadonlyArray<string>, target?: ReadonlyArray<string>) =>
        entry({ attr: text("l"), length: int(7), path: p.map(text), "symlink path": target?.map(text) })
      const files = filesOf([
        fileEntry([text("d"), text("a")]),
        link(["l1"], ["d"]),
        link(["d", "l2"], ["a"]),
        link(["l3"], ["l1", "a"]),
        link(["l4"], ["/etc/passwd"]),
        link(["l5"], ["..", "..", "etc"]),
        link(["l6"]),
        link(["l7"], [".."])
      ], 1)
      expect(files.map((f) => [f.path.join("/"), f.length, f.symlink?.join("/")])).toEqual([
        ["d/a", 1, undefined],
        ["l1", 0, "d"],
        ["d/l2", 0, "d/a"],
        ["l3", 0, "l1/a"],
        ["l4", 0, "l4"],
        ["l5", 0, "l5"],
        ["l6", 0, undefined],
        ["l7", 0, undefined]
      ])
    })
  })

  it("accepts bytes after the top-level dictionary, hashing the info dict as written", () => {
    const bytes = torrentBytes(multi)
    const meta = parseOk(new Uint8Array([...bytes, ...Bencode.text("trailing garbage\n")]))
    expect(meta.info.infoHash).toEqual(parseOk(bytes).info.infoHash)
  })
})


describe("Metainfo.parseInfo", () => {
  it("parses bare info bytes and hashes them", () => {
    const raw = Bencode.encode(multi)
    const info = Either.getOrThrow(Metainfo.parseInfo(raw))
    expect(info.infoHash).toEqual(sha1(raw))
    expect(info.raw).toEqual(raw)
    expect(info.files.length).toBe(3)
  })

  it("rejects a non-dictionary and an invalid info", () => {
    expect(Either.flip(Metainfo.parseInfo(Bencode.encode([])))).toEqual(
      Either.right(expect.objectContaining({ reason: "NotADictionary", field: "info" }))
    )
    expect(Either.flip(Metainfo.parseInfo(Bencode.encode(withKeys(singleFileInfo("x", payload, 256), { name: text("..") }))))).toEqual(
      Either.right(expect.objectContaining({ reason: "UnsafePath" }))
    )
    expect(Either.flip(Metainfo.parseInfo(new Uint8Array([0x64, 0x65, 0x65])))).toEqual(
      Either.right(expect.objectContaining({ _tag: "BencodeError", offset: 2 }))
    )
  })
})

describe("Metainfo.pieceSize", () => {
  const info = parseOk(torrentBytes(singleFileInfo("x", payload, 256))).info

  it("gives full pieces and a short last piece", () => {
    expect([0, 1, 2, 3].map((i) => Metainfo.pieceSize(info, i))).toEqual([256, 256, 256, 232])
  })

  it("is 0 outside the torrent", () => {
    expect([-1, 4, 1.5, Number.NaN].map((i) => Metainfo.pieceSize(info, i))).toEqual([0, 0, 0, 0])
  })

  it.prop("piece sizes sum to the total length", [fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 700 })], ([total, pieceLength]) => {
    const i = parseOk(torrentBytes(singleFileInfo("x", payloadBytes(total), pieceLength))).info
    let sum = 0
    for (let k = 0; k < i.pieceCount; k++) {
      const size = Metainfo.pieceSize(i, k)
      expect(size).toBeGreaterThan(0)
      expect(size).toBeLessThanOrEqual(pieceLength)
      sum += size
    }
    expect(sum).toBe(total)
  }, { fastCheck: { numRuns: 100 } })
})

describe("Metainfo.trackerTiers", () => {
  const info = singleFileInfo("x", payload, 256)
  const tiers = (top: Record<string, Bencode.Bencode | undefined>) => Metainfo.trackerTiers(parseOk(torrentBytes(info, top)))
  const list = (t: ReadonlyArray<ReadonlyArray<string>>) => t.map((tier) => tier.map(text))

  it("uses the announce-list when present, keeping only http(s) and udp trackers", () => {
    expect(
      tiers({
        announce: text("http://a/announce"),
        "announce-list": list([["udp://b:80", "wss://c"], ["dht://x"], ["HTTPS://d/announce", "http://e/announce"]])
      })
    ).toEqual([["udp://b:80"], ["HTTPS://d/announce", "http://e/announce"]])
  })

  it("falls back to announce, and to nothing", () => {
    expect(tiers({ announce: text("http://a/announce") })).toEqual([["http://a/announce"]])
    expect(tiers({ announce: text("http://a/announce"), "announce-list": list([["wss://c"]]) })).toEqual([["http://a/announce"]])
    expect(tiers({ announce: text("magnet:?x") })).toEqual([])
    expect(tiers({})).toEqual([])
  })

  it("skips malformed announce-list entries instead of failing the torrent", () => {
    const meta = parseOk(torrentBytes(info, { "announce-list": [[text("udp://a:1"), int(3)], text("udp://b:1"), []] }))
    expect(meta.announceList).toEqual([["udp://a:1"]])
    expect(meta.announce).toBeUndefined()
  })
})

describe("Metainfo descriptive fields", () => {
  const info = singleFileInfo("x", payload, 256)
  const parse = (top: Record<string, Bencode.Bencode | undefined>) => parseOk(torrentBytes(info, top))

  it("reads comment, created by, creation date and url-list", () => {
    const meta = parse({
      comment: text("a comment"),
      "created by": text("mktorrent 1.1"),
      "creation date": int(1700000000),
      "url-list": [text("http://a/x"), text("http://b/x")]
    })
    expect(meta).toMatchObject({ comment: "a comment", createdBy: "mktorrent 1.1", creationDate: 1700000000, webSeeds: ["http://a/x", "http://b/x"] })
  })

  it("prefers comment.utf-8 and accepts a url-list of one string", () => {
    const meta = parse({ comment: text("legacy"), "comment.utf-8": text("é"), "url-list": text("http://a/x") })
    expect(meta).toMatchObject({ comment: "é", webSeeds: ["http://a/x"] })
  })

  it("reads absent or mistyped fields as nothing, without failing the torrent", () => {
    expect(parse({})).toMatchObject({ comment: undefined, createdBy: undefined, creationDate: undefined, webSeeds: [] })
    expect(parse({ comment: int(3), "created by": [], "creation date": int(-1), "url-list": int(1) }))
      .toMatchObject({ comment: undefined, createdBy: undefined, creationDate: undefined, webSeeds: [] })
  })

  it.prop("round-trips any comment and non-negative creation date", [fc.string(), fc.integer({ min: 0, max: 2 ** 40 })], ([comment, date]) => {
    const meta = parse({ comment: text(comment), "creation date": int(date) })
    expect(meta.comment).toBe(comment)
    expect(meta.creationDate).toBe(date)
  })
})
