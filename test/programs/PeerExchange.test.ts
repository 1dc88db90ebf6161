/**
 * The torrent's peer exchange on its own, over stand-ins for the sessions (only the fields it
 * reads): what it tells each peer and when, and what it takes from them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { ExtendedHandshake } from "../../src/domain/Extension.js"
import { formatPeer, type PeerAddress, type PeerCandidate } from "../../src/domain/Peer.js"
import { decodePex, encodePex, PexFlag, type PexMessage } from "../../src/domain/Pex.js"
import type { Message } from "../../src/domain/Wire.js"
import { makePeerExchange } from "../../src/programs/torrent/PeerExchange.js"
import type { PeerSession, TorrentState } from "../../src/programs/torrent/TorrentState.js"
import type { TransportKind } from "../../src/services/DualTransport.js"
import type { Encryption } from "../../src/services/PeerWire.js"

interface Peer {
  readonly session: PeerSession
  /** The ut_pex messages it was sent. */
  readonly received: Array<PexMessage>
}

const peer = (host: string, port: number, inbound: boolean, encryption: Encryption = "plaintext", transport: TransportKind = "tcp"): Peer => {
  const received: Array<PexMessage> = []
  const sendNow = (messages: ReadonlyArray<Message>) => {
    for (const m of messages) {
      if (m._tag !== "Extended") continue
      const decoded = decodePex(m.payload)
      if (Either.isRight(decoded)) received.push(decoded.right)
    }
  }
  const session = { key: formatPeer({ host, port }), inbound, ended: false, conn: { address: { host, port }, sendNow, encryption, transport }, outbox: [], lastSentAt: 0 }
  return { session: session as unknown as PeerSession, received }
}

const stateOf = (peers: ReadonlyArray<Peer>) =>
  ({ sessions: new Map(peers.map((p) => [p.session.key, p.session])), picker: { peerHas: () => undefined } }) as unknown as TorrentState

const offersPex = (p?: number): ExtendedHandshake => ({ m: new Map([["ut_pex", 7]]), ...(p === undefined ? {} : { p }) })
const keys = (addresses: ReadonlyArray<PeerAddress>) => addresses.map(formatPeer)
const learnedKeys = (candidates: ReadonlyArray<PeerCandidate>) => keys(candidates.map((c) => c.address))

