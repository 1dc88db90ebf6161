/**
 * The child process of the crash test (`node --import tsx test/support/sessionProcess.ts
 * <config.json>`): a Session with a state folder, over TCP on loopback. It adds the config's
 * torrents that the session did not restore from the folder (all of them on the first run).
 * It prints one JSON line per event of interest, on stdout (pipes are written synchronously, so a
 * line printed is a line the parent reads, even after a SIGKILL):
 *   {"restored":[infoHash...]} first, the torrents the session restored,
 *   {"resumed":{"infoHash","have":[...],"settled","rechecked":[...]}} once each torrent's check is done,
 *   {"verified":{"infoHash","index"}} for each piece verified and written,
 *   {"unrestored":"..."} / {"error":"..."} for what went wrong, {"done":true} once every torrent seeds.
 * Then it closes the session (a last save of the resume data) and exits.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer, Schedule, Stream } from "effect"
import { readFileSync } from "node:fs"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { tcpLayer } from "../../src/programs/ClientLayer.js"
import { make, type SessionService, TorrentInput } from "../../src/programs/Session.js"
import { makeRateLimits } from "../../src/programs/torrent/RateLimiter.js"
import { StateStore } from "../../src/services/StateStore.js"

export interface SessionProcessConfig {
  /** Bytes per second, across the torrents. */
  readonly downloadRate: number
  readonly stateDir: string
  readonly downloadDir: string
  readonly torrents: ReadonlyArray<{ readonly torrentPath: string; readonly peers: ReadonlyArray<PeerAddress> }>
}

const print = (line: unknown) => Effect.sync(() => void process.stdout.write(`${JSON.stringify(line)}\n`))

/** Prints each torrent's resume check once it is there; true once every torrent seeds. */
const report = (session: SessionService, reported: Set<number>) =>
  Effect.gen(function* () {
    const list = yield* session.list
    for (const t of list) {
      if (t.resumed === undefined || reported.has(t.id)) continue
      reported.add(t.id)
      const have = Array.from({ length: t.resumed.have.size }, (_, i) => i).filter((i) => t.resumed!.have.has(i))
      yield* print({ resumed: { infoHash: t.infoHash, have, settled: t.resumed.settled, rechecked: t.resumed.rechecked } })
    }
    return list.length > 0 && list.every((t) => t.status === "seeding") && reported.size === list.length
  })

const program = (config: SessionProcessConfig) =>
  Effect.gen(function* () {
    const store = yield* StateStore
    const rateLimits = [yield* makeRateLimits({ download: config.downloadRate })]
    const session = yield* make({ downloadDirectory: config.downloadDir, stateStore: store, torrent: { giveUpAfter: "2 minutes", rateLimits } })
    const events = yield* session.subscribe
    yield* events.pipe(
      Stream.runForEach((event) => {
        if (event._tag === "Error") return print({ error: event.message })
        if (event._tag !== "PieceVerified") return Effect.void
        return Effect.flatMap(session.get(event.id), (t) => print({ verified: { infoHash: t.infoHash, index: event.index } }))
      }),
      Effect.ignore,
      Effect.forkScoped
    )
    for (const e of session.unrestored) yield* print({ unrestored: e.message })
    yield* print({ restored: (yield* session.list).map((t) => t.infoHash) })
    // A torrent the state folder restored is a duplicate (a kill may have come between two adds).
    for (const t of config.torrents) {
      yield* session.add(TorrentInput.Metainfo({ bytes: readFileSync(t.torrentPath) }), { peers: t.peers }).pipe(
        Effect.catchTag("DuplicateTorrent", () => Effect.void)
      )
    }
    const reported = new Set<number>()
    // Bounded: 3000 turns of 20 ms.
    // (repeat gives the schedule's count, not the last result: ask once more)
    yield* report(session, reported).pipe(
      Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (all) => all, times: 3000 })
    )
    if (yield* report(session, reported)) yield* print({ done: true })
  })

const config = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as SessionProcessConfig
const services = Layer.mergeAll(tcpLayer, StateStore.layer(config.stateDir)).pipe(Layer.provideMerge(NodeFileSystem.layer))

Effect.runPromise(Effect.scoped(program(config)).pipe(Effect.provide(services), Effect.orDie)).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${String(e)}\n`)
    process.exit(1)
  }
)
