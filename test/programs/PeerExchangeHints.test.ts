/**
 * The flags of a ut_pex entry steer how the torrent dials that peer, on the in-memory network
 * (TCP and uTP) under TestClock: a peer told to speak uTP is dialled over uTP first, one told to
 * take MSE gets an MSE handshake first (policy "allow"), a wrong flag still connects through the
 * fallback, and a seed told of is not dialled while we seed ourselves.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream, TestClock } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { encodeExtendedHandshake, ourUtPexId, utPexName } from "../../src/domain/Extension.js"
import type { Info } from "../../src/domain/Metainfo.js"
import { makePeerId } from "../../src/domain/Peer.js"
import { encodePex, PexFlag, type PexPeer } from "../../src/domain/Pex.js"
import { makeReserved, Message } from "../../src/domain/Wire.js"
import type { DownloadEvent } from "../../src/programs/Download.js"
import { makeDualTransport } from "../../src/services/DualTransport.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { makeMemoryUdpNetwork, type MemoryUdpNetwork } from "../../src/services/MemoryUdpNetwork.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import { Transport } from "../../src/services/Transport.js"
import { handInfo } from "../support/handInfo.js"
import { addressOf, chokingPeer, hostLayer, port, seeded, simClient } from "../support/SimulatedSwarm.js"
import { payloadBytes } from "../support/torrent.js"

const client = "127.6.0.100"
const teller = "127.6.0.1"
const clientPort = port + 1

const torrent = (seed: number) => handInfo(65536, [{ path: ["payload.bin"], data: payloadBytes(4 * 65536, seed) }])

/** TCP and uTP on one simulated host, as a torrent client has them. */
const dualHost = (network: MemoryNetwork, udp: MemoryUdpNetwork, address: string) =>
  makeDualTransport(network.host(address), udp.host(address))

/** A peer that answers our handshake with the extension bit and tells of `added` in one ut_pex message. */
const pexTeller = (network: MemoryNetwork, info: Info, added: ReadonlyArray<PexPeer>) =>
  Effect.gen(function* () {
    const wire = yield* PeerWire
    const listening = yield* (yield* Transport).listen({ host: teller, port })
    const local = { peerId: makePeerId(() => new Uint8Array(12).fill(9)), reserved: makeReserved({ extensions: true }), pieceCount: info.pieceCount }
    const serve = (duplex: Parameters<typeof wire.accept>[0]) =>
      Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* wire.accept(duplex, { lookup: () => local })
          conn.sendNow([
            Message.extended(0, encodeExtendedHandshake({ m: new Map([[utPexName, 1]]) })),
            Message.extended(ourUtPexId, encodePex({ added, dropped: [] }))
          ])
          yield* Stream.runDrain(conn.messages)
        })
      ).pipe(Effect.ignore, Effect.forkScoped)
    yield* listening.connections.pipe(Stream.runForEach(serve), Effect.forkScoped)
  }).pipe(Effect.provide(hostLayer(network, teller)))

const connections = (events: ReadonlyArray<DownloadEvent>) =>
  new Map(events.flatMap((e) => (e._tag === "PeerConnected" && !e.inbound ? [[e.peer, { encryption: e.encryption, transport: e.transport }]] : [])))

const told = (host: string, flags: number): PexPeer => ({ address: addressOf(host), flags })

describe("PEX flags as dial hints on the in-memory network (TestClock)", () => {
  it.effect("uTP first for a uTP-flagged peer, MSE first for an encryption-flagged one, the fallback for wrong flags", () =>
    seeded(21)(
      Effect.gen(function* () {
        const { info } = torrent(21)
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const udp = yield* makeMemoryUdpNetwork({ link: { latency: "5 millis" } })
        const [utpPeer, msePeer, tcpOnly, plainOnly, unflagged] = ["127.6.0.2", "127.6.0.3", "127.6.0.4", "127.6.0.5", "127.6.0.6"]
        // uTP-flagged and unflagged peers take TCP and uTP both; every one takes MSE but plainOnly.
        yield* chokingPeer(network, utpPeer, info, 2, { transport: yield* dualHost(network, udp, utpPeer) })
        yield* chokingPeer(network, msePeer, info, 3)
        yield* chokingPeer(network, tcpOnly, info, 4)
        yield* chokingPeer(network, plainOnly, info, 5, { encryption: "disable" })
        yield* chokingPeer(network, unflagged, info, 6, { transport: yield* dualHost(network, udp, unflagged) })
        yield* pexTeller(network, info, [
          told(utpPeer, PexFlag.SupportsUtp),
          told(msePeer, PexFlag.PrefersEncryption),
          told(tcpOnly, PexFlag.SupportsUtp | PexFlag.Reachable),
          told(plainOnly, PexFlag.PrefersEncryption),
          told(unflagged, 0)
        ])
        const { events } = yield* simClient(network, client, info, [addressOf(teller)], {
          listen: { host: client, port: clientPort },
          encryption: "allow"
        }, undefined, { transport: yield* dualHost(network, udp, client) })
        for (let i = 0; i < 20; i++) yield* TestClock.adjust(500)
        const seen = connections(events)
        expect(seen.get(`${utpPeer}:${port}`)).toEqual({ encryption: "plaintext", transport: "utp" })
        // the allow policy dialled MSE first; the receiver (allow) chose the plaintext method
        expect(seen.get(`${msePeer}:${port}`)).toEqual({ encryption: "mse-plaintext", transport: "tcp" })
        expect(seen.get(`${tcpOnly}:${port}`)).toEqual({ encryption: "plaintext", transport: "tcp" })
        expect(seen.get(`${plainOnly}:${port}`)).toEqual({ encryption: "plaintext", transport: "tcp" })
        expect(seen.get(`${unflagged}:${port}`)).toEqual({ encryption: "plaintext", transport: "tcp" })
      })
    ))

  it.effect("a seed told of is not dialled while we seed; a peer not flagged seed is", () =>
    seeded(22)(
      Effect.gen(function* () {
        const { info } = torrent(22)
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        const [flaggedSeed, unflagged] = ["127.6.0.2", "127.6.0.3"]
        const seed = yield* chokingPeer(network, flaggedSeed, info, 2)
        const other = yield* chokingPeer(network, unflagged, info, 3)
        yield* pexTeller(network, info, [told(flaggedSeed, PexFlag.Seed), told(unflagged, 0)])
        const { events } = yield* simClient(network, client, info, [addressOf(teller)], { seed: true }, undefined, {
          have: Bitfield.full(info.pieceCount)
        })
        for (let i = 0; i < 20; i++) yield* TestClock.adjust(500)
        expect(connections(events).has(`${teller}:${port}`)).toBe(true)
        expect(seed.reached()).toBe(0)
        expect(other.reached()).toBeGreaterThan(0)
      })
    ))
})
