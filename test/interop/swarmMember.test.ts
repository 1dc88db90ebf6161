/**
 * Our client is a swarm member while it downloads (issue 9): a public swarm with one aria2 seeder
 * capped at 1 MiB/s, so that our `download` of 16 MiB takes some 16 s; meanwhile a libtorrent
 * leecher that knows of no tracker and of no peer but our client (`--peer`; DHT, LSD and PEX off)
 * downloads the same torrent:
 * - from a .torrent without `announce`: it receives pieces from us before our download completes;
 * - from a bare magnet link (`xt` only): it gets the metadata (BEP 9) from us before our download
 *   completes, then, ours going on seeding (`--seed`), the exact payload.
 *
 * "Before" is read off the two processes' output, not off clocks: the test samples libtorrent's
 * output first and ours second, so whatever libtorrent had printed by a sample happened before
 * what ours had not yet printed by it. The times it logs are for the report only.
 *
 * Ports: 30800 (the swarm: tracker 30800, seeder 30801); our client on P+60 / P+70, libtorrent on
 * P+61 / P+71.
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
const sizeMib = 16
/** libtorrent gives up after this; our download at 1 MiB/s takes about 16 s. */
const leechTimeoutS = 120
const sampleEveryMs = 200

/** What the two processes had printed by one sample, libtorrent's read before ours. */
interface Sample {
  readonly atMs: number
  readonly lt: string
  readonly ours: string
}

const ltHasMetadata = (s: Sample) => /^lt: metadata /m.test(s.lt)
const ltDone = (s: Sample) => /^lt: done in /m.test(s.lt)
/** libtorrent counts only verified pieces in its progress. */
const ltHasPieces = (s: Sample) =>
  ltDone(s) || [...s.lt.matchAll(/^lt: progress=([\d.]+)%/gm)].some((m) => Number(m[1]) > 0)
const oursCompleted = (s: Sample) => /"event":"completed"/.test(s.ours)

/** Samples both outputs until `enough` holds, within `timeoutS`; returns every sample. */
const watch = (lt: Background, ours: Background, enough: (s: Sample) => boolean, timeoutS: number) =>
  Effect.gen(function* () {
    const startMs = Date.now()
    const samples: Array<Sample> = []
    for (let i = 0; i < (timeoutS * 1000) / sampleEveryMs; i++) {
      const ltText = (yield* lt.output).stdout
      const oursText = (yield* ours.output).stdout
      const sample = { atMs: Date.now() - startMs, lt: ltText, ours: oursText }
      samples.push(sample)
      if (enough(sample)) return samples
      yield* Effect.sleep(sampleEveryMs)
    }
    const last = samples[samples.length - 1]
    return yield* new SwarmError({
      command: "watch",
      reason: `not done within ${timeoutS} s`,
      output: `libtorrent:\n${last?.lt ?? ""}${(yield* lt.output).stderr}\nours:\n${(yield* ours.output).stderr}`
    })
  })

/** When (ms since the watch began) `holds` first held, and whether our download had completed by then. */
const first = (samples: ReadonlyArray<Sample>, holds: (s: Sample) => boolean) => {
  const sample = samples.find(holds)
  return sample === undefined ? undefined : { atMs: sample.atMs, oursCompleted: oursCompleted(sample) }
}

/** Our `download --json` into the swarm's folder, listening on `port`; returns once it has started. */
const startOurs = (swarm: SwarmEnv, name: string, port: number, extra: ReadonlyArray<string> = []) => {
  const out = path.join(swarm.SWARM_DIR, "member-out", name, swarm.TORRENT_NAME)
  return startCli(["download", "-o", out, swarm.TORRENT, "--host", loopback, "--port", String(port), "--json", ...extra], {
    ready: /"event":"started"/,
    readyTimeoutMs: 30_000
  }).pipe(Effect.map((client) => ({ client, out })))
}

/** A libtorrent leecher of `source` that knows of our client alone. */
const startLeecher = (swarm: SwarmEnv, source: string, name: string, port: number, oursPort: number) =>
  Effect.gen(function* () {
    const dir = path.join(swarm.SWARM_DIR, "member-out", name)
    yield* Effect.promise(() => fs.mkdir(dir, { recursive: true }))
    const command = Reference.libtorrent("leech", source, dir, loopback, port, {
      peers: [`${loopback}:${oursPort}`],
      timeoutS: leechTimeoutS
    })
    const client = yield* startProcess(command.file, command.args)
    return { client, out: path.join(dir, swarm.TORRENT_NAME) }
  })

