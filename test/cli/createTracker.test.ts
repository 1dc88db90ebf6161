/** The bundled `create` and `tracker` commands, run as subprocesses: exact stdout, exit codes, a real announce. */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Either } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { toHex } from "../../src/domain/Bytes.js"
import { parseTorrent } from "../../src/domain/Metainfo.js"
import { percentEncodeBytes } from "../../src/domain/TrackerResponse.js"
import { cliPath, ensureBuilt, runCli } from "../support/cli.js"
import { payloadBytes } from "../support/torrent.js"

let tmp: string
beforeAll(async () => {
  await ensureBuilt()
  tmp = mkdtempSync(path.join(tmpdir(), "bt-create-cli-"))
  return () => rmSync(tmp, { recursive: true, force: true })
})

describe("create", () => {
  it("writes the torrent, prints only its info hash, and `info` agrees", async () => {
    const folder = path.join(tmp, "share")
    mkdirSync(path.join(folder, "sub"), { recursive: true })
    writeFileSync(path.join(folder, "a.bin"), payloadBytes(40_000, 1))
    writeFileSync(path.join(folder, "sub", "b.bin"), payloadBytes(9_999, 2))
    const out = path.join(folder, "share.torrent")
    const args = ["create", folder, "-o", out, "--announce", "http://127.0.0.1:6969/announce", "--announce", "udp://127.0.0.1:6969", "--private", "--comment", "hi"]
    const r = await runCli(args)
    expect(r.code).toBe(0)
    const meta = Either.getOrThrow(parseTorrent(readFileSync(out)))
    expect(r.stdout).toBe(`Info Hash: ${toHex(meta.info.infoHash)}\n`)
    expect(meta).toMatchObject({ announce: "http://127.0.0.1:6969/announce", announceList: [["http://127.0.0.1:6969/announce"], ["udp://127.0.0.1:6969"]] })
    expect(meta.info).toMatchObject({ name: "share", private: true, pieceLength: 16384, totalLength: 49_999 })
    // Run again with the torrent now inside the folder: it is left out, so the bytes are identical.
    const before = readFileSync(out)
    expect((await runCli(args)).stdout).toBe(r.stdout)
    expect(readFileSync(out).equals(before)).toBe(true)
    const info = await runCli(["info", out])
    expect(info.stdout).toContain(`Info Hash: ${toHex(meta.info.infoHash)}\n`)
  })

  it("refuses a bad piece length as bad usage (exit 2), and fails with one line and exit 1 on a missing path", async () => {
    writeFileSync(path.join(tmp, "x.bin"), payloadBytes(10))
    const bad = await runCli(["create", path.join(tmp, "x.bin"), "-o", path.join(tmp, "x.torrent"), "--piece-length", "1000"])
    expect(bad).toMatchObject({ code: 2, stdout: "" })
    expect(bad.stderr).toMatch(/^error: --piece-length: 1000 is not a power of two from 16384 to 67108864\nUsage: bittorrent create /)
    const missing = await runCli(["create", path.join(tmp, "nope"), "-o", path.join(tmp, "x.torrent")])
    expect(missing).toMatchObject({ code: 1, stdout: "" })
    expect(missing.stderr).toMatch(/^error: cannot create a torrent from .*nope: no such file or folder\n$/)
  })
})

describe("tracker", () => {
  it("prints its URL, answers announces, and stops on SIGTERM", async () => {
    const child = spawn(process.execPath, [cliPath, "tracker", "--port", "0", "--interval", "5"], { stdio: ["ignore", "pipe", "pipe"] })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let text = ""
        const timer = setTimeout(() => reject(new Error(`no URL within 10 s; stdout: ${text}`)), 10_000)
        child.stdout.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8")
          const m = /^Tracker URL: (http:\/\/127\.0\.0\.1:\d+\/announce)\n/.exec(text)
          if (m !== null) {
            clearTimeout(timer)
            resolve(m[1]!)
          }
        })
      })
      const announce = (port: number) =>
        fetch(`${url}?info_hash=${percentEncodeBytes(new Uint8Array(20).fill(0xab))}&peer_id=${percentEncodeBytes(new Uint8Array(20).fill(port & 255))}&port=${port}&left=1`, {
          signal: AbortSignal.timeout(5_000)
        }).then(async (res) => Either.getOrThrow(Bencode.decode(new Uint8Array(await res.arrayBuffer()))) as Bencode.BencodeDict)
      await announce(5001)
      const second = await announce(5002)
      expect(Bencode.get(second, "interval")).toBe(5n)
      expect(Bencode.get(second, "peers")).toEqual(new Uint8Array([127, 0, 0, 1, 5001 >> 8, 5001 & 255]))
    } finally {
      child.kill("SIGTERM")
    }
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 5_000))])
    expect(code).not.toBe("timeout")
  })
})
