/**
 * The CLI as people and scripts meet it (issue 16): help on a terminal and through a pipe, usage
 * errors, one wording for file-system and network errors, and `--json` documents.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Bencode from "../../src/domain/Bencode.js"
import { cliPath, type CliResult, ensureBuilt, repoRoot } from "../support/cli.js"
import { multiFileInfo, payloadBytes, torrentBytes } from "../support/torrent.js"

/** The environment of a user's shell, minus what would change the output under test. */
const baseEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env = { ...process.env, ...extra }
  for (const key of ["COLUMNS", "NO_COLOR", "FORCE_COLOR"]) if (!(key in extra)) delete env[key]
  return env
}

const exec = (file: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { cwd: repoRoot, env, timeout: 30_000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error === null) return resolve({ code: 0, stdout, stderr })
      if (typeof error.code === "number") return resolve({ code: error.code, stdout, stderr })
      reject(error)
    })
  })

/** Through pipes, as a script runs it. */
const piped = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) => exec(process.execPath, [cliPath, ...args], baseEnv(extra))

/** In a pseudo-terminal (util-linux `script`); stdout and stderr both arrive on the terminal, with \r\n. */
const onTerminal = async (args: ReadonlyArray<string>, extra: Record<string, string> = {}) => {
  const command = [process.execPath, cliPath, ...args].map((a) => `'${a}'`).join(" ")
  const r = await exec("script", ["-qec", command, "/dev/null"], baseEnv({ TERM: "xterm-256color", ...extra }))
  return { ...r, stdout: r.stdout.replace(/\r\n/g, "\n") }
}

const helpCommands = [[], ["--help"], ["download", "--help"], ["create", "--help"], ["info", "-h"], ["seed", "--help"]]
  .map((args) => ({ args, label: args.length === 0 ? "(no arguments)" : args.join(" ") }))
const longestLine = (text: string) => Math.max(...text.split("\n").map((l) => l.length))

let tmp: string
beforeAll(async () => {
  await ensureBuilt()
  tmp = mkdtempSync(path.join(tmpdir(), "bt-usage-"))
  return () => rmSync(tmp, { recursive: true, force: true })
})

