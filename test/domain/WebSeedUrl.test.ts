import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { webSeedFileUrl, webSeedRequests } from "../../src/domain/WebSeedUrl.js"
import { geometryInfo, handInfo } from "../support/handInfo.js"

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)

describe("webSeedFileUrl", () => {
  const single = { name: "big buck bunny.mp4", isMultiFile: false }
  const multi = { name: "Sintel", isMultiFile: true }

  it("a single-file URL is the file itself; one ending in / gets the name appended, percent-encoded", () => {
    expect(webSeedFileUrl("http://h/pub/movie.mp4", single, { path: ["big buck bunny.mp4"] })).toBe("http://h/pub/movie.mp4")
    expect(webSeedFileUrl("http://h/pub/", single, { path: ["big buck bunny.mp4"] })).toBe("http://h/pub/big%20buck%20bunny.mp4")
  })

  it("a multi-file URL gets <name>/<path...> appended, after a / when it lacks one", () => {
    expect(webSeedFileUrl("http://h/pub/", multi, { path: ["sub", "a.txt"] })).toBe("http://h/pub/Sintel/sub/a.txt")
    expect(webSeedFileUrl("http://h/pub", multi, { path: ["a.txt"] })).toBe("http://h/pub/Sintel/a.txt")
  })

  it("each component is encoded on its own: / ? # % and non-ASCII stay inside it", () => {
    expect(webSeedFileUrl("http://h/", { name: "a/b?", isMultiFile: true }, { path: ["c#d", "50%", "é"] }))
      .toBe("http://h/a%2Fb%3F/c%23d/50%25/%C3%A9")
  })

  it.prop("a URL ending in / and a component decode back to the component", [fc.string({ minLength: 1 })], ([name]) => {
    const url = webSeedFileUrl("http://h/", { name, isMultiFile: false }, { path: [name] })
    expect(decodeURIComponent(url.slice("http://h/".length))).toBe(name)
  })
})

describe("webSeedRequests", () => {
  it("a range inside one file of a single-file torrent is one request at the same offset", () => {
    const { info } = handInfo(100, [{ path: ["f.bin"], data: bytes(1000, 1) }])
    expect(webSeedRequests("http://h/f.bin", info, 250, 300)).toEqual([{ url: "http://h/f.bin", fileIndex: 0, fileOffset: 250, length: 300 }])
  })

  it("a piece that spans three files (one of them empty) is one request per non-empty file", () => {
    const { info } = handInfo(100, [
      { path: ["a"], data: bytes(150, 1) },
      { path: ["empty"], data: bytes(0, 2) },
      { path: ["dir", "b"], data: bytes(30, 3) },
      { path: ["c"], data: bytes(100, 4) }
    ])
    expect(webSeedRequests("http://h/", info, 100, 100)).toEqual([
      { url: "http://h/hand/a", fileIndex: 0, fileOffset: 100, length: 50 },
      { url: "http://h/hand/dir/b", fileIndex: 2, fileOffset: 0, length: 30 },
      { url: "http://h/hand/c", fileIndex: 3, fileOffset: 0, length: 20 }
    ])
  })

  const layoutArb = fc
    .record({
      lengths: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 })), { minLength: 1, maxLength: 10 }),
      pieceLength: fc.integer({ min: 1, max: 150 }),
      a: fc.nat(),
      b: fc.nat()
    })
    .filter(({ lengths }) => lengths.some((l) => l > 0))

  it.prop("the requests cover exactly the range, in payload order, one per file, inside each file", [layoutArb], ([l]) => {
    const info = geometryInfo(l.pieceLength, l.lengths)
    const offset = l.a % info.totalLength
    const length = 1 + (l.b % (info.totalLength - offset))
    const requests = webSeedRequests("http://h/", info, offset, length)
    let at = offset
    let lastFile = -1
    for (const r of requests) {
      const file = info.files[r.fileIndex]!
      expect(r.fileIndex).toBeGreaterThan(lastFile)
      expect(r.length).toBeGreaterThan(0)
      expect(file.offset + r.fileOffset).toBe(at)
      expect(r.fileOffset + r.length).toBeLessThanOrEqual(file.length)
      expect(r.url).toBe(webSeedFileUrl("http://h/", info, file))
      at += r.length
      lastFile = r.fileIndex
    }
    expect(at).toBe(offset + length)
  })
})
