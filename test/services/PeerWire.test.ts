import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Layer, Option, Scope, Stream, TestClock } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import { encodeMessages, makeReserved, Message } from "../../src/domain/Wire.js"
import { PeerError, PeerWire } from "../../src/services/PeerWire.js"
import { Transport } from "../../src/services/Transport.js"
import { dialFakePeer, type FakeConnection, fakePeerId, makeFakePeer } from "../support/FakePeer.js"
import { networks, wireOver } from "../support/WireNetworks.js"

const infoHash = Uint8Array.from({ length: 20 }, (_, i) => i + 1)
const otherHash = new Uint8Array(20).fill(0xee)
const ourId = Uint8Array.from(Buffer.from("-EB0010-abcdefghijkl", "latin1"))
const options = { infoHash, peerId: ourId, pieceCount: 64 }

const withWire = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, PeerWire.Live.pipe(Layer.provideMerge(Transport.Tcp)))

const expectPeerError = (e: unknown, reason: PeerError["reason"]): PeerError => {
  expect(e).toBeInstanceOf(PeerError)
  const error = e as PeerError
  expect(error.reason).toBe(reason)
  return error
}

/** A port nothing listens on: bound, then closed. */
const closedPort = Effect.async<number>((resume) => {
  const srv = net.createServer()
  srv.listen(0, "127.0.0.1", () => {
    const { port } = srv.address() as net.AddressInfo
    srv.close(() => resume(Effect.succeed(port)))
  })
})

/** A listener whose accepted connections come out one at a time, for the inbound path. */
const listener = Effect.gen(function* () {
  const listening = yield* (yield* Transport).listen({ host: "127.0.0.1", port: 0 })
  return { address: { host: "127.0.0.1", port: listening.port }, next: Effect.map(Stream.runHead(listening.connections), Option.getOrThrow) }
})

