/**
 * The bundled CLI, run as a subprocess: exact stdout and exit codes of the classic commands
 * (the classic contract), and one-line errors on stderr.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { ensureBuilt, fixturesDir, runCli } from "../support/cli.js"
import { multiFileInfo, payloadBytes, sha1, singleFileInfo, torrentBytes, withKeys } from "../support/torrent.js"

const tracker = "http://bittorrent-test-tracker.codecrafters.io/announce"

/** A failure: exit 1, nothing on stdout, one `error: ...` line on stderr and no stack trace. */
const expectOneLineError = (r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) => {
  expect(r.code).toBe(1)
  expect(r.stdout).toBe("")
  expect(r.stderr).toMatch(/^error: [^\n]+\n$/)
  expect(r.stderr).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /)
}

let tmp: string
beforeAll(async () => {
  await ensureBuilt()
  tmp = mkdtempSync(path.join(tmpdir(), "bt-cli-"))
  return () => rmSync(tmp, { recursive: true, force: true })
})

describe("decode", () => {
  it.each([
    { input: "5:hello", out: '"hello"' },
    { input: "i-52e", out: "-52" },
    { input: "i4294967300e", out: "4294967300" },
    { input: "i52e", out: "52" },
    { input: "i123456789012345678901234567890e", out: "123456789012345678901234567890" },
    { input: "lli4eei5ee", out: "[[4],5]" },
    { input: "le", out: "[]" },
    { input: "l5:helloi52ee", out: '["hello",52]' },
    { input: "d3:foo3:bar5:helloi52ee", out: '{"foo":"bar","hello":52}' },
    { input: "de", out: "{}" },
    { input: "55:http://bittorrent-test-tracker.codecrafters.io/announce", out: `"${tracker}"` }
  ])("decode $input", async ({ input, out }) => {
    const r = await runCli(["decode", input])
    expect(r).toEqual({ code: 0, stdout: `${out}\n`, stderr: "" })
  })

  it.each([
    { input: "i03e", offset: 1 },
    { input: "i-0e", offset: 1 },
    { input: "5:abc", offset: 0 },
    { input: "l", offset: 1 },
    { input: "d3:fooe", offset: 6 },
    { input: "99999999999:x", offset: 0 },
    { input: "i1ex", offset: 3 },
    { input: "x", offset: 0 }
  ])("decode $input fails naming byte $offset", async ({ input, offset }) => {
    expectOneLineError(await runCli(["decode", input]), new RegExp(`^error: invalid bencode at byte ${offset}: expected `))
  })

  it("rejects 10^5 nested lists without a stack overflow", async () => {
    expectOneLineError(await runCli(["decode", "l".repeat(100_000)]), /at byte 256: expected nesting of at most 256 levels/)
  })

  // `decode <bencoded>` runs from its own bundle (bin/bittorrent.cjs); `decode -- <bencoded>` goes
  // through the full CLI's parser. Both must answer alike, output and exit code.
  it.each(["d3:foo3:bar5:helloi52ee", "i03e", "5:abc", "l".repeat(300)])("decode %s answers as the full CLI does", async (input) => {
    const [alone, parsed] = await Promise.all([runCli(["decode", input]), runCli(["decode", "--", input])])
    expect(alone).toEqual(parsed)
  })
})

