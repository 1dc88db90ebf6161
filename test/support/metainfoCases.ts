/**
 * Torrents for the metainfo compatibility test (test/interop/metainfoCompat.test.ts): each is read
 * by our `info --json` and by libtorrent's torrent_info. Add a case by appending to `metainfoCases`;
 * a torrent is either bytes built here or a spec that libtorrent's create_torrent turns into a file
 * (scripts/reference-clients/lt_metainfo.py).
 */
import * as Bencode from "../../src/domain/Bencode.js"

const { int, text } = Bencode

/** What lt_metainfo.py `create` reads: paths include the torrent's folder (`root/a`). */
export interface CreateSpec {
  readonly pieceLength: number
  readonly flags: ReadonlyArray<string>
  readonly files: ReadonlyArray<{ readonly path: string; readonly size: number; readonly attr?: string; readonly symlink?: string }>
  /** An edit of the made torrent's v2 file tree: a key renamed (a hostile name libtorrent would not make). */
  readonly transform?: { readonly renameTreeKey: readonly [string, string] }
}

export interface MetainfoCase {
  readonly name: string
  readonly torrent: { readonly bytes: Uint8Array } | { readonly libtorrent: CreateSpec }
  /** Why we deliberately read this torrent otherwise than libtorrent (docs/metainfo.md); the test checks the readings differ. */
  readonly knownDifference?: string
}

type Component = string | Uint8Array
const component = (c: Component): Uint8Array => (typeof c === "string" ? text(c) : c)

/** A file entry: a path (or none), a length (or none) and other keys (`attr`, `symlink path`, ...). */
export const entry = (
  path: ReadonlyArray<Component> | undefined,
  length: number | undefined,
  extra: Record<string, Bencode.Bencode> = {}
): Bencode.BencodeDict => Bencode.dict({ path: path?.map(component), length: length === undefined ? undefined : int(length), ...extra })

const link = (path: ReadonlyArray<string>, target?: ReadonlyArray<string>) =>
  entry(path, undefined, { attr: text("l"), ...(target === undefined ? {} : { "symlink path": target.map(text) }) })

const pieceLength = 16384

/** Hashes for `total` bytes (their value does not matter to metainfo, only their count). */
const hashesFor = (total: number) => new Uint8Array(20 * Math.ceil(total / pieceLength)).fill(7)

/** The payload bytes the entries claim, as libtorrent counts them (a symlink takes none). */
const payloadOf = (entries: ReadonlyArray<Bencode.BencodeDict>) =>
  entries.reduce((sum, e) => {
    const attr = Bencode.get(e, "attr")
    const length = Bencode.get(e, "length")
    const isLink = Bencode.isBytes(attr) && Bencode.toText(attr).includes("l")
    return sum + (isLink || !Bencode.isInt(length) ? 0 : Number(length))
  }, 0)

const torrent = (info: Record<string, Bencode.Bencode | undefined>, trailing: Uint8Array = new Uint8Array(0)) => ({
  bytes: new Uint8Array([...Bencode.encode(Bencode.dict({ announce: text("http://127.0.0.1:6969/announce"), info: Bencode.dict(info) })), ...trailing])
})

export const multiFile = (entries: ReadonlyArray<Bencode.BencodeDict>, extra: Record<string, Bencode.Bencode | undefined> = {}) =>
  torrent({ name: text("root"), "piece length": int(pieceLength), pieces: hashesFor(payloadOf(entries)), files: entries, ...extra })

export const singleFile = (name: Component, length: number, extra: Record<string, Bencode.Bencode | undefined> = {}) =>
  torrent({ name: component(name), "piece length": int(pieceLength), pieces: hashesFor(length), length: int(length), ...extra })

const plain = (...names: ReadonlyArray<string>) => names.map((n) => entry(n.split("/"), 1))

const v2Files = [{ path: "root/a", size: 1000 }, { path: "root/b", size: 50000 }, { path: "root/sub/c", size: 16384 }]

