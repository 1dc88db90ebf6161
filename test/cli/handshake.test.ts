/**
 * `handshake <file.torrent> <ip:port>` as a subprocess of the bundled CLI, against a FakePeer that
 * runs in this test process.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { toHex } from "../../src/domain/Bytes.js"
import { ensureBuilt, runCli } from "../support/cli.js"
import { fakePeerId, makeFakePeer } from "../support/FakePeer.js"
import { payloadBytes, sha1, singleFileInfo, torrentBytes } from "../support/torrent.js"

const info = singleFileInfo("sample.bin", payloadBytes(100_000), 32768)
const infoHash = sha1(Bencode.encode(info))

let torrent: string
beforeAll(async () => {
  await ensureBuilt()
  const dir = mkdtempSync(path.join(tmpdir(), "bt-handshake-"))
  torrent = path.join(dir, "sample.torrent")
  writeFileSync(torrent, torrentBytes(info))
  return () => rmSync(dir, { recursive: true, force: true })
})

const handshake = (peer: string) => Effect.promise(() => runCli(["handshake", torrent, peer]))

describe("handshake", () => {
  it.scopedLive("prints the peer id and sends our handshake with the extension bit", () =>
    Effect.gen(function* () {
      const peer = yield* makeFakePeer({ handler: (c) => Stream.runDrain(c.messages) })
      const r = yield* handshake(`127.0.0.1:${peer.address.port}`)
      expect(r).toEqual({ code: 0, stdout: `Peer ID: ${toHex(fakePeerId)}\n`, stderr: "" })
      const [ours] = yield* peer.handshakes
      expect(toHex(ours!.infoHash)).toBe(toHex(infoHash))
      expect(toHex(ours!.reserved)).toBe("0000000000100000")
      expect(Buffer.from(ours!.peerId.subarray(0, 8)).toString("latin1")).toBe("-EB0010-")
    }))

  it.scopedLive("succeeds when the peer closes right after its handshake", () =>
    Effect.gen(function* () {
      const peer = yield* makeFakePeer({ handler: () => Effect.void })
      const r = yield* handshake(`127.0.0.1:${peer.address.port}`)
      expect(r).toEqual({ code: 0, stdout: `Peer ID: ${toHex(fakePeerId)}\n`, stderr: "" })
    }))

  it.scopedLive("exits at once when the peer keeps its socket open", () =>
    Effect.gen(function* () {
      const peer = yield* makeFakePeer({ handler: () => Effect.never })
      const started = Date.now()
      const r = yield* handshake(`127.0.0.1:${peer.address.port}`)
      expect(r.code).toBe(0)
      expect(Date.now() - started).toBeLessThan(10_000)
    }))

  it.scopedLive("fails with one line naming both info hashes on a mismatch", () =>
    Effect.gen(function* () {
      const wrong = new Uint8Array(20).fill(0xab)
      const peer = yield* makeFakePeer({ infoHash: wrong })
      const r = yield* handshake(`127.0.0.1:${peer.address.port}`)
      expect(r).toEqual({
        code: 1,
        stdout: "",
        stderr: `error: peer 127.0.0.1:${peer.address.port}: info hash mismatch: expected ${toHex(infoHash)}, received ${toHex(wrong)}\n`
      })
    }))

  it.scopedLive("fails with one line when the connection is refused", () =>
    Effect.gen(function* () {
      const port = yield* Effect.async<number>((resume) => {
        const srv = net.createServer().listen(0, "127.0.0.1", () => {
          const { port } = srv.address() as net.AddressInfo
          srv.close(() => resume(Effect.succeed(port)))
        })
      })
      const r = yield* handshake(`127.0.0.1:${port}`)
      expect(r).toEqual({ code: 1, stdout: "", stderr: `error: peer 127.0.0.1:${port}: connection refused\n` })
    }))

  it.live("rejects an address that is not ip:port as a usage error", () =>
    Effect.gen(function* () {
      const r = yield* handshake("localhost")
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(/'localhost' is not a peer address/)
    }))
})