describe("PeerExchange", () => {
  it("tells each peer whom else we are connected to, 3 s after its handshake and then at most once a minute", () => {
    const pex = makePeerExchange()
    const dialled = peer("127.0.0.2", 6881, false)
    const inbound = peer("127.0.0.3", 50000, true)
    const silent = peer("127.0.0.4", 50001, true) // no listen port: nobody can dial it
    const state = stateOf([dialled, inbound, silent])
    pex.takeHandshake(dialled.session, offersPex(), 0)
    pex.takeHandshake(inbound.session, offersPex(7000), 0)
    pex.upkeep(state, 2000)
    expect(dialled.received).toEqual([])
    pex.upkeep(state, 3000)
    expect(dialled.received.map((m) => keys(m.added.map((a) => a.address)))).toEqual([["127.0.0.3:7000"]])
    expect(inbound.received.map((m) => keys(m.added.map((a) => a.address)))).toEqual([["127.0.0.2:6881"]])
    expect(silent.received).toEqual([])

    state.sessions.delete(inbound.session.key)
    pex.upkeep(state, 30_000)
    expect(dialled.received.length).toBe(1)
    pex.upkeep(state, 63_000)
    expect(dialled.received.at(-1)).toEqual({ added: [], dropped: [{ host: "127.0.0.3", port: 7000 }] })
  })

  it("flags the peers that spoke MSE with us as taking encryption", () => {
    const pex = makePeerExchange()
    const told = peer("127.0.0.2", 6881, false)
    const rc4 = peer("127.0.0.3", 6881, false, "mse-rc4")
    const handshakeOnly = peer("127.0.0.4", 6881, false, "mse-plaintext")
    const plain = peer("127.0.0.5", 6881, false)
    pex.takeHandshake(told.session, offersPex(), 0)
    pex.upkeep(stateOf([told, rc4, handshakeOnly, plain]), 3000)
    const flags = new Map(told.received[0]!.added.map((a) => [formatPeer(a.address), a.flags & PexFlag.PrefersEncryption]))
    expect(Object.fromEntries(flags)).toEqual({ "127.0.0.3:6881": 1, "127.0.0.4:6881": 1, "127.0.0.5:6881": 0 })
  })

  it("hands on what a peer tells, once; ignores its messages within 30 s of the last, and takes at most 50 of one", () => {
    const pex = makePeerExchange()
    const teller = peer("127.0.0.2", 6881, false)
    const state = stateOf([teller])
    const many = Array.from({ length: 80 }, (_, i) => ({ address: { host: `127.1.0.${i + 1}`, port: 6881 }, flags: 0 }))
    pex.receive(teller.session, encodePex({ added: many, dropped: [] }), 0)
    pex.receive(teller.session, encodePex({ added: [{ address: { host: "127.9.9.9", port: 1 }, flags: 0 }], dropped: [] }), 10_000)
    const learned = pex.upkeep(state, 10_000)
    expect(learnedKeys(learned)).toEqual(keys(many.slice(0, 50).map((p) => p.address)))
    expect(pex.upkeep(state, 11_000)).toEqual([])
    pex.receive(teller.session, encodePex({ added: [{ address: { host: "127.9.9.9", port: 1 }, flags: 0 }], dropped: [] }), 31_000)
    expect(learnedKeys(pex.upkeep(state, 31_000))).toEqual(["127.9.9.9:1"])
  })

  it("flags the peers we talk to over uTP as speaking it", () => {
    const pex = makePeerExchange()
    const told = peer("127.0.0.2", 6881, false)
    const overUtp = peer("127.0.0.3", 6881, false, "plaintext", "utp")
    const overTcp = peer("127.0.0.4", 6881, false, "plaintext", "tcp")
    pex.takeHandshake(told.session, offersPex(), 0)
    pex.upkeep(stateOf([told, overUtp, overTcp]), 3000)
    const flags = new Map(told.received[0]!.added.map((a) => [formatPeer(a.address), a.flags & PexFlag.SupportsUtp]))
    expect(Object.fromEntries(flags)).toEqual({ "127.0.0.3:6881": PexFlag.SupportsUtp, "127.0.0.4:6881": 0 })
  })

  it("hands on each learned peer with its flags as dial hints", () => {
    const pex = makePeerExchange()
    const teller = peer("127.0.0.2", 6881, false)
    const added = [
      { address: { host: "127.1.0.1", port: 6881 }, flags: PexFlag.SupportsUtp | PexFlag.Reachable },
      { address: { host: "127.1.0.2", port: 6881 }, flags: PexFlag.PrefersEncryption | PexFlag.Seed },
      { address: { host: "127.1.0.3", port: 6881 }, flags: 0 }
    ]
    pex.receive(teller.session, encodePex({ added, dropped: [] }), 0)
    expect(pex.upkeep(stateOf([teller]), 1000).map((c) => c.hints)).toEqual([
      { encryption: false, utp: true, seed: false },
      { encryption: true, utp: false, seed: true },
      { encryption: false, utp: false, seed: false }
    ])
  })

  it("sends nothing to a peer that does not offer ut_pex, or disables it later", () => {
    const pex = makePeerExchange()
    const a = peer("127.0.0.2", 6881, false)
    const b = peer("127.0.0.3", 6881, false)
    const state = stateOf([a, b])
    pex.takeHandshake(a.session, { m: new Map() }, 0)
    pex.takeHandshake(b.session, offersPex(), 0)
    pex.takeHandshake(b.session, { m: new Map([["ut_pex", 0]]) }, 1000)
    pex.upkeep(state, 5000)
    expect([a.received, b.received]).toEqual([[], []])
  })
})
