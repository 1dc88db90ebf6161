/**
 * BEP 52 metainfo against libtorrent: test/fixtures/v2 holds torrents made by python3-libtorrent's
 * create_torrent (make.py) and libtorrent's own reading of them (expected.json); the payloads are
 * rebuilt here, and their merkle trees computed by test/domain/Merkle.test.ts's checked code.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { concatBytes, toHex } from "../../src/domain/Bytes.js"
import * as Merkle from "../../src/domain/Merkle.js"
import * as Metainfo from "../../src/domain/Metainfo.js"
import { matchesV2, swarmIds } from "../../src/domain/MetainfoV2.js"
import { Hasher } from "../../src/services/Hasher.js"
import { repoRoot } from "../support/cli.js"
import { payloadBytes, pieceHashes, torrentBytes, withKeys } from "../support/torrent.js"

const fixtures = path.join(repoRoot, "test/fixtures/v2")

interface Expected {
  readonly v1: string | null
  readonly v2: string
  readonly pieces: number
  readonly totalLength: number
  readonly files: ReadonlyArray<{ readonly path: string; readonly length: number; readonly offset: number; readonly padding: boolean }>
  readonly payload: ReadonlyArray<{ readonly path: string; readonly length: number; readonly seed: number }>
}
const expected: Record<string, Expected> = JSON.parse(readFileSync(path.join(fixtures, "expected.json"), "utf8"))

/** make.py's payload formula. */
const fixturePayload = (length: number, seed: number) => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed * 13 + (i >> 14)) % 256
  return out
}

const parseOk = (bytes: Uint8Array) => Either.getOrThrow(Metainfo.parseTorrent(bytes))
const parseErr = (bytes: Uint8Array) => Either.getOrThrowWith(Either.flip(Metainfo.parseTorrent(bytes)), () => new Error("parsed"))

/** A padding entry: flagged (v2 layout, BEP 47 parsing) or, in a hybrid's v1 list, under `.pad/`. */
const isPad = (info: Metainfo.Info, file: Metainfo.TorrentFile) => file.padding === true || (info.isMultiFile && file.path[0] === ".pad")

/** The concatenated payload of a parsed torrent, padding as zeros. */
const payloadOf = (info: Metainfo.Info, files: Expected["payload"]) => {
  const bytes = new Uint8Array(info.totalLength)
  for (const file of info.files) {
    if (isPad(info, file)) continue
    const shown = info.isMultiFile ? [info.name, ...file.path].join("/") : file.path.join("/")
    const spec = files.find((f) => f.path === shown)!
    bytes.set(fixturePayload(spec.length, spec.seed), file.offset)
  }
  return bytes
}

const pieceOf = (info: Metainfo.Info, payload: Uint8Array, index: number) =>
  payload.slice(index * info.pieceLength, index * info.pieceLength + Metainfo.pieceSize(info, index))