/** The swarm's torrent without `announce`: whoever opens it knows of no tracker. */
const trackerlessTorrent = (swarm: SwarmEnv) =>
  Effect.gen(function* () {
    const torrent = yield* Bencode.decode(yield* Effect.promise(() => fs.readFile(swarm.TORRENT)))
    if (!Bencode.isDict(torrent)) return yield* new SwarmError({ command: "trackerless torrent", reason: "not a dictionary", output: "" })
    const file = path.join(swarm.SWARM_DIR, "trackerless.torrent")
    const info = Bencode.get(torrent, "info")
    yield* Effect.promise(() => fs.writeFile(file, Bencode.encode(Bencode.dict({ info }))))
    return file
  })

const sha256Of = (file: string) =>
  Effect.promise(() => fs.readFile(file)).pipe(Effect.map((bytes) => createHash("sha256").update(bytes).digest("hex")))

/** Our client saw libtorrent (libtorrent dials us: we are its `--peer`). */
const assertSawLibtorrent = (ours: string) =>
  assert.match(ours, /"event":"peer_connected"[^\n]*"client":"LT[^"]*"/, ours)

describe("download: a swarm member while it downloads", () => {
  const options = { basePort: 30800, sizeMib, seeders: 1, mix: ["aria2"], public: true, seederUploadLimit: "1M" } as const
  layer(Swarm.layer(options), { excludeTestServices: true })("one aria2 seeder at 1 MiB/s", (it) => {
    it.effect("a libtorrent leecher that knows only our downloading client receives pieces from it before we finish", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const torrent = yield* trackerlessTorrent(swarm)
        const port = swarm.BASE_PORT + 60
        const ours = yield* startOurs(swarm, "ours-pieces", port)
        const lt = yield* startLeecher(swarm, torrent, "lt-pieces", port + 1, port)
        const samples = yield* watch(lt.client, ours.client, (s) => oursCompleted(s), leechTimeoutS)
        const pieces = first(samples, ltHasPieces)
        const completed = first(samples, oursCompleted)
        yield* Effect.logInfo(`libtorrent's first piece by ${pieces?.atMs} ms, our download complete by ${completed?.atMs} ms`)
        const oursOut = (yield* ours.client.output).stdout
        assert.isDefined(pieces, `libtorrent received no piece before our download completed:\n${samples.at(-1)?.lt}`)
        assert.isFalse(pieces!.oursCompleted)
        assertSawLibtorrent(oursOut)
        assert.strictEqual(yield* sha256Of(ours.out), swarm.DATA_SHA256)
      }).pipe(Effect.scoped))

    it.effect("a libtorrent leecher fetches a magnet's metadata from our client while it downloads", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const magnet = `magnet:?xt=urn:btih:${swarm.INFO_HASH}`
        const port = swarm.BASE_PORT + 70
        const ours = yield* startOurs(swarm, "ours-metadata", port, ["--seed"])
        const lt = yield* startLeecher(swarm, magnet, "lt-metadata", port + 1, port)
        const samples = yield* watch(lt.client, ours.client, (s) => oursCompleted(s) && ltDone(s), leechTimeoutS)
        const metadata = first(samples, ltHasMetadata)
        const pieces = first(samples, ltHasPieces)
        const completed = first(samples, oursCompleted)
        const done = first(samples, ltDone)
        yield* Effect.logInfo(
          `libtorrent's metadata by ${metadata?.atMs} ms, first piece by ${pieces?.atMs} ms, ` +
            `our download complete by ${completed?.atMs} ms, libtorrent done by ${done?.atMs} ms`
        )
        assert.isDefined(metadata, samples.at(-1)?.lt)
        assert.isFalse(metadata!.oursCompleted, `libtorrent got the metadata only after our download completed`)
        assertSawLibtorrent((yield* ours.client.output).stdout)
        assert.strictEqual(yield* sha256Of(lt.out), swarm.DATA_SHA256)
        assert.strictEqual(yield* sha256Of(ours.out), swarm.DATA_SHA256)
      }).pipe(Effect.scoped))
  })
})