describe("PeerWire.connect", () => {
  it.scopedLive("exchanges handshakes, sending ours alone, and reads the remote peer id", () =>
    withWire(
      Effect.gen(function* () {
        const answered = yield* Deferred.make<number>()
        const peer = yield* makeFakePeer({
          reserved: makeReserved({ extensions: true, fast: true }),
          answerDelay: "50 millis",
          handler: (c) => Deferred.succeed(answered, c.bytesReceivedBeforeAnswer).pipe(Effect.zipRight(Stream.runDrain(c.messages)))
        })
        const wire = yield* PeerWire
        const reserved = makeReserved({ extensions: true })
        const conn = yield* wire.connect(peer.address, { ...options, reserved })
        expect(toHex(conn.remote.peerId)).toBe(toHex(fakePeerId))
        expect([...conn.remote.reserved]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0x04])
        expect(conn.address).toEqual(peer.address)
        // the fake saw exactly our 68-byte handshake before it answered (aria2 drops a peer whose first read holds more)
        expect(yield* Deferred.await(answered)).toBe(68)
        const [theirs] = yield* peer.handshakes
        expect(toHex(theirs!.infoHash)).toBe(toHex(infoHash))
        expect(toHex(theirs!.peerId)).toBe(toHex(ourId))
        expect([...theirs!.reserved]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0])
      })
    ))

  it.scopedLive("fails with InfoHashMismatch naming both hashes", () =>
    withWire(
      Effect.gen(function* () {
        const peer = yield* makeFakePeer({ infoHash: otherHash })
        const e = yield* Effect.flip((yield* PeerWire).connect(peer.address, options))
        const error = expectPeerError(e, "InfoHashMismatch")
        expect(error.expected).toBe(toHex(infoHash))
        expect(error.received).toBe(toHex(otherHash))
        expect(error.message).toBe(
          `peer 127.0.0.1:${peer.address.port}: info hash mismatch: expected ${toHex(infoHash)}, received ${toHex(otherHash)}`
        )
      })
    ))

  it.scoped("fails with HandshakeTimeout when the peer accepts but never answers (TestClock)", () =>
    withWire(
      Effect.gen(function* () {
        const peer = yield* makeFakePeer({ handshake: "never" })
        const fiber = yield* Effect.fork(Effect.scoped((yield* PeerWire).connect(peer.address, options)))
        yield* peer.nextHandshake // our handshake is out: we are waiting for theirs
        yield* TestClock.adjust("9 seconds")
        expect(fiber.unsafePoll()).toBeNull()
        yield* TestClock.adjust("1 second")
        const e = yield* Effect.flip(Fiber.join(fiber))
        expect(expectPeerError(e, "HandshakeTimeout").message).toMatch(/^peer 127\.0\.0\.1:\d+: no handshake received in time$/)
      })
    ))

  it.scopedLive("fails with ConnectionRefused on a closed port", () =>
    withWire(
      Effect.gen(function* () {
        const port = yield* closedPort
        const e = yield* Effect.flip((yield* PeerWire).connect({ host: "127.0.0.1", port }, options))
        expect(expectPeerError(e, "ConnectionRefused").message).toBe(`peer 127.0.0.1:${port}: connection refused`)
      })
    ))

  it.scopedLive("gives a connection when the peer sends its handshake and closes at once; its stream fails Closed", () =>
    withWire(
      Effect.gen(function* () {
        const peer = yield* makeFakePeer({ handler: () => Effect.void })
        const conn = yield* (yield* PeerWire).connect(peer.address, options)
        expect(toHex(conn.remote.peerId)).toBe(toHex(fakePeerId))
        const e = yield* Effect.flip(Stream.runDrain(conn.messages))
        expect(expectPeerError(e, "Closed").message).toMatch(/connection closed/)
      })
    ))

  it.scopedLive("delivers the messages before the close, then fails Closed", () =>
    withWire(
      Effect.gen(function* () {
        const peer = yield* makeFakePeer({ handler: (c) => c.send([Message.have(1), Message.unchoke]) })
        const conn = yield* (yield* PeerWire).connect(peer.address, options)
        const seen: Array<Message> = []
        const e = yield* Effect.flip(Stream.runForEach(conn.messages, (m) => Effect.sync(() => seen.push(m))))
        expect(seen).toEqual([Message.have(1), Message.unchoke])
        expectPeerError(e, "Closed")
      })
    ))

  it.scopedLive("fails the stream with Protocol on a frame length of 0xFFFFFFF0", () =>
    withWire(
      Effect.gen(function* () {
        const peer = yield* makeFakePeer({
          handler: (c) => c.sendRaw(Uint8Array.of(0xff, 0xff, 0xff, 0xf0)).pipe(Effect.zipRight(Effect.never))
        })
        const conn = yield* (yield* PeerWire).connect(peer.address, options)
        const e = yield* Effect.flip(Stream.runDrain(conn.messages))
        expect(expectPeerError(e, "Protocol").detail).toMatch(/4294967280 bytes exceeds the limit/)
      })
    ))

  it.scopedLive("reassembles messages split at odd boundaries, and the handshake's tail", () =>
    withWire(
      Effect.gen(function* () {
        const batch = [
          Message.bitfield(Uint8Array.of(0xf0)),
          Message.unchoke,
          Message.piece(2, 16384, Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff)),
          Message.keepAlive,
          Message.have(3),
          Message.extended(0, Uint8Array.of(100, 101))
        ]
        const bytes = encodeMessages(batch)
        const sizes = [1, 3, 7, 2, 4093, 5, 1]
        const peer = yield* makeFakePeer({
          handler: (c) =>
            Effect.gen(function* () {
              let at = 0
              for (let i = 0; at < bytes.length; i++) {
                const n = sizes[i % sizes.length]!
                yield* c.sendRaw(bytes.subarray(at, at + n))
                at += n
                yield* Effect.sleep("1 millis")
              }
              yield* Effect.never
            })
        })
        const conn = yield* (yield* PeerWire).connect(peer.address, options)
        const got = yield* Stream.runCollect(Stream.take(conn.messages, batch.length))
        expect(Chunk.toReadonlyArray(got)).toEqual(batch)
      })
    ))

  it.scopedLive("keeps bytes that arrive with the handshake for the message stream", () =>
    withWire(
      Effect.gen(function* () {
        // the fake writes its handshake and a message back to back; node often merges them into one read
        const peer = yield* makeFakePeer({ handler: (c) => c.send([Message.haveAll]).pipe(Effect.zipRight(Effect.never)) })
        const conn = yield* (yield* PeerWire).connect(peer.address, options)
        const first = yield* Stream.runHead(conn.messages)
        expect(first).toEqual(Option.some(Message.haveAll))
      })
    ))

  it.scopedLive("sends a batch that the peer decodes in order", () =>
    withWire(
      Effect.gen(function* () {
        const received = yield* Deferred.make<ReadonlyArray<Message>>()
        const peer = yield* makeFakePeer({
          handler: (c) =>
            Stream.runCollect(Stream.take(c.messages, 4)).pipe(
              Effect.flatMap((ms) => Deferred.succeed(received, Chunk.toReadonlyArray(ms)))
            )
        })
        const conn = yield* (yield* PeerWire).connect(peer.address, options)
        const batch = [Message.interested, Message.request(0, 0, 16384), Message.request(0, 16384, 16384), Message.keepAlive]
        yield* conn.send(batch.slice(0, 2))
        yield* conn.send(batch.slice(2))
        expect(yield* Deferred.await(received)).toEqual(batch)
      })
    ))

  it.scopedLive("throttles a peer that sends 64 MiB while we do not read", () =>
    withWire(
      Effect.gen(function* () {
        const connection = yield* Deferred.make<FakeConnection>()
        const block = new Uint8Array(16384)
        const total = 64 * 1024 * 1024
        const peer = yield* makeFakePeer({
          handler: (c) =>
            Effect.gen(function* () {
              yield* Deferred.succeed(connection, c)
              for (let i = 0; i * block.length < total; i++) yield* c.send([Message.piece(i >> 4, (i & 15) * 16384, block)])
            })
        })
        const conn = yield* (yield* PeerWire).connect(peer.address, { ...options, pieceCount: 4096 })
        const fake = yield* Deferred.await(connection)
        yield* Effect.sleep("500 millis")
        const sentWhileIdle = fake.bytesSent()
        // kernel socket buffers on loopback hold a few MiB; a flowing reader would have taken all 64
        expect(sentWhileIdle).toBeGreaterThan(0)
        expect(sentWhileIdle).toBeLessThan(16 * 1024 * 1024)
        // reading lets the sender go on: it was throttled, not stuck
        yield* Stream.runDrain(Stream.take(conn.messages, 2048))
        yield* Effect.sleep("50 millis")
        expect(fake.bytesSent()).toBeGreaterThan(sentWhileIdle)
      })
    ))
})

