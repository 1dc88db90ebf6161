/**
 * `magnet_handshake` and `magnet_info` as subprocesses of the bundled CLI, against an in-process
 * fake tracker and fake peers: exact stdout (the classic contract), the announce query, one-line errors.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { toHex } from "../../src/domain/Bytes.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { ensureBuilt, runCli } from "../support/cli.js"
import { fakePeerId } from "../support/FakePeer.js"
import { makeFakeMetadataPeer } from "../support/FakeMetadataPeer.js"
import { compactPeers, fakeHttpTracker, queryParams } from "../support/FakeTracker.js"
import { multiFileInfo, payloadBytes, pieceHashes, sha1, singleFileInfo } from "../support/torrent.js"

beforeAll(() => ensureBuilt())

const payload = payloadBytes(100_000)
const infoBytes = Bencode.encode(singleFileInfo("magnet.bin", payload, 32768))
const infoHash = toHex(sha1(infoBytes))

const trackerFor = (peers: ReadonlyArray<PeerAddress>) =>
  fakeHttpTracker({ body: Bencode.encode(Bencode.dict({ interval: Bencode.int(60), peers: compactPeers(peers) })) })

const magnetFor = (hash: string, trackerUrl: string) =>
  `magnet:?xt=urn:btih:${hash}&dn=magnet.bin&tr=${encodeURIComponent(trackerUrl)}`

const cli = (args: ReadonlyArray<string>) => Effect.promise(() => runCli(args, 30_000))

describe("magnet_handshake", () => {
  it.scopedLive("prints the peer id and the peer's ut_metadata id, after announcing with left=1", () =>
    Effect.gen(function* () {
      const peer = yield* makeFakeMetadataPeer({ metadata: infoBytes, utMetadataId: 16 })
      const tracker = yield* trackerFor([peer.address])
      const r = yield* cli(["magnet_handshake", magnetFor(infoHash, tracker.url)])
      expect(r).toEqual({ code: 0, stdout: `Peer ID: ${toHex(fakePeerId)}\nPeer Metadata Extension ID: 16\n`, stderr: "" })
      expect(queryParams(tracker.queries[0]!).get("left")).toBe("1")
      expect([...(yield* peer.handshakes)[0]!.reserved]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0])
    }))
})

describe("magnet_info", () => {
  it.scopedLive("prints the same lines as info", () =>
    Effect.gen(function* () {
      const peer = yield* makeFakeMetadataPeer({ metadata: infoBytes })
      const tracker = yield* trackerFor([peer.address])
      const r = yield* cli(["magnet_info", magnetFor(infoHash, tracker.url)])
      const hashes = pieceHashes(payload, 32768)
      const hashLines = Array.from({ length: hashes.length / 20 }, (_, i) => toHex(hashes.subarray(i * 20, i * 20 + 20)))
      expect(r).toEqual({
        code: 0,
        stdout: [`Tracker URL: ${tracker.url}`, "Length: 100000", `Info Hash: ${infoHash}`, "Piece Length: 32768", "Piece Hashes:", ...hashLines, ""].join("\n"),
        stderr: ""
      })
    }))

  it.scopedLive("fetches multi-piece metadata of a multi-file torrent, skipping a peer with the wrong hash", () =>
    Effect.gen(function* () {
      const files = Array.from({ length: 300 }, (_, i) => ({ path: ["dir", `file-${i}.dat`], data: payloadBytes(200, i + 1) }))
      const big = Bencode.encode(multiFileInfo("many", files, 16))
      expect(big.length).toBeGreaterThan(2 * 16384)
      const liar = yield* makeFakeMetadataPeer({ metadata: infoBytes })
      const good = yield* makeFakeMetadataPeer({ metadata: big })
      const tracker = yield* trackerFor([liar.address, good.address])
      const r = yield* cli(["magnet_info", magnetFor(toHex(sha1(big)), tracker.url)])
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`^Tracker URL: .*\nLength: 60000\nInfo Hash: ${toHex(sha1(big))}\nPiece Length: 16\nPiece Hashes:\n`))
      expect(r.stdout.split("\n")).toHaveLength(5 + 3750 + 1 + 300 + 1)
      expect(r.stdout).toContain("\nFiles:\n200 dir/file-0.dat\n")
    }))

  it.scopedLive("fails with one line naming the hash mismatch when the only peer lies", () =>
    Effect.gen(function* () {
      const liar = yield* makeFakeMetadataPeer({ metadata: Bencode.encode(singleFileInfo("other.bin", payload, 16384)) })
      const tracker = yield* trackerFor([liar.address])
      const r = yield* cli(["magnet_info", magnetFor(infoHash, tracker.url)])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(new RegExp(`^error: no peer of ${infoHash} answered: peer 127\\.0\\.0\\.1:\\d+: metadata hash mismatch: expected ${infoHash}, got [0-9a-f]{40}\n$`))
    }))

  it("fails with one line on a link that is not a magnet", async () => {
    const r = await runCli(["magnet_info", "http://example.com"])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe("error: invalid magnet link: it must start with 'magnet:?'\n")
  })
})
