import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as path from "node:path"
import { renameDuplicates } from "../../src/domain/DuplicatePaths.js"
import { resolveSymlinkTargets } from "../../src/domain/SymlinkTargets.js"
import { maxComponentBytes, sanitizeComponent, sanitizePath } from "../../src/domain/TorrentPath.js"

const utf8 = (s: string) => new TextEncoder().encode(s)
const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 12 }),
  fc.constantFrom("..", ".", "", "/", "\\", "C:", "c:..", "a:b", "\0", "x\u202e", "%2e%2e", "a".repeat(300)).map(utf8),
  fc.string({ maxLength: 8 }).map(utf8)
)

describe("TorrentPath.sanitizeComponent", () => {
  it.prop("never yields '', '.', '..', a separator, NUL, a control character, a drive letter or more than 240 bytes + an extension", [hostile], ([raw]) => {
    const out = sanitizeComponent(raw)
    if (out === undefined) return
    expect(out).not.toMatch(/^(\.|\.\.|)$|[/\\\0-\x1f\u202a-\u202e\u200e\u200f]|^[A-Za-z]:/)
    expect(utf8(out).length).toBeLessThanOrEqual(maxComponentBytes + 3 + 9)
  }, { fastCheck: { numRuns: 2000 } })

  it.prop("keeps a safe component as it is, and is idempotent", [hostile], ([raw]) => {
    const out = sanitizeComponent(raw)
    if (out !== undefined) expect(sanitizeComponent(utf8(out))).toBe(out)
  }, { fastCheck: { numRuns: 2000 } })

  it("maps the odd cases as libtorrent does", () => {
    expect(["..", ".", "/", "\\/", "C:"].map((s) => sanitizeComponent(utf8(s)))).toEqual([undefined, undefined, undefined, undefined, undefined])
    expect(sanitizeComponent(new Uint8Array(0))).toBe("_")
    expect(sanitizeComponent(new Uint8Array([0x61, 0xc0, 0xaf, 0x62]))).toBe("a_b")
    expect(sanitizeComponent(utf8("ok name.txt"))).toBe("ok name.txt")
  })
})

describe("TorrentPath.sanitizePath", () => {
  it.prop("stays inside the folder on POSIX and Windows, and never is empty", [fc.array(hostile, { maxLength: 5 })], ([raw]) => {
    const out = sanitizePath(raw)
    expect(out.length).toBeGreaterThan(0)
    for (const p of [path.posix, path.win32]) {
      const root = p.resolve(p.sep, "out", "folder")
      expect(p.resolve(root, ...out).startsWith(root + p.sep)).toBe(true)
    }
  }, { fastCheck: { numRuns: 1000 } })
})

const arbPaths = fc.array(fc.array(fc.constantFrom("a", "A", "b.txt", "B.TXT", "a.1", "c"), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 })

describe("DuplicatePaths.renameDuplicates", () => {
  it.prop("gives distinct paths (ignoring ASCII case), none of them a folder of another, and renames only collisions", [arbPaths], ([paths]) => {
    const out = renameDuplicates(paths.map((p) => ({ path: p, length: 1, padding: false })))
    const keys = out.map((p) => p.join("/").toLowerCase())
    expect(new Set(keys).size).toBe(keys.length)
    for (const p of out) for (let j = 1; j < p.length; j++) expect(keys).not.toContain(p.slice(0, j).join("/").toLowerCase())
    out.forEach((p, i) => {
      expect(p.slice(0, -1)).toEqual(paths[i]!.slice(0, -1))
      if (i === 0 && paths[0]!.length === 1 && !paths.some((q) => q.length > 1 && q[0]!.toLowerCase() === paths[0]![0]!.toLowerCase())) {
        expect(p).toEqual(paths[0])
      }
    })
  }, { fastCheck: { numRuns: 500 } })
})

describe("SymlinkTargets.resolveSymlinkTargets", () => {
  it.prop("a target is a file or folder of the torrent, a link on the way to one, or the link itself", [arbPaths, fc.array(fc.boolean())], ([paths, isLink]) => {
    const entries = paths.map((p, i) => ({ path: p, symlink: isLink[i] === true ? [...paths[(i + 1) % paths.length]!] : undefined }))
    const targets = resolveSymlinkTargets(entries)
    const names = new Set(paths.flatMap((p) => p.map((_, j) => p.slice(0, j + 1).join("/"))))
    targets.forEach((target, i) => {
      if (entries[i]!.symlink === undefined) expect(target).toBeUndefined()
      else expect(names.has(target!.join("/"))).toBe(true)
    })
  }, { fastCheck: { numRuns: 500 } })
})
