import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Option, Queue, Stream, TestClock } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import { CryptoMethod, MseError } from "../../src/domain/Mse.js"
import { noHints, type PeerHints } from "../../src/domain/Peer.js"
import { makeReserved, Message } from "../../src/domain/Wire.js"
import { read } from "../../src/services/DuplexIo.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import * as Mse from "../../src/services/Mse.js"
import { dialPolicy, type EncryptionPolicy, PeerError, skeyLookup } from "../../src/services/PeerWire.js"
import type { Duplex } from "../../src/services/Transport.js"
import { networks, wireOver } from "../support/WireNetworks.js"

const infoHash = Uint8Array.from({ length: 20 }, (_, i) => i + 1)
const otherHash = new Uint8Array(20).fill(0xee)
const ourId = Uint8Array.from(Buffer.from("-EB0010-abcdefghijkl", "latin1"))
const theirId = new Uint8Array(20).fill(0x42)
const pieceCount = 4096
const lookup = (hash: Uint8Array) =>
  toHex(hash) === toHex(infoHash) ? { peerId: theirId, reserved: makeReserved({ fast: true }), pieceCount } : undefined
const skey = skeyLookup([otherHash, infoHash])
const prefersEncryption: PeerHints = { ...noHints, encryption: true }

/** Random bytes that always give the longest padding (512), to test the sync bounds. */
const longestPadding: Mse.RandomBytes = (n) => (n === 2 ? Uint8Array.from([0x02, 0x00]) : new Uint8Array(n).fill(0x5a))

/** Blocks of 16 KiB: several of them span reads, so the keystream runs across reads and writes. */
const block = (i: number) => Message.piece(7, i * 16384, Uint8Array.from({ length: 16384 }, (_, k) => (k * 31 + i) & 0xff))
const blocks = [block(0), block(1), block(2), block(3)]