describe("info", () => {
  it.each([
    { file: "codercat.gif", hash: "c77829d2a77d6516f88cd7a3de1a26abcbfab0db" },
    { file: "congratulations.gif", hash: "1cad4a486798d952614c394eb15e75bec587fd08" },
    { file: "itsworking.gif", hash: "70edcac2611a8829ebf467a6849f5d8408d9d8f4" },
    { file: "sample.txt", hash: "d69f91e6b2ae4c542468d1073a71d4ea13879a7f" }
  ])("info $file", async ({ file, hash }) => {
    const dir = path.join(fixturesDir, "seeder/base")
    const data = readFileSync(path.join(dir, file))
    const pieceLength = file === "sample.txt" ? 32768 : 262144
    const hashes: Array<string> = []
    for (let at = 0; at < data.length; at += pieceLength) {
      hashes.push(Buffer.from(sha1(data.subarray(at, at + pieceLength))).toString("hex"))
    }
    const r = await runCli(["info", path.join(dir, `${file}.torrent`)])
    expect(r).toEqual({
      code: 0,
      stdout: [
        `Tracker URL: ${tracker}`,
        `Length: ${data.length}`,
        `Info Hash: ${hash}`,
        `Piece Length: ${pieceLength}`,
        "Piece Hashes:",
        ...hashes,
        ""
      ].join("\n"),
      stderr: ""
    })
  })

  it("prints the total length and the files of a multi-file torrent", async () => {
    const payload = payloadBytes(70_000)
    const info = multiFileInfo("album", [
      { path: ["cover.jpg"], data: payload.subarray(0, 1000) },
      { path: ["disc 1", "01 intro.flac"], data: payload.subarray(1000, 50_000) },
      { path: ["disc 1", "02 é.flac"], data: payload.subarray(50_000) }
    ], 32768)
    const file = path.join(tmp, "multi.torrent")
    writeFileSync(file, torrentBytes(info))
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")
    const r = await runCli(["info", file])
    expect(r).toEqual({
      code: 0,
      stdout: [
        "Tracker URL: http://127.0.0.1:6969/announce",
        "Length: 70000",
        `Info Hash: ${hex(sha1(Bencode.encode(info)))}`,
        "Piece Length: 32768",
        "Piece Hashes:",
        ...[0, 1, 2].map((i) => hex(sha1(payload.subarray(i * 32768, (i + 1) * 32768)))),
        "Files:",
        "1000 cover.jpg",
        "49000 disc 1/01 intro.flac",
        "20000 disc 1/02 é.flac",
        ""
      ].join("\n"),
      stderr: ""
    })
  })

  it("prints the first announce-list URL when there is no announce", async () => {
    const file = path.join(tmp, "announce-list.torrent")
    const tiers = [[Bencode.text("udp://tracker.one:1337/announce"), Bencode.text("http://two/announce")]]
    writeFileSync(file, torrentBytes(singleFileInfo("x", payloadBytes(10), 16384), { "announce-list": tiers }))
    const r = await runCli(["info", file])
    expect(r.code).toBe(0)
    expect(r.stdout.split("\n").slice(0, 2)).toEqual(["Tracker URL: udp://tracker.one:1337/announce", "Length: 10"])
  })

  it("sanitises a '..' path instead of refusing it, and --details shows the change", async () => {
    const info = multiFileInfo("evil", [{ path: ["..", "..", "etc", "passwd"], data: payloadBytes(10) }], 16384)
    const file = path.join(tmp, "evil.torrent")
    writeFileSync(file, torrentBytes(info))
    const classic = await runCli(["info", file])
    expect(classic.code).toBe(0)
    expect(classic.stdout).toContain("Files:\n10 etc/passwd\n")
    const details = await runCli(["info", "--details", file])
    expect(details.stdout).toContain('Changed Paths:\n  0: ["..","..","etc","passwd"] -> etc/passwd\n')
  })

  it("rejects a torrent that holds no data and a bad pieces field, in one line", async () => {
    const empty = path.join(tmp, "empty.torrent")
    writeFileSync(empty, torrentBytes(singleFileInfo("x", new Uint8Array(0), 64)))
    expectOneLineError(await runCli(["info", empty]), /^error: invalid torrent: info: holds no data \(its total length is 0\)\n$/)
    const short = path.join(tmp, "short.torrent")
    writeFileSync(short, torrentBytes(withKeys(singleFileInfo("x", payloadBytes(100), 64), { pieces: new Uint8Array(21) })))
    expectOneLineError(await runCli(["info", short]), /^error: invalid torrent: info\.pieces: 21 bytes is not a multiple of 20/)
  })

  it("rejects a file that is not bencode, naming the offset", async () => {
    const file = path.join(tmp, "garbage.torrent")
    writeFileSync(file, "not a torrent")
    expectOneLineError(await runCli(["info", file]), /^error: invalid bencode at byte 0: /)
  })

  it("fails on a missing file, naming it", async () => {
    const file = path.join(tmp, "does-not-exist.torrent")
    expectOneLineError(await runCli(["info", file]), new RegExp(`^error: cannot read ${file}: no such file`))
  })
})

describe("magnet_parse", () => {
  const links = readFileSync(path.join(fixturesDir, "seeder/magnet_links.txt"), "utf8")
    .split("\n")
    .filter((line) => line.includes("magnet:"))
    .map((line) => line.slice(line.indexOf("magnet:")).trim())
  const hashes = ["ad42ce8109f54c99613ce38f9b4d87e70f24a165", "3f994a835e090238873498636b98a3e78d1c34ca", "c5fb9894bdaba464811b088d806bdd611ba490af"]

  it.each(links.map((link, i) => ({ link, hash: hashes[i]! })))("magnet_parse $hash", async ({ link, hash }) => {
    const r = await runCli(["magnet_parse", link])
    expect(r).toEqual({ code: 0, stdout: `Tracker URL: ${tracker}\nInfo Hash: ${hash}\n`, stderr: "" })
  })

  it("fails on a link without an info hash", async () => {
    expectOneLineError(await runCli(["magnet_parse", "magnet:?dn=x"]), /^error: invalid magnet link: no 'xt=urn:btih:<info hash>'/)
  })
})