describe("help", () => {
  it.each(helpCommands)("$label through a pipe: plain text within 80 columns, with usage", async ({ args }) => {
    const r = await piped(args)
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain("\x1b")
    expect(longestLine(r.stdout)).toBeLessThanOrEqual(80)
    expect(r.stdout).not.toMatch(/A user-defined piece of text|A true or false value|This setting is optional/)
    expect(r.stdout).toMatch(/^Usage: bittorrent /m)
  })


  it("download --help lists one line per option, with its default, and examples", async () => {
    const r = await piped(["download", "--help"])
    expect(r.stdout).toMatch(/^ {6}--port <n> +where to accept peers \(default: 6881, or the\b/m)
    expect(r.stdout).toMatch(/^ {2}-q, --quiet +no progress on stderr$/m)
    expect(r.stdout).toMatch(/^Examples:\n {2}bittorrent download /m)
  })

  it("is bold on a terminal, plain with NO_COLOR or TERM=dumb, and wraps at COLUMNS", async () => {
    const styled = await onTerminal(["download", "--help"], { COLUMNS: "80" })
    expect(styled.code).toBe(0)
    expect(styled.stdout).toContain("\x1b[1mOptions:\x1b[0m")
    expect(longestLine(styled.stdout.replace(/\x1b\[[0-9;]*m/g, ""))).toBeLessThanOrEqual(80)
    for (const extra of [{ NO_COLOR: "1" }, { TERM: "dumb" }]) {
      const plain = await onTerminal(["download", "--help"], { COLUMNS: "80", ...extra })
      expect(plain.stdout).toContain("Options:")
      expect(plain.stdout).not.toContain("\x1b")
    }
    const narrow = await onTerminal(["create", "--help"], { COLUMNS: "60", NO_COLOR: "1" })
    expect(longestLine(narrow.stdout)).toBeLessThanOrEqual(60)
  })
})

/** A usage error: exit 2, the exact first line, then the command's usage. */
const expectUsageError = (r: CliResult, line: string, usage: string) => {
  expect(r.code).toBe(2)
  expect(r.stdout).toBe("")
  expect(r.stderr.split("\n").slice(0, 2)).toEqual([line, usage])
}

/** A failure: exit 1 and exactly one line. */
const expectError = (r: CliResult, line: string) => {
  expect(r).toEqual({ code: 1, stdout: "", stderr: `${line}\n` })
}

describe("usage errors", () => {
  it("names an unknown option", async () => {
    expectUsageError(
      await piped(["download", "--no-such-option", "4M", "-o", "x", "t.torrent"]),
      "error: unknown option --no-such-option",
      "Usage: bittorrent download [options] <torrent>"
    )
  })

  it("refuses a rate that does not parse, or under a byte per second, naming the flag", async () => {
    expectUsageError(
      await piped(["download", "--max-download-rate", "4MB", "t.torrent"]),
      "error: --max-download-rate: '4MB' is not a rate: give bytes per second, e.g. 500000, 500k, 4M or 1G (k/K = 1024, M = 1024², G = 1024³)",
      "Usage: bittorrent download [options] <torrent>"
    )
    expectUsageError(
      await piped(["seed", "--max-upload-rate", "0.2", "t.torrent", "p"]),
      "error: --max-upload-rate: '0.2' is under 1 byte per second (0 means no limit)",
      "Usage: bittorrent seed [options] <torrent> <path>"
    )
  })

  it("names a missing argument", async () => {
    expectUsageError(await piped(["info"]), "error: missing argument <torrent>", "Usage: bittorrent info [options] <torrent>")
  })

  it("names an unknown command", async () => {
    expectUsageError(await piped(["dowload"]), "error: unknown command 'dowload'", "Usage: bittorrent <command> [options] [arguments]")
  })

  it.each([
    { args: ["demo", "--size-mib", "0"], line: "error: --size-mib: must be at least 1, not 0", usage: "Usage: bittorrent demo [options]" },
    { args: ["demo", "--seeders", "0"], line: "error: --seeders: must be at least 1, not 0", usage: "Usage: bittorrent demo [options]" },
    { args: ["tracker", "--port", "abc"], line: "error: --port: 'abc' is not an integer", usage: "Usage: bittorrent tracker [options]" },
    {
      args: ["create", "-o", "x.torrent", "--piece-length", "-5", "."],
      line: "error: --piece-length: -5 is not a power of two from 16384 to 67108864",
      usage: "Usage: bittorrent create [options] -o <output> <path>"
    }
  ])("refuses $args", async ({ args, line, usage }) => {
    expectUsageError(await piped(args), line, usage)
  })
})

describe("one wording for errors", () => {
  it("a directory given as a torrent", async () => {
    expectError(await piped(["info", tmp]), `error: cannot read ${tmp}: is a directory`)
    expectError(await piped(["download", "-o", path.join(tmp, "out"), tmp]), `error: cannot read ${tmp}: is a directory`)
  })

  it("a torrent that cannot be written", async () => {
    const payload = path.join(tmp, "payload.bin")
    writeFileSync(payload, payloadBytes(100))
    // Root ignores file modes; sysfs refuses new files to everyone.
    expectError(await piped(["create", "-o", "/sys/x.torrent", payload]), "error: cannot write /sys/x.torrent: permission denied")
    const underFile = path.join(payload, "x.torrent")
    expectError(await piped(["create", "-o", underFile, payload]), `error: cannot write ${underFile}: a part of the path is not a directory`)
  })

  it("a port in use", async () => {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as net.AddressInfo).port
    try {
      expectError(await piped(["tracker", "--port", String(port)]), `error: cannot listen on 127.0.0.1:${port}: the port is in use`)
    } finally {
      server.close()
    }
  })
})

const InfoJson = Schema.Struct({
  name: Schema.String,
  infoHash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{40}$/)),
  length: Schema.Number,
  pieceLength: Schema.Number,
  pieceCount: Schema.Number,
  private: Schema.Boolean,
  multiFile: Schema.Boolean,
  announce: Schema.NullOr(Schema.String),
  trackers: Schema.Array(Schema.Array(Schema.String)),
  webSeeds: Schema.Array(Schema.String),
  comment: Schema.NullOr(Schema.String),
  createdBy: Schema.NullOr(Schema.String),
  creationDate: Schema.NullOr(Schema.String),
  files: Schema.Array(Schema.Struct({ index: Schema.Number, path: Schema.String, length: Schema.Number, offset: Schema.Number })),
  pieceHashes: Schema.Array(Schema.String)
})