for (const network of networks) {
  describe(`MSE over ${network.name}`, () => {
    /** A dialling PeerWire with `dialPolicy` (and `hints`) against a listening one accepting every connection with `acceptPolicy`. */
    const connectWith = (dialPolicy: EncryptionPolicy, acceptPolicy: EncryptionPolicy, hints: PeerHints = noHints) =>
      Effect.gen(function* () {
        const { client, host, server } = yield* network.make
        const listening = yield* server.listen({ host, port: 0 })
        const inbound = yield* wireOver(server)
        const accepted = yield* Queue.unbounded<Either.Either<Effect.Effect.Success<ReturnType<typeof inbound.accept>>, PeerError>>()
        yield* listening.connections.pipe(
          Stream.runForEach((duplex) =>
            Effect.either(inbound.accept(duplex, { lookup, skey, encryption: acceptPolicy })).pipe(
              Effect.flatMap((r) => Queue.offer(accepted, r))
            )),
          Effect.forkScoped
        )
        const dialler = yield* wireOver(client)
        const outbound = yield* Effect.either(
          dialler.connect({ host, port: listening.port }, { infoHash, peerId: ourId, pieceCount, encryption: dialPolicy, hints })
        )
        return { outbound, accepted }
      })

    const cases: ReadonlyArray<[EncryptionPolicy, EncryptionPolicy, Mse.Encryption, PeerHints?]> = [
      ["allow", "allow", "plaintext"],
      ["disable", "prefer", "plaintext"],
      ["prefer", "allow", "mse-plaintext"],
      ["prefer", "prefer", "mse-rc4"],
      ["require", "allow", "mse-rc4"],
      ["prefer", "require", "mse-rc4"],
      // the receiver drops the plain handshake: the dialler comes back with MSE
      ["allow", "require", "mse-rc4"],
      // the receiver refuses MSE: the dialler comes back in plaintext
      ["prefer", "disable", "plaintext"],
      // told it takes MSE (a PEX flag): "allow" dials MSE first, as "prefer" does
      ["allow", "allow", "mse-plaintext", prefersEncryption],
      // told wrongly: the receiver refuses MSE, and the plain handshake comes next
      ["allow", "disable", "plaintext", prefersEncryption],
      ["disable", "allow", "plaintext", prefersEncryption]
    ]
    for (const [dialPolicy, acceptPolicy, expected, hints] of cases) {
      const told = hints === undefined ? "" : " (told it takes MSE)"
      it.scopedLive(`dialling with ${dialPolicy}${told}, accepting with ${acceptPolicy}: ${expected}, messages intact both ways`, () =>
        Effect.gen(function* () {
          const { accepted, outbound } = yield* connectWith(dialPolicy, acceptPolicy, hints)
          const out = Either.getOrThrow(outbound)
          let inbound = yield* Queue.take(accepted)
          while (Either.isLeft(inbound)) inbound = yield* Queue.take(accepted) // the refused first attempt
          const into = inbound.right
          expect(out.encryption).toBe(expected)
          expect(into.encryption).toBe(expected)
          expect(toHex(out.remote.peerId)).toBe(toHex(theirId))
          expect(toHex(into.remote.peerId)).toBe(toHex(ourId))
          expect(toHex(into.infoHash)).toBe(toHex(infoHash))
          yield* out.send([Message.interested, ...blocks, Message.have(3)])
          const got = yield* Stream.runCollect(Stream.take(into.messages, 6))
          expect(Chunk.toReadonlyArray(got)).toEqual([Message.interested, ...blocks, Message.have(3)])
          yield* into.send(blocks)
          into.sendNow([Message.unchoke])
          const back = yield* Stream.runCollect(Stream.take(out.messages, 5))
          expect(Chunk.toReadonlyArray(back)).toEqual([...blocks, Message.unchoke])
        }))
    }

    for (const [dialPolicy, acceptPolicy, refusal] of [
      ["disable", "require", /connection closed|plaintext connection refused/],
      ["require", "disable", /connection closed|encrypted connection refused/]
    ] as const) {
      it.scopedLive(`dialling with ${dialPolicy}, accepting with ${acceptPolicy}: refused on both sides`, () =>
        Effect.gen(function* () {
          const { accepted, outbound } = yield* connectWith(dialPolicy, acceptPolicy)
          expect(Either.isLeft(outbound)).toBe(true)
          const inbound = yield* Queue.take(accepted)
          expect(Either.isLeft(inbound) && inbound.left.message).toMatch(refusal)
        }))
    }
  })
}

describe("dialPolicy", () => {
  it("dials a peer told to take MSE as \"prefer\" under \"allow\" alone; other policies stay as set", () => {
    const policies: ReadonlyArray<EncryptionPolicy> = ["allow", "prefer", "require", "disable"]
    expect(policies.map((encryption) => dialPolicy({ encryption, hints: prefersEncryption }))).toEqual(["prefer", "prefer", "require", "disable"])
    expect(policies.map((encryption) => dialPolicy({ encryption, hints: { ...noHints, utp: true, seed: true } }))).toEqual(policies)
    expect([dialPolicy({}), dialPolicy({ hints: prefersEncryption })]).toEqual(["allow", "prefer"])
  })
})

