/**
 * Peer exchange (BEP 11) with libtorrent, whose ut_pex plugin is on by default. A public swarm
 * with one aria2 seeder Y capped at 128 KiB/s (8 MiB: a minute or more for each leecher), and no
 * tracker for anyone:
 * - libtorrent L leeches from Y alone (`--peer Y`), kept to 2 connections (Y and us), so that it
 *   does not dial M and tell M of Y itself;
 * - our client X downloads a magnet link whose only peer is L (`x.pe`): it can learn of Y only
 *   from L's ut_pex, and it then dials Y;
 * - libtorrent M leeches from X alone (`--peer X`): it can learn of L or Y only from our ut_pex.
 *   libtorrent lists its peers with their sources: when it first has one from PEX (source bit 4),
 *   its only other peer must be X.
 *
 * libtorrent's first ut_pex message comes within seconds of the connection (then one a minute);
 * every wait is bounded at `waitS`. Ports: the swarm on 31000 (tracker 31000, Y 31001), X on 31060, L 31061, M 31062.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import * as Reference from "../support/ReferenceClients.js"
import { type Background, startCli, startProcess, Swarm, SwarmError, type SwarmEnv } from "../support/Swarm.js"

const loopback = "127.0.0.1"
const waitS = 150
const sampleEveryMs = 500
/** libtorrent's peer source bit for PEX. */
const pexSource = 4

/** The swarm's torrent without `announce`: whoever opens it knows of no tracker. */
const trackerlessTorrent = (swarm: SwarmEnv) =>
  Effect.gen(function* () {
    const torrent = yield* Bencode.decode(yield* Effect.promise(() => fs.readFile(swarm.TORRENT)))
    if (!Bencode.isDict(torrent)) return yield* new SwarmError({ command: "trackerless torrent", reason: "not a dictionary", output: "" })
    const file = path.join(swarm.SWARM_DIR, "pex-trackerless.torrent")
    yield* Effect.promise(() => fs.writeFile(file, Bencode.encode(Bencode.dict({ info: Bencode.get(torrent, "info") }))))
    return file
  })

/** A libtorrent leecher that knows only `peer`, listing its peers. */
const leecher = (swarm: SwarmEnv, torrent: string, name: string, port: number, peer: string, settings: Readonly<Record<string, string | number | boolean>> = {}) =>
  Effect.gen(function* () {
    const dir = path.join(swarm.SWARM_DIR, "pex-out", name)
    yield* Effect.promise(() => fs.mkdir(dir, { recursive: true }))
    const command = Reference.libtorrent("leech", torrent, dir, loopback, port, { peers: [peer], timeoutS: waitS, listPeers: true, settings })
    // Ready once it talks to its peer: before that, libtorrent may still refuse connections.
    return yield* startProcess(command.file, command.args, { ready: /^lt: progress=.* peers=[1-9]/m, readyTimeoutMs: 60_000 })
  })

/** The peers of one `lt: peers` line of a `--list-peers` libtorrent, with libtorrent's source bits. */
const peerLines = (ltOutput: string) =>
  [...ltOutput.matchAll(/^lt: peers (.*)$/gm)].map((line) =>
    [...line[1]!.matchAll(/(\d+\.\d+\.\d+\.\d+:\d+)\/(\d+)/g)].map((m) => ({ peer: m[1]!, source: Number(m[2]) })))

/** The first list in which libtorrent was connected to a peer because of a ut_pex message. */
const firstPexList = (ltOutput: string) => peerLines(ltOutput).find((peers) => peers.some((p) => (p.source & pexSource) !== 0))

/** Our outbound connections, from `--json` output. */
const dialledByUs = (ours: string): ReadonlyArray<string> =>
  [...ours.matchAll(/"event":"peer_connected"[^\n]*"peer":"([^"]+)"[^\n]*"inbound":false/g)].map((m) => m[1]!)

/** Samples the outputs until `enough` holds, within `waitS`. */
const until = (processes: ReadonlyArray<Background>, enough: (outputs: ReadonlyArray<string>) => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < (waitS * 1000) / sampleEveryMs; i++) {
      const outputs = yield* Effect.forEach(processes, (p) => Effect.map(p.output, (o) => o.stdout))
      if (enough(outputs)) return outputs
      yield* Effect.sleep(sampleEveryMs)
    }
    const outputs = yield* Effect.forEach(processes, (p) => Effect.map(p.output, (o) => `${o.stdout}\n${o.stderr}`))
    return yield* new SwarmError({ command: "pex", reason: `not done within ${waitS} s`, output: outputs.join("\n----\n") })
  })

const sha256Of = (file: string) =>
  Effect.promise(() => fs.readFile(file)).pipe(Effect.map((bytes) => createHash("sha256").update(bytes).digest("hex")))

describe("peer exchange with libtorrent", () => {
  const options = { basePort: 31000, sizeMib: 8, seeders: 1, mix: ["aria2"], public: true, seederUploadLimit: "128K" } as const
  layer(Swarm.layer(options), { excludeTestServices: true })("one aria2 seeder at 128 KiB/s", (it) => {
    it.effect("we learn a seeder from libtorrent's ut_pex and dial it; libtorrent learns a peer from ours", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const torrent = yield* trackerlessTorrent(swarm)
        const y = swarm.SEEDER_PEERS[0]!
        const xPort = swarm.BASE_PORT + 60
        const lAddress = `${loopback}:${xPort + 1}`
        // L keeps to Y and us: it must not dial M (which it learns of from us) and tell M of Y itself.
        yield* leecher(swarm, torrent, "lt-l", xPort + 1, y, { connections_limit: 2 })
        const out = path.join(swarm.SWARM_DIR, "pex-out", "ours", swarm.TORRENT_NAME)
        const magnet = `magnet:?xt=urn:btih:${swarm.INFO_HASH}&x.pe=${lAddress}`
        const x = yield* startCli(["download", "-o", out, magnet, "--host", loopback, "--port", String(xPort), "--json", "--seed"], {
          ready: /"event":"started"/,
          readyTimeoutMs: 60_000
        })
        const m = yield* leecher(swarm, torrent, "lt-m", xPort + 2, `${loopback}:${xPort}`)
        const [ours, mOutput] = yield* until([x, m], ([ours, mOut]) =>
          dialledByUs(ours!).includes(y) && firstPexList(mOut!) !== undefined)
        assert.deepStrictEqual(dialledByUs(ours!).slice(0, 1), [lAddress], "our first peer is the magnet's x.pe")
        assert.include(dialledByUs(ours!), y)
        // When M first had a peer from PEX, its only other peer was X: the message came from us.
        const pexList = firstPexList(mOutput!)!
        const learned = pexList.filter((p) => (p.source & pexSource) !== 0).map((p) => p.peer)
        assert.deepStrictEqual(pexList.filter((p) => (p.source & pexSource) === 0).map((p) => p.peer), [`${loopback}:${xPort}`], mOutput)
        assert.isTrue(learned.every((p) => p === lAddress || p === y), mOutput)
        yield* until([x], ([ours]) => /"event":"completed"/.test(ours!))
        assert.strictEqual(yield* sha256Of(out), swarm.DATA_SHA256)
        yield* Effect.logInfo(`libtorrent M learned by PEX: ${learned.join(" ")}`)
      }).pipe(Effect.scoped))
  })
})
