import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { toHex } from "../../src/domain/Bytes.js"
import * as Magnet from "../../src/domain/Magnet.js"
import { fixturesDir } from "../support/cli.js"

const parseOk = (text: string): Magnet.MagnetLink => Either.getOrThrow(Magnet.parseMagnet(text))
const parseErr = (text: string): Magnet.MagnetError =>
  Either.getOrThrowWith(Either.flip(Magnet.parseMagnet(text)), () => new Error(`parsed: ${text}`))

/** RFC 4648 base32, as some clients write the info hash. */
const toBase32 = (bytes: Uint8Array): string => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
  let bits = ""
  for (const b of bytes) bits += b.toString(2).padStart(8, "0")
  let out = ""
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, "0"), 2)]
  return out
}

const hash = "ad42ce8109f54c99613ce38f9b4d87e70f24a165"

describe("Magnet.parseMagnet", () => {
  const links = readFileSync(path.join(fixturesDir, "seeder/magnet_links.txt"), "utf8")
    .split("\n")
    .filter((line) => line.includes("magnet:"))
    .map((line) => {
      const [file, link] = line.split(": ")
      return { file: file!.replace(/\.torrent$/, ""), link: link!.trim() }
    })

  it("finds the three fixture links", () => expect(links.length).toBe(3))

  it.each(links)("parses the fixture link for $file", ({ file, link }) => {
    const m = parseOk(link)
    expect(m.displayName).toBe(file)
    expect(m.trackers).toEqual(["http://bittorrent-test-tracker.codecrafters.io/announce"])
    expect(m.peers).toEqual([])
    expect(link).toContain(`urn:btih:${toHex(m.infoHash)}`)
  })

  it.prop("reads a base32 info hash as the same bytes as hex", [fc.uint8Array({ minLength: 20, maxLength: 20 })], ([bytes]) => {
    const fromHex = parseOk(`magnet:?xt=urn:btih:${toHex(bytes).toUpperCase()}`)
    const fromB32 = parseOk(`magnet:?xt=urn:btih:${toBase32(bytes)}`)
    const fromLowerB32 = parseOk(`magnet:?xt=urn:btih:${toBase32(bytes).toLowerCase()}`)
    expect(fromHex.infoHash).toEqual(bytes)
    expect(fromB32.infoHash).toEqual(bytes)
    expect(fromLowerB32.infoHash).toEqual(bytes)
  })

  it("decodes several trackers, peers and a display name", () => {
    const m = parseOk(
      `magnet:?dn=My+Show%20%C3%A9%2B1&xt=urn:btih:${hash}&tr=udp%3A%2F%2Ft1%3A80&tr=http://t2/a?b=c%26d` +
        "&x.pe=127.0.0.1:6881&x.pe=[::1]:51413&x.pe=nonsense&tr.1=http%3A%2F%2Ft3&ws=http%3A%2F%2Fseed&flag"
    )
    expect(toHex(m.infoHash)).toBe(hash)
    expect(m.displayName).toBe("My Show é+1")
    expect(m.trackers).toEqual(["udp://t1:80", "http://t2/a?b=c&d", "http://t3"])
    expect(m.peers).toEqual([{ host: "127.0.0.1", port: 6881 }, { host: "::1", port: 51413 }])
  })

  it("keeps + in a tracker URL, takes the first btih among several xt, and has no display name without dn", () => {
    const m = parseOk(`MAGNET:?xt=urn:btmh:1220abcd&xt.1=urn:btih:${hash}&xt.2=urn:btih:${"0".repeat(40)}&tr=http://a/b+c`)
    expect(toHex(m.infoHash)).toBe(hash)
    expect(m.trackers).toEqual(["http://a/b+c"])
    expect("displayName" in m).toBe(false)
  })

  it.prop("reads a v2 link (btmh, SHA-256 multihash): the swarm id is the hash's first 20 bytes", [fc.uint8Array({ minLength: 32, maxLength: 32 })], ([v2]) => {
    const m = parseOk(`magnet:?xt=urn:btmh:1220${toHex(v2)}&dn=x`)
    expect(m.infoHashV2).toEqual(v2)
    expect(m.infoHash).toEqual(v2.subarray(0, 20))
  })

  it("reads a hybrid link with both xt: the v1 hash is the swarm id, the v2 hash is kept", () => {
    const v2 = "ab".repeat(32)
    for (const link of [`magnet:?xt=urn:btih:${hash}&xt=urn:btmh:1220${v2}`, `magnet:?xt=urn:btmh:1220${v2.toUpperCase()}&xt=urn:btih:${hash}`]) {
      const m = parseOk(link)
      expect(toHex(m.infoHash)).toBe(hash)
      expect(toHex(m.infoHashV2!)).toBe(v2)
    }
  })

  it.each([
    { input: "http://example.com/?xt=urn:btih:" + hash, reason: "NotAMagnet" },
    { input: "magnet:xt=urn:btih:" + hash, reason: "NotAMagnet" },
    { input: "", reason: "NotAMagnet" },
    { input: "magnet:?dn=x&tr=http%3A%2F%2Fa", reason: "MissingInfoHash" },
    { input: "magnet:?xt=urn:btmh:1220" + hash, reason: "InvalidInfoHash" },
    { input: "magnet:?xt=urn:btmh:1114" + hash + hash, reason: "InvalidInfoHash" },
    { input: "magnet:?xt=urn:btih:" + hash.slice(1), reason: "InvalidInfoHash" },
    { input: "magnet:?xt=urn:btih:" + hash.replace("a", "g"), reason: "InvalidInfoHash" },
    { input: "magnet:?xt=urn:btih:" + "1".repeat(32), reason: "InvalidInfoHash" },
    { input: "magnet:?xt=urn:btih:" + hash + "&dn=%zz", reason: "BadEncoding" },
    { input: "magnet:?xt=urn:btih:" + hash + "&tr=%E0%A4%A", reason: "BadEncoding" }
  ] as const)("rejects $input ($reason)", ({ input, reason }) => {
    const e = parseErr(input)
    expect(e.reason).toBe(reason)
    expect(e.message).toMatch(/^invalid magnet link: .+/)
  })

  it.prop("never throws on arbitrary text", [fc.string({ maxLength: 200 })], ([text]) => {
    const r = Magnet.parseMagnet(`magnet:?${text}`)
    if (Either.isLeft(r)) expect(r.left._tag).toBe("MagnetError")
  }, { fastCheck: { numRuns: 500 } })
})
