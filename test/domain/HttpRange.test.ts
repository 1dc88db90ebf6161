/** Range headers and what a file's answer says it is. */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { contentRange, parseRange, unsatisfiedRange } from "../../src/domain/HttpRange.js"
import { contentTypeOf, inlineDisposition } from "../../src/domain/MediaType.js"
import { parseStreamTarget } from "../../src/domain/StreamTarget.js"

describe("parseRange", () => {
  it("reads the three forms of a single byte range", () => {
    expect(parseRange("bytes=0-99", 1000)).toEqual({ _tag: "Partial", start: 0, end: 99 })
    expect(parseRange("bytes=500-", 1000)).toEqual({ _tag: "Partial", start: 500, end: 999 })
    expect(parseRange("bytes=-100", 1000)).toEqual({ _tag: "Partial", start: 900, end: 999 })
    expect(parseRange("Bytes = 5-9 ", 1000)).toEqual({ _tag: "Partial", start: 5, end: 9 })
    // Past the end: cut to the file; a suffix longer than the file is the whole file.
    expect(parseRange("bytes=900-5000", 1000)).toEqual({ _tag: "Partial", start: 900, end: 999 })
    expect(parseRange("bytes=-5000", 1000)).toEqual({ _tag: "Partial", start: 0, end: 999 })
  })

  it("a range starting past the end, or an empty suffix, is unsatisfiable", () => {
    expect(parseRange("bytes=1000-", 1000)).toEqual({ _tag: "Unsatisfiable" })
    expect(parseRange("bytes=2000-3000", 1000)).toEqual({ _tag: "Unsatisfiable" })
    expect(parseRange("bytes=-0", 1000)).toEqual({ _tag: "Unsatisfiable" })
    expect(parseRange("bytes=0-", 0)).toEqual({ _tag: "Unsatisfiable" })
    expect(unsatisfiedRange(1000)).toBe("bytes */1000")
    expect(contentRange(0, 99, 1000)).toBe("bytes 0-99/1000")
  })

  it("ignores what it does not take (the whole file is sent): no header, other units, malformed, several ranges", () => {
    for (const header of [undefined, "items=0-1", "bytes=", "bytes=-", "bytes=abc", "bytes=5-2", "bytes=1-2-3", "bytes=0x10-", "bytes=0-1,5-6", "bytes 0-1", "bytes=1.5-2"]) {
      expect(parseRange(header, 1000)).toEqual({ _tag: "Whole" })
    }
  })

  it.prop(
    "a Partial answer is always inside the file; a first-last range within it is answered exactly",
    [fc.nat(10_000), fc.nat(12_000), fc.nat(12_000), fc.constantFrom("a-b", "a-", "-b")],
    ([size, a, b, form]) => {
      const header = `bytes=${form.replace("a", String(a)).replace("b", String(b))}`
      const answer = parseRange(header, size)
      if (answer._tag === "Partial") {
        expect(answer.start).toBeGreaterThanOrEqual(0)
        expect(answer.start).toBeLessThanOrEqual(answer.end)
        expect(answer.end).toBeLessThan(size)
      }
      if (form === "a-b" && a <= b && b < size) expect(answer).toEqual({ _tag: "Partial", start: a, end: b })
      if (form !== "-b" && a >= size && (form === "a-" || a <= b)) expect(answer._tag).toBe("Unsatisfiable")
      if (form === "-b" && b > 0 && size > 0) expect(answer).toEqual({ _tag: "Partial", start: Math.max(0, size - b), end: size - 1 })
    }
  )
})

describe("media types and disposition", () => {
  it("names common media by extension, case-insensitively, else octet-stream", () => {
    expect(contentTypeOf("a.mp4")).toBe("video/mp4")
    expect(contentTypeOf("Show.S01E01.MKV")).toBe("video/x-matroska")
    expect(contentTypeOf("x.webm")).toBe("video/webm")
    expect(contentTypeOf("song.flac")).toBe("audio/flac")
    expect(contentTypeOf("notes.txt")).toBe("text/plain; charset=utf-8")
    expect(contentTypeOf("paper.pdf")).toBe("application/pdf")
    expect(contentTypeOf("README")).toBe("application/octet-stream")
    expect(contentTypeOf("archive.xyz")).toBe("application/octet-stream")
  })

  it("Content-Disposition is inline with an ASCII name and the UTF-8 one", () => {
    expect(inlineDisposition("movie.mp4")).toBe(`inline; filename="movie.mp4"; filename*=UTF-8''movie.mp4`)
    expect(inlineDisposition('été "1".mkv')).toBe(`inline; filename="_t_ _1_.mkv"; filename*=UTF-8''%C3%A9t%C3%A9%20%221%22.mkv`)
  })
})

describe("parseStreamTarget", () => {
  it("takes an info hash (either case) or a session id, and a 0-based file index", () => {
    const hash = "0123456789ABCDEF0123456789abcdef01234567"
    expect(parseStreamTarget(hash, "0")).toEqual({ torrent: { _tag: "InfoHash", hex: hash.toLowerCase() }, fileIndex: 0 })
    expect(parseStreamTarget("3", "12")).toEqual({ torrent: { _tag: "Id", id: 3 }, fileIndex: 12 })
  })

  it("refuses anything else, path traversal included", () => {
    const bad = [
      ["..", "0"], ["../../etc/passwd", "0"], ["..%2F..%2Fetc", "0"], ["abc", "0"], ["0123456789abcdef0123456789abcdef0123456", "0"],
      ["0", "0"], ["-1", "0"], ["01", "0"], ["1", "-1"], ["1", "1.0"], ["1", "01"], ["1", "1e3"], ["1", ""], ["1", "99999999999"],
      ["1", "../passwd"], [undefined, "0"], ["1", undefined]
    ] as const
    for (const [torrent, file] of bad) expect(parseStreamTarget(torrent, file)).toBeUndefined()
  })

  it.prop("any other text for the file is refused or read back as the same number", [fc.string(), fc.string()], ([torrent, file]) => {
    const target = parseStreamTarget(torrent, file)
    if (target !== undefined) {
      expect(String(target.fileIndex)).toBe(file)
      expect(target.torrent._tag === "Id" ? String(target.torrent.id) : target.torrent.hex).toBe(torrent.toLowerCase())
    }
  })
})
