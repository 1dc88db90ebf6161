/**
 * uTP against libtorrent (python3-libtorrent), loopback only, TCP off on libtorrent's side:
 * - we fetch every piece of a 4 MiB torrent from a libtorrent seeder, over PeerWire on our uTP
 *   Transport, and check the bytes;
 * - a libtorrent leecher downloads the torrent from a minimal seeder of ours on uTP.
 *
 * Ports: 28700 (libtorrent seeder), 28711 (libtorrent leecher); ours are ephemeral.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Stream } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { equalBytes } from "../../src/domain/Bytes.js"
import { Message } from "../../src/domain/Wire.js"
import { type PeerConnection, PeerWire } from "../../src/services/PeerWire.js"
import { Transport } from "../../src/services/Transport.js"
import { Udp } from "../../src/services/Udp.js"
import { Utp, utpStats } from "../../src/services/Utp.js"
import { runProcess, startProcess } from "../support/Process.js"
import * as Reference from "../support/ReferenceClients.js"
import { payloadBytes, singleFileInfo, torrentBytes } from "../support/torrent.js"

const loopback = "127.0.0.1"
const pieceLength = 256 * 1024
const blockLength = 16 * 1024
const payload = payloadBytes(4 * 1024 * 1024, 29)
const pieceCount = payload.length / pieceLength
const info = singleFileInfo("payload.bin", payload, pieceLength)
const infoHash = new Uint8Array(createHash("sha1").update(Bencode.encode(info)).digest())
const peerId = new TextEncoder().encode("-EB0010-utpinterop01")
const utpOnly = {
  enable_outgoing_tcp: false,
  enable_incoming_tcp: false,
  enable_outgoing_utp: true,
  enable_incoming_utp: true
}

/** A folder with the payload and its .torrent, removed with the scope. */
const fixture = Effect.acquireRelease(
  Effect.promise(async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "utp-interop-"))
    await fs.mkdir(path.join(dir, "data"))
    await fs.writeFile(path.join(dir, "data", "payload.bin"), payload)
    await fs.writeFile(path.join(dir, "test.torrent"), torrentBytes(info, {}))
    return dir
  }),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

/** PeerWire on our uTP Transport, on a socket of its own. */
const utpWire = Effect.gen(function* () {
  const context = yield* Layer.build(Utp.layer({ host: loopback, port: 0 }).pipe(Layer.provide(Udp.Live)))
  const transport = Context.get(context, Transport)
  return { transport, wire: yield* Effect.provide(PeerWire, PeerWire.Live.pipe(Layer.provide(Layer.succeed(Transport, transport)))) }
})

/** Asks for every block once unchoked, 64 at a time; the payload as it arrived. */
const fetchAll = (conn: PeerConnection) =>
  Effect.gen(function* () {
    const out = new Uint8Array(payload.length)
    const blocks = payload.length / blockLength
    let next = 0
    let received = 0
    const requestMore = () => {
      const batch: Array<Message> = []
      while (next < blocks && next - received < 64) {
        const offset = next++ * blockLength
        batch.push(Message.request(Math.floor(offset / pieceLength), offset % pieceLength, blockLength))
      }
      conn.sendNow(batch)
    }
    yield* conn.send([Message.interested])
    yield* Stream.runForEachWhile(conn.messages, (m) =>
      Effect.sync(() => {
        if (m._tag === "Unchoke") requestMore()
        if (m._tag === "Piece") {
          out.set(m.block, m.index * pieceLength + m.begin)
          received++
          requestMore()
        }
        return received < blocks
      }))
    return out
  })

/** Serves the payload to one inbound connection: all pieces, unchoked, every request answered. */
const serve = (conn: PeerConnection) =>
  Effect.gen(function* () {
    yield* conn.send([Message.bitfield(new Uint8Array(pieceCount / 8).fill(0xff)), Message.unchoke])
    yield* Stream.runForEach(conn.messages, (m) =>
      m._tag === "Request"
        ? conn.send([Message.piece(m.index, m.begin, payload.subarray(m.index * pieceLength + m.begin, m.index * pieceLength + m.begin + m.length))])
        : Effect.void
    )
  })

describe("uTP interop with libtorrent (loopback, TCP off)", () => {
  it.live("fetches every piece from a libtorrent seeder over uTP, exactly", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* fixture
        const seeder = Reference.libtorrent("seed", path.join(dir, "test.torrent"), path.join(dir, "data"), loopback, 28700, { settings: utpOnly })
        yield* startProcess(seeder.file, seeder.args, { ready: /lt: seeding/, readyTimeoutMs: 30_000 })
        const { wire } = yield* utpWire
        const conn = yield* wire.connect({ host: loopback, port: 28700 }, { infoHash, peerId, pieceCount })
        const got = yield* fetchAll(conn)
        expect(got.length).toBe(payload.length)
        expect(equalBytes(got, payload)).toBe(true)
      })
    ).pipe(Effect.timeout("120 seconds")))

  it.live("a libtorrent leecher downloads the torrent from our uTP seeder", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* fixture
        const { transport, wire } = yield* utpWire
        const listening = yield* transport.listen({ host: loopback, port: 0 })
        const lookup = () => ({ peerId, reserved: new Uint8Array(8), pieceCount })
        let servedOverUtp = false
        yield* Effect.forkScoped(
          Stream.runForEach(listening.connections, (duplex) =>
            Effect.forkScoped(
              Effect.scoped(
                Effect.flatMap(wire.accept(duplex, { lookup }), (conn) => {
                  servedOverUtp ||= utpStats(duplex) !== undefined
                  return serve(conn)
                })
              ).pipe(Effect.ignore)
            ))
        )
        const out = path.join(dir, "out")
        const leecher = Reference.libtorrent("leech", path.join(dir, "test.torrent"), out, loopback, 28711, {
          settings: utpOnly,
          peers: [`${loopback}:${listening.port}`],
          timeoutS: 90
        })
        const result = yield* runProcess(leecher.file, leecher.args, { timeoutMs: 100_000 })
        expect(result.code, result.stdout + result.stderr).toBe(0)
        expect(servedOverUtp).toBe(true)
        const downloaded = new Uint8Array(yield* Effect.promise(() => fs.readFile(path.join(out, "payload.bin"))))
        expect(equalBytes(downloaded, payload)).toBe(true)
      })
    ).pipe(Effect.timeout("120 seconds")))
})