describe("BEP 52 torrents made by libtorrent", () => {
  for (const [name, lt] of Object.entries(expected)) {
    const bytes = new Uint8Array(readFileSync(path.join(fixtures, `${name}.torrent`)))

    it(`${name}: the same info hashes, pieces and file layout as libtorrent`, () => {
      const { info } = parseOk(bytes)
      expect(toHex(info.v2!.infoHash)).toBe(lt.v2)
      expect(toHex(info.infoHash)).toBe(lt.v1 ?? lt.v2.slice(0, 40))
      expect(info.v2!.hybrid).toBe(lt.v1 !== null)
      expect(info.pieceCount).toBe(lt.pieces)
      expect(info.totalLength).toBe(lt.totalLength)
      const shown = info.files.map((f) => ({
        path: info.isMultiFile ? [info.name, ...f.path].join("/") : f.padding === true ? `${info.name}/${f.path.join("/")}` : f.path.join("/"),
        length: f.length,
        offset: f.offset,
        padding: isPad(info, f)
      }))
      expect(shown).toEqual(lt.files)
    })

    it(`${name}: pieces roots and piece layers are the payload's merkle trees; every piece verifies, a changed byte does not`, () => {
      const meta = Bencode.decode(bytes).pipe(Either.getOrThrow) as Bencode.BencodeDict
      const layers = Bencode.get(meta, "piece layers") as Bencode.BencodeDict | undefined
      const { info } = parseOk(bytes)
      const payload = payloadOf(info, lt.payload)
      info.files.forEach((file, i) => {
        const root = info.v2!.piecesRoots[i]
        if (isPad(info, file) || file.length === 0) return expect(root).toBeUndefined()
        const hashes = Merkle.fileHashes(payload.subarray(file.offset, file.offset + file.length), info.pieceLength)
        expect(root).toEqual(hashes.piecesRoot)
        const layer = layers?.get(Bencode.bytesToKey(hashes.piecesRoot))
        if (hashes.pieceLayer.length > 0) expect(layer).toEqual(concatBytes(hashes.pieceLayer))
        else expect(layer).toBeUndefined()
      })
      for (let p = 0; p < info.pieceCount; p++) {
        const piece = pieceOf(info, payload, p)
        expect(matchesV2(info, p, piece)).toBe(true)
        piece[0] ^= 1
        expect(matchesV2(info, p, piece)).toBe(false)
      }
    })
  }

  it.effect("a hybrid piece bad under either hash is rejected", () =>
    Effect.gen(function* () {
      const hasher = yield* Hasher
      const { info } = parseOk(new Uint8Array(readFileSync(path.join(fixtures, "hybrid-multi.torrent"))))
      const piece = pieceOf(info, payloadOf(info, expected["hybrid-multi"]!.payload), 1)
      expect(yield* hasher.verifyPiece(info, 1, piece)).toBe(true)
      const wrongV2 = { ...info, v2: { ...info.v2!, pieces: info.v2!.pieces.map((p) => ({ ...p, hash: new Uint8Array(32) })) } }
      expect(yield* hasher.verifyPiece(wrongV2, 1, piece)).toBe(false)
      const wrongV1 = { ...info, pieceHashes: info.pieceHashes.map(() => new Uint8Array(20)) }
      expect(yield* hasher.verifyPiece(wrongV1, 1, piece)).toBe(false)
    }).pipe(Effect.provide(Hasher.Sync)))

  it("non-zero bytes where a v2 piece is padding fail it", () => {
    const { info } = parseOk(new Uint8Array(readFileSync(path.join(fixtures, "v2-single.torrent"))))
    const piece = pieceOf(info, payloadOf(info, expected["v2-single"]!.payload), 1)
    expect(matchesV2(info, 1, piece)).toBe(true)
    piece[piece.length - 1] = 1
    expect(matchesV2(info, 1, piece)).toBe(false)
  })
})

// ---------------------------------------------------------------------------------------------
// Hand-built v2 torrents, broken one rule at a time

const pieceLength = 32768
const fileA = payloadBytes(70_000, 3)
const fileB = payloadBytes(1000, 4)
const hashesA = Merkle.fileHashes(fileA, pieceLength)
const hashesB = Merkle.fileHashes(fileB, pieceLength)
const leaf = (length: number, root: Uint8Array | undefined) =>
  Bencode.dict({ "": Bencode.dict({ length: Bencode.int(length), "pieces root": root }) })
const goodTree = Bencode.dict({ a: leaf(fileA.length, hashesA.piecesRoot), dir: Bencode.dict({ b: leaf(fileB.length, hashesB.piecesRoot) }) })
const v2Info = (tree: Bencode.Bencode = goodTree, changes: Record<string, Bencode.Bencode | undefined> = {}) =>
  withKeys(Bencode.dict({ "file tree": tree, "meta version": Bencode.int(2), name: Bencode.text("t"), "piece length": Bencode.int(pieceLength) }), changes)
const goodLayers = Bencode.dict({})
const layersWith = (root: Uint8Array, layer: Uint8Array): Bencode.BencodeDict => new Map([[Bencode.bytesToKey(root), layer]])
const v2Torrent = (info: Bencode.Bencode, layers: Bencode.Bencode | undefined = layersWith(hashesA.piecesRoot, concatBytes(hashesA.pieceLayer))) =>
  torrentBytes(info, { "piece layers": layers })