export const metainfoCases: ReadonlyArray<MetainfoCase> = [
  // Hostile or odd paths: sanitised, never refused.
  { name: "'..' and '.' components", torrent: multiFile([entry(["..", "..", "etc", "passwd"], 1), entry([".", "a"], 1), entry([".."], 1)]) },
  { name: "empty components", torrent: multiFile([entry(["", "x"], 1), entry(["y", ""], 1)]) },
  { name: "separators inside a component (absolute, backslash)", torrent: multiFile([entry(["/etc/passwd"], 1), entry(["a\\b", "c/d"], 1), entry(["\\\\server\\share"], 1)]) },
  { name: "NUL, control characters and invalid UTF-8", torrent: multiFile([entry(["z\0q"], 1), entry(["a\u0001b\u001f"], 1), entry([new Uint8Array([0xff, 0xfe, 0x2e, 0x74]), new Uint8Array([0xc0, 0xaf, 0xe2, 0x82])], 1)]) },
  { name: "direction controls", torrent: multiFile([entry(["x\u202etxt.exe"], 1), entry(["a\u200eb\u200f"], 1)]) },
  { name: "long components (cut to 240 bytes, extension kept)", torrent: multiFile([entry(["a".repeat(300)], 1), entry([`${"b".repeat(300)}.txt`], 1), entry([`${"é".repeat(200)}.mkv`], 1), entry(["c".repeat(239) + "éé"], 1)]) },
  { name: "dots that are names ('...', '.hidden')", torrent: multiFile([entry(["..."], 1), entry([".hidden"], 1), entry(["a."], 1)]) },
  { name: "a path that sanitises to nothing", torrent: multiFile([entry([".", ".."], 1), entry(["/"], 1)]) },
  { name: "'/' in a folder name", torrent: multiFile(plain("a"), { name: text("a/b") }) },
  { name: "a folder name that sanitises to nothing", torrent: multiFile(plain("a"), { name: text("..") }) },
  { name: "an empty folder name", torrent: multiFile(plain("a"), { name: text("") }) },
  { name: "'../../x' as a single file's name", torrent: singleFile("../../x", 5) },
  { name: "'..' as a single file's name", torrent: singleFile("..", 5) },
  { name: "an empty single file's name", torrent: singleFile("", 5) },
  { name: "path.utf-8 and name.utf-8 preferred", torrent: multiFile([entry(["a"], 1, { "path.utf-8": [text("..", ), text("é")] })], { "name.utf-8": text("dossier/é") }) },
  // Duplicates: renamed with a counter.
  { name: "three files on one path", torrent: multiFile(plain("bar.txt", "bar.txt", "bar.txt")) },
  { name: "paths equal but for ASCII case", torrent: multiFile(plain("a", "A", "Readme.md", "README.MD")) },
  { name: "a file where a folder is", torrent: multiFile(plain("a", "a/b", "c/d", "c")) },
  { name: "a duplicate made by sanitising, and a counter already taken", torrent: multiFile(plain("../a", "a", "a.1", "x.tar.gz", "x.tar.gz")) },
  // Bytes after the top-level dictionary.
  { name: "trailing bytes after the dictionary", torrent: torrent({ name: text("t"), "piece length": int(pieceLength), pieces: hashesFor(3), length: int(3) }, Bencode.text("\ntrailing garbage")) },
  { name: "a second dictionary after the first", torrent: torrent({ name: text("t"), "piece length": int(pieceLength), pieces: hashesFor(3), length: int(3) }, Bencode.encode(Bencode.dict({ x: int(1) }))) },
  // BEP 47 attributes, padding and symlinks.
  { name: "padding entries without a path, two of one length", torrent: multiFile([entry(["a"], 1), entry(undefined, 5, { attr: text("p") }), entry(undefined, 5, { attr: text("p") }), entry(["b"], 1)]) },
  { name: "padding with a path, and BitComet's padding names", torrent: multiFile([entry(["a"], 1), entry([".pad", "3"], 3, { attr: text("p") }), entry(["_____padding_file_0_if you see this"], 2)]) },
  { name: "a padding entry without a length", torrent: multiFile([entry(["a"], 1), entry(undefined, undefined, { attr: text("p") })]) },
  { name: "x and h attributes, unknown letters ignored", torrent: multiFile([entry(["run"], 1, { attr: text("x") }), entry(["secret"], 1, { attr: text("hxz") })]) },
  {
    name: "symlinks: into the torrent, beside the link, through a link, escaping, absolute, without target",
    torrent: multiFile([entry(["d", "a"], 1), link(["l1"], ["d"]), link(["d", "l2"], ["a"]), link(["l3"], ["l1", "a"]), link(["l4"], ["..", "..", "etc", "passwd"]), link(["l5"], ["/etc/passwd"]), link(["l6"]), link(["l7"], [])])
  },
  { name: "a symlink entry that claims a length", torrent: multiFile([entry(["a"], 1), entry(["l"], 9, { attr: text("l"), "symlink path": [text("a")] })]) },
  { name: "a symlink without a path", torrent: multiFile([entry(["a"], 1), entry(undefined, undefined, { attr: text("l"), "symlink path": [text("a")] })]) },
  // Fields libtorrent reads more loosely than BEP 3.
  { name: "a files list beside a length", torrent: multiFile(plain("a", "b"), { length: int(7) }) },
  { name: "private flag 2", torrent: multiFile(plain("a"), { private: int(2) }) },
  // Refused by both.
  { name: "total length 0 (single file)", torrent: singleFile("empty", 0) },
  { name: "total length 0 (files of 0 bytes)", torrent: multiFile([entry(["a"], 0), entry(["b"], 0)]) },
  { name: "a file without a path", torrent: multiFile([entry(["a"], 1), entry(undefined, 1)]) },
  { name: "a file with an empty path list", torrent: multiFile([entry(["a"], 1), entry([], 1)]) },
  { name: "a file without a length", torrent: multiFile([entry(["a"], 1), entry(["b"], undefined)]) },
  { name: "a negative length", torrent: multiFile([entry(["a"], 1), entry(["b"], -1)]) },
  { name: "a path component that is not a string", torrent: multiFile([entry(["a"], 1, { path: [text("a"), int(3)] })]) },
  { name: "an empty files list", torrent: multiFile([]) },
  { name: "too few piece hashes", torrent: multiFile(plain("a"), { pieces: new Uint8Array(0) }) },
  { name: "no piece length", torrent: multiFile(plain("a"), { "piece length": undefined }) },
  { name: "no info dictionary", torrent: { bytes: Bencode.encode(Bencode.dict({ announce: text("http://127.0.0.1:6969/announce") })) } },
  { name: "not a dictionary", torrent: { bytes: Bencode.encode([int(1)]) } },
  // Deliberate differences.
  { name: "a drive letter component", torrent: multiFile([entry(["C:", "x"], 1), entry(["d:evil"], 1)]), knownDifference: "we drop a leading drive letter on every platform; libtorrent on Linux keeps 'C:' (on Windows it writes 'C_')" },
  { name: "a file under .pad/ without attribute p", torrent: multiFile([entry(["a"], 1), entry([".pad", "9"], 9)]), knownDifference: "we treat every file under .pad/ as padding (BEP 47's folder for it); libtorrent only attribute p" },
  { name: "a piece length above 64 MiB", torrent: torrent({ name: text("big"), "piece length": int(128 * 1024 * 1024), pieces: new Uint8Array(20), length: int(1) }), knownDifference: "we refuse pieces above 64 MiB (a piece is held in memory); libtorrent accepts up to 1 GiB" },
  // Made by libtorrent's create_torrent.
  { name: "create_torrent: v1 with pad files (canonical_files)", torrent: { libtorrent: { pieceLength, flags: ["v1_only", "canonical_files"], files: [{ path: "root/a", size: 1000 }, { path: "root/b", size: 20000, attr: "x" }, { path: "root/c", size: 5 }] } } },
  { name: "create_torrent: v1 with a symlink and a hidden file", torrent: { libtorrent: { pieceLength, flags: ["v1_only", "symlinks"], files: [{ path: "root/a", size: 1000 }, { path: "root/l", size: 0, attr: "l", symlink: "a" }, { path: "root/.h", size: 3, attr: "h" }] } } },
  { name: "create_torrent: v1 single file", torrent: { libtorrent: { pieceLength, flags: ["v1_only"], files: [{ path: "one.bin", size: 40000 }] } } },
  // v2 (BEP 52) and hybrid, made by libtorrent from real data (pieces roots and piece layers).
  { name: "create_torrent: v2 single file", torrent: { libtorrent: { pieceLength, flags: ["v2_only"], files: [{ path: "one.bin", size: 40000 }] } } },
  { name: "create_torrent: v2 multi-file", torrent: { libtorrent: { pieceLength, flags: ["v2_only"], files: v2Files } } },
  { name: "create_torrent: hybrid multi-file (pad files)", torrent: { libtorrent: { pieceLength, flags: [], files: v2Files } } },
  { name: "create_torrent: v2 with an empty file", torrent: { libtorrent: { pieceLength, flags: ["v2_only"], files: [...v2Files, { path: "root/empty", size: 0 }] } } },
  { name: "create_torrent: v2 of one small file", torrent: { libtorrent: { pieceLength, flags: ["v2_only"], files: [{ path: "root/tiny", size: 10 }] } } },
  // v2 file trees with names libtorrent would not make.
  ...(["..", ".", "a/b", "", "a\\b"] as const).map((hostile) => ({
    name: `a v2 file tree with the name ${JSON.stringify(hostile)}`,
    torrent: { libtorrent: { pieceLength, flags: ["v2_only"], files: v2Files, transform: { renameTreeKey: ["b", hostile] as const } } },
    ...(hostile === ""
      ? {}
      : { knownDifference: "a v2 name that climbs, stays put or holds a path separator: we refuse the torrent (UnsafePath), libtorrent sanitises the name" })
  }))
]