describe("PeerWire.accept", () => {
  const lookup = (hash: Uint8Array) =>
    toHex(hash) === toHex(infoHash) ? { peerId: ourId, reserved: makeReserved({ extensions: true }), pieceCount: 64 } : undefined

  it.scopedLive("reads the remote handshake, looks the torrent up and answers", () =>
    withWire(
      Effect.gen(function* () {
        const server = yield* listener
        const remote = yield* dialFakePeer(server.address, { infoHash, reserved: makeReserved({ fast: true }) })
        const conn = yield* (yield* PeerWire).accept(yield* server.next, { lookup })
        expect(toHex(conn.infoHash)).toBe(toHex(infoHash))
        expect(toHex(conn.remote.peerId)).toBe(toHex(fakePeerId))
        expect([...conn.remote.reserved]).toEqual([0, 0, 0, 0, 0, 0, 0, 4])
        const ours = yield* remote.handshake
        expect(toHex(ours.peerId)).toBe(toHex(ourId))
        expect(toHex(ours.infoHash)).toBe(toHex(infoHash))
        expect([...ours.reserved]).toEqual([0, 0, 0, 0, 0, 0x10, 0, 0])
        // and messages flow both ways
        yield* conn.send([Message.haveAll])
        expect(yield* Stream.runHead(remote.messages)).toEqual(Option.some(Message.haveAll))
        yield* remote.send([Message.interested])
        expect(yield* Stream.runHead(conn.messages)).toEqual(Option.some(Message.interested))
      })
    ))

  it.scopedLive("rejects an unknown info hash with Protocol and closes the socket", () =>
    withWire(
      Effect.gen(function* () {
        const server = yield* listener
        const remote = yield* dialFakePeer(server.address, { infoHash: otherHash })
        const e = yield* Effect.flip(Effect.scoped((yield* PeerWire).accept(yield* server.next, { lookup })))
        expect(expectPeerError(e, "Protocol").detail).toBe(`unknown info hash ${toHex(otherHash)}`)
        yield* remote.closed
        expect(remote.bytesReceived()).toBe(0)
      })
    ))

  it.scopedLive("with encryption disabled, rejects an encrypted (MSE) first message with Protocol and closes the socket", () =>
    withWire(
      Effect.gen(function* () {
        const server = yield* listener
        const mse = Uint8Array.from({ length: 96 }, (_, i) => (i * 37 + 0xa7) & 0xff)
        const remote = yield* dialFakePeer(server.address, { infoHash, firstBytes: mse })
        const e = yield* Effect.flip((yield* PeerWire).accept(yield* server.next, { lookup, encryption: "disable" }))
        expect(expectPeerError(e, "Protocol").detail).toMatch(/encryption is disabled/)
        yield* remote.closed // closed at once, not when the caller's scope ends
      })
    ))
})

