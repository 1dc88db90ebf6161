/**
 * Peer exchange (BEP 11) in whole swarms on the in-memory network, under TestClock: a leecher
 * that knows only peer A, where A knows the seeder B, learns B from A's ut_pex message and
 * fetches from B (A's link to it is too slow to matter). A private torrent exchanges nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, TestClock } from "effect"
import type { Info } from "../../src/domain/Metainfo.js"
import { makePeerId } from "../../src/domain/Peer.js"
import type { DownloadEvent } from "../../src/programs/Download.js"
import { MemoryNetwork } from "../../src/services/MemoryNetwork.js"
import { handInfo } from "../support/handInfo.js"
import { addressOf, drive, matches, port, seeded, simClient, simSeeder } from "../support/SimulatedSwarm.js"
import { payloadBytes } from "../support/torrent.js"

const leecher = "127.4.0.100"
const middle = "127.4.0.1"
const seeder = "127.4.0.2"
const second = "127.4.0.101"
/** Not the seeder's port: a loopback address with our own port is taken for ourselves. */
const middlePort = port + 10

const torrent = (seed: number) => handInfo(65536, [{ path: ["payload.bin"], data: payloadBytes(8 * 65536 - 1000, seed) }])

const connectedTo = (events: ReadonlyArray<DownloadEvent>) =>
  events.flatMap((e) => (e._tag === "PeerConnected" && !e.inbound ? [e.peer] : []))

/** B seeds; A (listening) knows B; our leecher knows only A. */
const swarm = (info: Info, payload: Uint8Array) =>
  Effect.gen(function* () {
    const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
    // Slow links around A: it stays a leecher of B (two seeds drop each other, and A would list
    // no one), and what the leecher gets it gets from B.
    for (const other of [leecher, seeder]) yield* network.link(middle, other, { latency: "5 millis", bandwidth: 2000 })
    yield* simSeeder(network, seeder, info, payload, 1)
    yield* simClient(network, middle, info, [addressOf(seeder)], {
      peerId: makePeerId(() => new Uint8Array(12).fill(7)),
      listen: { host: middle, port: middlePort },
      seed: true
    })
    return yield* simClient(network, leecher, info, [{ host: middle, port: middlePort }])
  })

describe("peer exchange on the in-memory network (TestClock)", () => {
  it.effect("a leecher that knows only A learns seeder B through A's ut_pex and completes from B", () =>
    seeded(11)(
      Effect.gen(function* () {
        const { info, payload } = torrent(11)
        const { events, bytes, fiber } = yield* swarm(info, payload)
        // From A alone, 512 KiB at 2 KB/s would take over 4 minutes of virtual time.
        const { exit, millis } = yield* drive(fiber, 100, 1800)
        expect(exit !== null && Exit.isSuccess(exit) && exit.value._tag === "Right").toBe(true)
        expect(matches(bytes, payload)).toBe(true)
        expect(connectedTo(events)).toEqual([`${middle}:${middlePort}`, `${seeder}:${port}`])
        expect(millis).toBeLessThan(payload.length / 2000 * 1000)
      })
    ))

  it.effect("an inbound peer is passed on at the listen port of its extension handshake", () =>
    seeded(13)(
      Effect.gen(function* () {
        const { info, payload } = torrent(13)
        const network = yield* MemoryNetwork.make({ link: { latency: "5 millis" } })
        for (const other of [leecher, seeder, second]) yield* network.link(middle, other, { latency: "5 millis", bandwidth: 2000 })
        yield* simSeeder(network, seeder, info, payload, 1)
        yield* simClient(network, middle, info, [addressOf(seeder)], {
          peerId: makePeerId(() => new Uint8Array(12).fill(7)),
          listen: { host: middle, port: middlePort }
        })
        // The first leecher listens and dials A: A knows it by an ephemeral port, and passes it on at 6895.
        yield* simClient(network, leecher, info, [{ host: middle, port: middlePort }], { listen: { host: leecher, port: 6895 } })
        const { events, fiber } = yield* simClient(network, second, info, [{ host: middle, port: middlePort }], {
          peerId: makePeerId(() => new Uint8Array(12).fill(8))
        })
        yield* drive(fiber, 100, 1800)
        expect(connectedTo(events)).toContain(`${leecher}:6895`)
      })
    ))

  it.effect("a private torrent (BEP 27): the leecher never learns B", () =>
    seeded(12)(
      Effect.gen(function* () {
        const { info, payload } = torrent(12)
        const { events } = yield* swarm({ ...info, private: true }, payload)
        // Past the first PEX message (3 s) and the next one (a minute on).
        for (let i = 0; i < 70; i++) yield* TestClock.adjust(1000)
        // (A drops and takes it again: it sends haves for pieces its sink cannot read back.)
        expect(new Set(connectedTo(events))).toEqual(new Set([`${middle}:${middlePort}`]))
      })
    ))
})