const CreateJson = Schema.Struct({
  output: Schema.String,
  infoHash: Schema.String,
  name: Schema.String,
  length: Schema.Number,
  pieceLength: Schema.Number,
  pieceCount: Schema.Number,
  files: Schema.Number,
  skipped: Schema.Array(Schema.Struct({ path: Schema.String, reason: Schema.String }))
})

describe("info --details and --json", () => {
  const payload = payloadBytes(40_000)
  const info = multiFileInfo("album", [
    { path: ["a.txt"], data: payload.subarray(0, 1000) },
    { path: ["disc 1", "b.flac"], data: payload.subarray(1000) }
  ], 16384)
  const { list, text } = { list: (xs: Array<string>) => xs.map(Bencode.text), text: Bencode.text }
  const top = {
    announce: text("http://127.0.0.1:6969/announce"),
    "announce-list": [list(["http://127.0.0.1:6969/announce"]), list(["udp://127.0.0.1:6969", "http://127.0.0.2/announce"])],
    "url-list": list(["http://127.0.0.1:8080/files/"]),
    comment: text("a comment"),
    "created by": text("mktorrent 1.1"),
    "creation date": Bencode.int(1700000000)
  }

  it("--json is one document matching the documented schema", async () => {
    const file = path.join(tmp, "album.torrent")
    writeFileSync(file, torrentBytes(info, top))
    const r = await piped(["info", "--json", file])
    expect(r.code).toBe(0)
    const doc = Schema.decodeUnknownSync(InfoJson)(JSON.parse(r.stdout))
    expect(doc).toMatchObject({
      name: "album",
      length: 40_000,
      pieceCount: 3,
      multiFile: true,
      trackers: [["http://127.0.0.1:6969/announce"], ["udp://127.0.0.1:6969", "http://127.0.0.2/announce"]],
      webSeeds: ["http://127.0.0.1:8080/files/"],
      comment: "a comment",
      createdBy: "mktorrent 1.1",
      creationDate: "2023-11-14T22:13:20Z",
      files: [{ index: 0, path: "a.txt", length: 1000, offset: 0 }, { index: 1, path: "disc 1/b.flac", length: 39_000, offset: 1000 }]
    })
    expect(doc.pieceHashes).toHaveLength(3)
  })

  it("--details keeps the classic head, then the rest, the indexed files and the hashes last", async () => {
    const file = path.join(tmp, "album.torrent")
    writeFileSync(file, torrentBytes(info, top))
    const r = await piped(["info", "--details", file])
    const lines = r.stdout.split("\n")
    expect(lines.slice(0, 4).map((l) => l.split(":")[0])).toEqual(["Tracker URL", "Length", "Info Hash", "Piece Length"])
    expect(r.stdout).toContain([
      "Name: album",
      "Comment: a comment",
      "Created By: mktorrent 1.1",
      "Creation Date: 2023-11-14T22:13:20Z",
      "Private: no",
      "Trackers:",
      "  tier 0: http://127.0.0.1:6969/announce",
      "  tier 1: udp://127.0.0.1:6969 http://127.0.0.2/announce",
      "Web Seeds:",
      "  http://127.0.0.1:8080/files/",
      "Files:",
      "  0: 1000 a.txt",
      "  1: 39000 disc 1/b.flac",
      "Piece Hashes:"
    ].join("\n"))
    expect(lines.slice(-4, -1).every((l) => /^[0-9a-f]{40}$/.test(l))).toBe(true)
  })
})

describe("create", () => {
  it("prints a user line on stderr, the info hash on stdout, and a document with --json", async () => {
    const payload = path.join(tmp, "create.bin")
    writeFileSync(payload, payloadBytes(50_000))
    const out = path.join(tmp, "create.torrent")
    const r = await piped(["create", "-o", out, payload])
    expect(r).toEqual({
      code: 0,
      stdout: expect.stringMatching(/^Info Hash: [0-9a-f]{40}\n$/),
      stderr: `wrote ${out}: 1 file, 50000 bytes, 4 pieces of 16384 bytes\n`
    })
    const json = await piped(["create", "--json", "-o", out, payload])
    expect(json.stderr).toBe("")
    expect(Schema.decodeUnknownSync(CreateJson)(JSON.parse(json.stdout))).toMatchObject({ output: out, length: 50_000, pieceCount: 4, files: 1, skipped: [] })
  })
})