const expectProblem = (bytes: Uint8Array, reason: Metainfo.MetainfoRule, field: string) => {
  const e = parseErr(bytes)
  expect(e._tag).toBe("MetainfoError")
  expect(e).toMatchObject({ reason, field })
  expect(e.message).toContain(field)
}

describe("v2 metainfo rules", () => {
  it("a well-formed v2 multi-file torrent: padding after each file, piece hashes from the layer and the roots", () => {
    const { info } = parseOk(v2Torrent(v2Info()))
    expect(info.files.map((f) => [f.path.join("/"), f.length, f.offset, f.padding === true])).toEqual([
      ["a", 70_000, 0, false], [".pad/28304", 28304, 70_000, true], ["dir/b", 1000, 98304, false], [".pad/31768", 31768, 99304, true]
    ])
    expect(info.v2!.pieces.map((p) => p.hash)).toEqual([...hashesA.pieceLayer, hashesB.piecesRoot])
    expect(info.pieceHashes).toEqual([])
    expect(info.isMultiFile).toBe(true)
  })

  it("path traversal and separator-bearing names in the tree are refused with a typed error; other odd names are sanitised as in v1", () => {
    const withName = (name: string) => v2Torrent(v2Info(Bencode.dict({ a: leaf(fileA.length, hashesA.piecesRoot), [name]: leaf(5, hashesB.piecesRoot) })))
    for (const name of ["..", ".", "x/y", "x\\y", "../../etc"]) {
      expectProblem(withName(name), "UnsafePath", `info.file tree[${JSON.stringify(name)}]`)
    }
    const deep = v2Torrent(v2Info(Bencode.dict({ a: leaf(fileA.length, hashesA.piecesRoot), d: Bencode.dict({ "..": leaf(5, hashesB.piecesRoot) }) })))
    expectProblem(deep, "UnsafePath", `info.file tree["d"][".."]`)
    const pathsOf = (name: string) => Either.getOrThrow(Metainfo.parseTorrent(withName(name))).info.files.filter((f) => f.padding !== true).map((f) => f.path)
    expect(pathsOf("C:")).toEqual([["_"], ["a"]])
  })

  it("a tree that is a file and a folder at once, or a file with no name at all, is refused", () => {
    const emptyFolder = Bencode.dict({ a: leaf(fileA.length, hashesA.piecesRoot), "": Bencode.dict({ b: leaf(5, hashesB.piecesRoot) }) })
    expectProblem(v2Torrent(v2Info(emptyFolder)), "Conflict", "info.file tree")
    expectProblem(v2Torrent(v2Info(Bencode.dict({ "": Bencode.dict({ length: Bencode.int(5) }) }))), "UnsafePath", "info.file tree")
  })

  it("a pieces root of the wrong length, or missing, is refused", () => {
    const tree = (root: Uint8Array | undefined) => Bencode.dict({ a: leaf(fileA.length, hashesA.piecesRoot), b: leaf(5, root) })
    expectProblem(v2Torrent(v2Info(tree(new Uint8Array(31)))), "PieceHashes", `info.file tree["b"][""].pieces root`)
    expectProblem(v2Torrent(v2Info(tree(new Uint8Array(33)))), "PieceHashes", `info.file tree["b"][""].pieces root`)
    expectProblem(v2Torrent(v2Info(tree(undefined))), "MissingField", `info.file tree["b"][""].pieces root`)
  })

  it("a piece layer of the wrong size, or not hashing to its root, is refused; a missing one too for v2-only", () => {
    const layer = concatBytes(hashesA.pieceLayer)
    const field = `piece layers[${toHex(hashesA.piecesRoot)}]`
    expectProblem(v2Torrent(v2Info(), layersWith(hashesA.piecesRoot, layer.subarray(0, 64))), "PieceLayer", field)
    const wrong = new Uint8Array(layer)
    wrong[0] ^= 1
    expectProblem(v2Torrent(v2Info(), layersWith(hashesA.piecesRoot, wrong)), "PieceLayer", field)
    expectProblem(v2Torrent(v2Info(), goodLayers), "MissingField", "piece layers")
    expectProblem(v2Torrent(v2Info(), Bencode.text("x")), "WrongType", "piece layers")
  })

  it("a piece length that is no power of two of at least 16 KiB, an unknown meta version, an empty tree are refused", () => {
    expectProblem(v2Torrent(v2Info(goodTree, { "piece length": Bencode.int(49152) })), "OutOfRange", "info.piece length")
    expectProblem(v2Torrent(v2Info(goodTree, { "piece length": Bencode.int(8192) })), "OutOfRange", "info.piece length")
    expectProblem(v2Torrent(v2Info(goodTree, { "meta version": Bencode.int(3) })), "OutOfRange", "info.meta version")
    expectProblem(v2Torrent(v2Info(goodTree, { "file tree": undefined })), "MissingField", "info.file tree")
    expectProblem(v2Torrent(v2Info(Bencode.dict({}))), "MissingField", "info.file tree")
    expectProblem(v2Torrent(v2Info(Bencode.dict({ a: leaf(0, undefined) }))), "OutOfRange", "info.file tree")
  })

  it("a hybrid whose v1 files disagree with its tree is refused", () => {
    const pad = (length: number) => Bencode.dict({ attr: Bencode.text("p"), length: Bencode.int(length), path: [Bencode.text(".pad"), Bencode.text(String(length))] })
    const file = (p: ReadonlyArray<string>, length: number) => Bencode.dict({ length: Bencode.int(length), path: p.map(Bencode.text) })
    const payload = concatBytes([fileA, new Uint8Array(28304), fileB])
    const hybrid = (files: ReadonlyArray<Bencode.Bencode>, data: Uint8Array) =>
      v2Torrent(v2Info(goodTree, { files: [...files], pieces: pieceHashes(data, pieceLength) }))
    const good = parseOk(hybrid([file(["a"], 70_000), pad(28304), file(["dir", "b"], 1000)], payload)).info
    expect(good.v2!.hybrid).toBe(true)
    expect(good.files.length).toBe(3)
    expectProblem(hybrid([file(["a"], 70_000), pad(28304), file(["dir", "c"], 1000)], payload), "Conflict", "info.files[2]")
    expectProblem(hybrid([file(["a"], 70_000), file(["dir", "b"], 1000)], concatBytes([fileA, fileB])), "Conflict", "info.files[1]")
    expectProblem(hybrid([file(["a"], 70_000), pad(28304)], payload.subarray(0, 98304)), "Conflict", "info.file tree")
  })

  it("a bare v2 info dict (a magnet's metadata) without piece layers is refused when a file spans pieces", () => {
    const bytes = Bencode.encode(v2Info())
    expect(Either.getLeft(Metainfo.parseInfo(bytes)).pipe((e) => e._tag === "Some" && e.value._tag === "MetainfoError" && e.value.field)).toBe("piece layers")
    const small = Bencode.encode(v2Info(Bencode.dict({ t: leaf(fileB.length, hashesB.piecesRoot) })))
    const info = Either.getOrThrow(Metainfo.parseInfo(small))
    expect(info.isMultiFile).toBe(false)
    expect(info.files[0]!.path).toEqual(["t"])
  })

  it("one file at the top of the tree is a single-file torrent whatever the torrent's name, as libtorrent reads it", () => {
    const info = Either.getOrThrow(Metainfo.parseInfo(Bencode.encode(v2Info(Bencode.dict({ b: leaf(fileB.length, hashesB.piecesRoot) })))))
    expect(info.isMultiFile).toBe(false)
    expect(info.files[0]!.path).toEqual(["b"])
  })
})

describe("swarmIds", () => {
  it("a hybrid answers to its v1 hash and its truncated v2 hash; a v2-only torrent to its truncated v2 hash", () => {
    const read = (name: string) => parseOk(new Uint8Array(readFileSync(path.join(fixtures, `${name}.torrent`)))).info
    const hybrid = read("hybrid-multi")
    expect(swarmIds(hybrid).map(toHex)).toEqual([expected["hybrid-multi"]!.v1, expected["hybrid-multi"]!.v2.slice(0, 40)])
    expect(swarmIds(read("v2-multi")).map(toHex)).toEqual([expected["v2-multi"]!.v2.slice(0, 40)])
  })
})