describe("the MSE handshake", () => {
  /** Both ends of one raw connection over the memory network. */
  const rawPair = Effect.gen(function* () {
    const network = yield* MemoryNetwork.make({ link: { latency: "1 millis" } })
    const listening = yield* network.host("127.0.0.2").listen({ host: "127.0.0.2", port: 0 })
    const dialled = yield* network.host("127.0.0.3").dial({ host: "127.0.0.2", port: listening.port })
    const answered = yield* Effect.map(Stream.runHead(listening.connections), Option.getOrThrow)
    return { dialled, answered }
  })

  const respondTo = (duplex: Duplex, options: Partial<Mse.RespondOptions> = {}) =>
    Effect.flatMap(Mse.sniff(duplex), (s) =>
      s._tag === "Plain"
        ? Effect.dieMessage("expected MSE")
        : Mse.respond(duplex, s.firstBytes, { skey, preference: [CryptoMethod.rc4], ...options }))

  it.scopedLive("syncs across the longest padding on both sides", () =>
    Effect.gen(function* () {
      const { answered, dialled } = yield* rawPair
      const [a, b] = yield* Effect.all([
        Mse.initiate(dialled, { infoHash, allowPlaintext: true, random: longestPadding }),
        respondTo(answered, { random: longestPadding })
      ], { concurrency: 2 })
      expect([a.encryption, b.encryption]).toEqual(["mse-rc4", "mse-rc4"])
      expect(toHex(b.infoHash)).toBe(toHex(infoHash))
    }))

  for (const [method, name] of [[CryptoMethod.rc4, "RC4"], [CryptoMethod.plaintext, "plaintext"]] as const) {
    it.scopedLive(`hands the receiver the initial payload (always RC4) before what follows (${name} selected)`, () =>
      Effect.gen(function* () {
        const { answered, dialled } = yield* rawPair
        const initialPayload = Uint8Array.from(Buffer.from("initial payload"))
        const [a, b] = yield* Effect.all([
          Mse.initiate(dialled, { infoHash, allowPlaintext: true, initialPayload }),
          respondTo(answered, { preference: [method] })
        ], { concurrency: 2 })
        a.duplex.write(Uint8Array.from(Buffer.from(" and then the stream")))
        const expected = "initial payload and then the stream"
        const got = yield* read({ duplex: b.duplex, peer: "initiator" }, expected.length)
        expect(Buffer.from(got!).toString()).toBe(expected)
        expect(b.encryption).toBe(method === CryptoMethod.rc4 ? "mse-rc4" : "mse-plaintext")
      }))
  }

  it.scopedLive("fails with NoCommonMethod when the receiver takes only what the initiator does not provide", () =>
    Effect.gen(function* () {
      const { answered, dialled } = yield* rawPair
      yield* Effect.fork(Mse.initiate(dialled, { infoHash, allowPlaintext: false }))
      const e = yield* Effect.flip(respondTo(answered, { preference: [CryptoMethod.plaintext] }))
      expect(e).toBeInstanceOf(MseError)
      expect((e as MseError).reason).toBe("NoCommonMethod")
    }))

  it.scopedLive("fails with UnknownInfoHash for a torrent we do not serve", () =>
    Effect.gen(function* () {
      const { answered, dialled } = yield* rawPair
      yield* Effect.fork(Mse.initiate(dialled, { infoHash: new Uint8Array(20).fill(9), allowPlaintext: true }))
      const e = yield* Effect.flip(respondTo(answered))
      expect((e as MseError).reason).toBe("UnknownInfoHash")
    }))

  it.scopedLive("gives up the sync search after 512 bytes of padding and the marker", () =>
    Effect.gen(function* () {
      const { answered, dialled } = yield* rawPair
      // a public key and then far more padding than allowed, never the marker
      dialled.write(Uint8Array.from({ length: 96 + 2000 }, (_, i) => (i * 7 + 3) & 0xff))
      const e = yield* Effect.flip(respondTo(answered))
      expect((e as MseError).reason).toBe("SyncNotFound")
      expect(e.message).toMatch(/within 532 bytes/)
    }))

  it.scoped("PeerWire.accept gives up an MSE handshake that stalls after the public key (TestClock)", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork.make()
      const listening = yield* network.host("127.0.0.2").listen({ host: "127.0.0.2", port: 0 })
      const dialled = yield* network.host("127.0.0.3").dial({ host: "127.0.0.2", port: listening.port })
      dialled.write(new Uint8Array(96).fill(0x77))
      const answered = yield* Effect.map(Stream.runHead(listening.connections), Option.getOrThrow)
      const wire = yield* wireOver(network.host("127.0.0.2"))
      const fiber = yield* Effect.fork(Effect.scoped(wire.accept(answered, { lookup, skey })))
      yield* TestClock.adjust("9 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      const e = yield* Effect.flip(Fiber.join(fiber))
      expect(e).toBeInstanceOf(PeerError)
      expect(e.reason).toBe("HandshakeTimeout")
    }))
})