for (const network of networks) {
  describe(`PeerWire over ${network.name}`, () => {
    const lookup = (hash: Uint8Array) =>
      toHex(hash) === toHex(infoHash) ? { peerId: otherHash, reserved: makeReserved({ fast: true }), pieceCount: 4096 } : undefined

    /** A listening PeerWire and a dialling one; `accepted` takes the next inbound connection. */
    const pair = Effect.gen(function* () {
      const { server, client, host } = yield* network.make
      const listening = yield* server.listen({ host, port: 0 })
      const inbound = yield* wireOver(server)
      const accepted = Effect.flatMap(
        Effect.map(Stream.runHead(listening.connections), Option.getOrThrow),
        (duplex) => inbound.accept(duplex, { lookup })
      )
      const address = { host, port: listening.port }
      const dialler = yield* wireOver(client)
      /** Both ends of one connection: [dialled, accepted]. */
      const connected = Effect.all([dialler.connect(address, { ...options, pieceCount: 4096 }), accepted], { concurrency: 2 })
      return { address, dialler, accepted, connected }
    })

    it.scopedLive("connects and accepts: handshakes both ways, then messages both ways", () =>
      Effect.gen(function* () {
        const [outbound, inbound] = yield* Effect.flatMap(pair, (p) => p.connected)
        expect(toHex(outbound.remote.peerId)).toBe(toHex(otherHash))
        expect(toHex(inbound.remote.peerId)).toBe(toHex(ourId))
        expect(toHex(inbound.infoHash)).toBe(toHex(infoHash))
        yield* outbound.send([Message.interested, Message.request(1, 0, 16384)])
        const got = yield* Stream.runCollect(Stream.take(inbound.messages, 2))
        expect(Chunk.toReadonlyArray(got)).toEqual([Message.interested, Message.request(1, 0, 16384)])
        inbound.sendNow([Message.unchoke])
        expect(yield* Stream.runHead(outbound.messages)).toEqual(Option.some(Message.unchoke))
      }))

    it.scopedLive("fails a dial with ConnectionRefused where nothing listens", () =>
      Effect.gen(function* () {
        const { address, dialler } = yield* pair
        const e = yield* Effect.flip(dialler.connect({ ...address, port: address.port + 1 }, options))
        expect(expectPeerError(e, "ConnectionRefused").message).toBe(`peer ${address.host}:${address.port + 1}: connection refused`)
      }))

    it.scopedLive("rejects an unknown info hash; the dialler sees the connection closed during the handshake", () =>
      Effect.gen(function* () {
        const { address, dialler, accepted } = yield* pair
        const [outbound, inbound] = yield* Effect.all(
          [Effect.flip(dialler.connect(address, { ...options, infoHash: otherHash })), Effect.flip(Effect.scoped(accepted))],
          { concurrency: 2 }
        )
        expect(expectPeerError(inbound, "Protocol").detail).toBe(`unknown info hash ${toHex(otherHash)}`)
        expect(outbound).toBeInstanceOf(PeerError)
        expect(["Closed", "HandshakeTimeout"]).toContain((outbound as PeerError).reason)
      }))

    it.scopedLive("hands every read's messages to consume's handler, then fails Closed when the peer goes", () =>
      Effect.gen(function* () {
        const { address, dialler, accepted } = yield* pair
        const acceptedScope = yield* Scope.make()
        const [outbound, inbound] = yield* Effect.all(
          [dialler.connect(address, { ...options, pieceCount: 4096 }), Scope.extend(accepted, acceptedScope)],
          { concurrency: 2 }
        )
        const block = Uint8Array.from({ length: 16384 }, (_, i) => i & 0xff)
        const blocks = 256
        const all = yield* Deferred.make<void>()
        const begins: Array<number> = []
        let intact = true
        const consumer = yield* Effect.fork(outbound.consume((messages) => {
          for (const m of messages) {
            if (m._tag !== "Piece") continue
            begins.push(m.begin)
            intact &&= m.block.length === block.length && m.block[100] === 100 && m.block[16383] === 0xff
          }
          if (begins.length === blocks) Deferred.unsafeDone(all, Exit.void)
          return undefined
        }))
        for (let i = 0; i < blocks; i += 16) {
          yield* inbound.send(Array.from({ length: 16 }, (_, j) => Message.piece(0, (i + j) * 16384, block)))
        }
        yield* Deferred.await(all)
        expect(begins).toEqual(Array.from({ length: blocks }, (_, i) => i * 16384))
        expect(intact).toBe(true)
        yield* Scope.close(acceptedScope, Exit.void)
        expectPeerError(yield* Effect.flip(Fiber.join(consumer)), "Closed")
      }))

    it.scopedLive("throttles a sender while the receiver does not read", () =>
      Effect.gen(function* () {
        const [outbound, inbound] = yield* Effect.flatMap(pair, (p) => p.connected)
        const block = new Uint8Array(16384)
        let sent = 0
        yield* Effect.fork(Effect.forever(
          Effect.zipRight(inbound.send([Message.piece(0, 0, block)]), Effect.sync(() => sent += block.length))
        ))
        yield* Effect.sleep("300 millis")
        const sentWhileIdle = sent
        expect(sentWhileIdle).toBeGreaterThan(0)
        expect(sentWhileIdle).toBeLessThan(16 * 1024 * 1024)
        yield* Stream.runDrain(Stream.take(outbound.messages, 512))
        yield* Effect.sleep("50 millis")
        expect(sent).toBeGreaterThan(sentWhileIdle)
      }))
  })
}
