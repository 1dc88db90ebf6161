/** BEP 47 `attr` as parsed here (padding, executable, hidden, symlink). */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { pieceHashes } from "../support/torrent.js"

const entry = (path: ReadonlyArray<string>, length: number, extra: Record<string, Bencode.Bencode> = {}) =>
  Bencode.dict({ length: Bencode.int(length), path: path.map(Bencode.text), ...extra })

const torrentOf = (files: ReadonlyArray<Bencode.Bencode>, total: number) =>
  Bencode.encode(Bencode.dict({
    info: Bencode.dict({
      files,
      name: Bencode.text("t"),
      "piece length": Bencode.int(16384),
      pieces: pieceHashes(new Uint8Array(total), 16384)
    })
  }))

describe("Metainfo: BEP 47 attributes", () => {
  it("reads p, x, h and l (with its symlink path); pad files may repeat a path", () => {
    const bytes = torrentOf([
      entry(["a"], 100, { attr: Bencode.text("xh") }),
      entry([".pad", "16284"], 16284, { attr: Bencode.text("p") }),
      entry(["b"], 100),
      entry([".pad", "16284"], 16284, { attr: Bencode.text("p") }),
      entry(["link"], 0, { attr: Bencode.text("l"), "symlink path": [Bencode.text("sub"), Bencode.text("b")] }),
      entry(["c"], 10, { attr: Bencode.text("?") })
    ], 100 + 16284 + 100 + 16284 + 10)
    const files = Either.getOrThrow(parseTorrent(bytes)).info.files
    expect(files.map(({ offset: _o, length: _l, ...rest }) => rest)).toEqual([
      { path: ["a"], executable: true, hidden: true },
      { path: [".pad", "16284"], padding: true },
      { path: ["b"] },
      { path: [".pad", "16284"], padding: true },
      { path: ["link"], symlink: ["sub", "b"] },
      { path: ["c"] }
    ])
  })

  it("a file under .pad/ is padding without the attribute; a repeated path of data is still a conflict", () => {
    const padded = Either.getOrThrow(parseTorrent(torrentOf([entry(["a"], 10), entry([".pad", "5"], 5)], 15))).info.files
    expect(padded[1]?.padding).toBe(true)
    const clash = parseTorrent(torrentOf([entry(["a"], 10), entry(["a"], 5)], 15))
    expect(Either.isLeft(clash) && clash.left._tag === "MetainfoError" && clash.left.reason).toBe("Conflict")
  })

  it("an l entry without its symlink path is refused", () => {
    const result = parseTorrent(torrentOf([entry(["a"], 10), entry(["link"], 0, { attr: Bencode.text("l") })], 10))
    expect(Either.isLeft(result) && result.left.message).toBe("invalid torrent: info.files[1].symlink path: is missing")
  })
})
