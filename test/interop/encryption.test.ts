/**
 * MSE/PE against real clients that require encryption, so that bytes flow only if our handshake
 * and RC4 streams are right:
 * - libtorrent with encryption forced both ways (`out_enc_policy`, `in_enc_policy` pe_forced,
 *   `allowed_enc_level` pe_rc4) drops our plain handshake and takes our MSE one; our `download`
 *   gets the exact payload from such a seeder, by default (plaintext first, MSE once it drops us)
 *   and with `--encryption require`; such a leecher downloads from our `seed`;
 * - the same both ways with aria2 (`--bt-require-crypto=true`, `--bt-min-crypto-level=arc4`); a
 *   default aria2c (MSE first, plaintext allowed) gets an MSE handshake with a plaintext payload;
 * - transmission-cli with `-er` (encryption required) downloads from our seed, which dials it.
 *
 * Ports: 31600 (tracker), our client on P+60, libtorrent on P+61, aria2 on P+62.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Either, type Scope } from "effect"
import { fromHex } from "../../src/domain/Bytes.js"
import { makePeerId } from "../../src/domain/Peer.js"
import { PeerWire } from "../../src/services/PeerWire.js"
import * as Reference from "../support/ReferenceClients.js"
import {
  awaitSeeders,
  type Background,
  fetchWith,
  ourSeeder,
  runCli,
  runProcess,
  startProcess,
  Swarm,
  type SwarmEnv
} from "../support/Swarm.js"

const loopback = "127.0.0.1"
/** libtorrent's enc_policy pe_forced and enc_level pe_rc4. */
const forcedRc4 = { out_enc_policy: 0, in_enc_policy: 0, allowed_enc_level: 2 }

const sha256Of = (file: string) =>
  Effect.promise(() => fs.readFile(file)).pipe(Effect.map((bytes) => createHash("sha256").update(bytes).digest("hex")))

/** A libtorrent seeder of the swarm's torrent that speaks nothing but RC4-encrypted MSE, announced to the tracker. */
const forcedSeeder = (swarm: SwarmEnv) => {
  const command = Reference.libtorrent("seed", swarm.TORRENT, swarm.DATA_DIR, loopback, swarm.BASE_PORT + 61, { settings: forcedRc4 })
  return startProcess(command.file, command.args, { ready: /^lt: seeding /m, readyTimeoutMs: 30_000 }).pipe(
    Effect.tap(() => awaitSeeders(swarm, 1))
  )
}

/** An aria2 seeder that takes encrypted peers only. */
const aria2ForcedSeeder = (swarm: SwarmEnv) => {
  const command = Reference.aria2Seeder(swarm.TORRENT, swarm.DATA_DIR, loopback, swarm.BASE_PORT + 62, {
    extraArgs: Reference.aria2RequireCrypto
  })
  return startProcess(command.file, command.args).pipe(Effect.tap(() => awaitSeeders(swarm, 1)))
}

/** Our plain handshake is dropped by the seeder on BASE_PORT + `offset`, our MSE one taken with RC4. */
const dropsPlainTakesRc4 = (startSeeder: (swarm: SwarmEnv) => Effect.Effect<Background, unknown, Scope.Scope>, offset: number) =>
  Effect.gen(function* () {
    const swarm = yield* Swarm
    yield* startSeeder(swarm)
    const wire = yield* PeerWire
    const address = { host: loopback, port: swarm.BASE_PORT + offset }
    const options = {
      infoHash: fromHex(swarm.INFO_HASH, 20)!,
      peerId: makePeerId((n) => new Uint8Array(n).fill(0x61)),
      pieceCount: swarm.NUM_PIECES
    }
    const plain = yield* Effect.either(Effect.scoped(wire.connect(address, { ...options, encryption: "disable" })))
    assert.isTrue(Either.isLeft(plain) && plain.left.reason === "Closed", String(plain))
    const encrypted = yield* Effect.scoped(Effect.map(wire.connect(address, { ...options, encryption: "require" }), (c) => c.encryption))
    assert.strictEqual(encrypted, "mse-rc4")
  }).pipe(Effect.scoped, Effect.provide(PeerWire.Tcp))

const downloadsExactly = (
  name: string,
  extra: ReadonlyArray<string>,
  startSeeder: (swarm: SwarmEnv) => Effect.Effect<Background, unknown, Scope.Scope> = forcedSeeder
) =>
  Effect.gen(function* () {
    const swarm = yield* Swarm
    const seeder = yield* startSeeder(swarm)
    const out = path.join(swarm.SWARM_DIR, name, swarm.TORRENT_NAME)
    const result = yield* runCli(
      ["download", "--quiet", "--host", loopback, "--port", String(swarm.BASE_PORT + 60), "-o", out, ...extra, swarm.TORRENT],
      { timeoutMs: 90_000 }
    )
    const lt = yield* seeder.output
    assert.strictEqual(result.code, 0, `${result.stderr}\nlibtorrent:\n${lt.stdout}${lt.stderr}`)
    assert.strictEqual(yield* sha256Of(out), swarm.DATA_SHA256)
  }).pipe(Effect.scoped)

describe("MSE/PE with peers that require encryption (libtorrent, aria2, Transmission)", () => {
  layer(Swarm.layer({ basePort: 31600, sizeMib: 8, seeders: 0 }), { excludeTestServices: true })("a tracker and an 8 MiB torrent", (it) => {
    it.effect("libtorrent drops our plain handshake and takes our MSE one, selecting RC4", () =>
      dropsPlainTakesRc4(forcedSeeder, 61))

    it.effect("aria2 drops our plain handshake and takes our MSE one, selecting RC4", () =>
      dropsPlainTakesRc4(aria2ForcedSeeder, 62))

    it.effect("download (default: plaintext first) gets the exact payload from a seeder that requires encryption", () =>
      downloadsExactly("ours-default", []))

    it.effect("download --encryption require gets the exact payload from it", () =>
      downloadsExactly("ours-require", ["--encryption", "require"]))

    it.effect("a libtorrent leecher that requires encryption downloads the exact payload from our seed", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const seeder = yield* ourSeeder(swarm)
        const dir = path.join(swarm.SWARM_DIR, "lt-leech")
        yield* Effect.promise(() => fs.mkdir(dir, { recursive: true }))
        const command = Reference.libtorrent("leech", swarm.TORRENT, dir, loopback, swarm.BASE_PORT + 61, {
          peers: [`${loopback}:${swarm.CLIENT_PORT}`],
          timeoutS: 60,
          settings: forcedRc4
        })
        const result = yield* runProcess(command.file, command.args, { timeoutMs: 90_000 })
        assert.strictEqual(result.code, 0, `${result.stdout}${result.stderr}`)
        assert.match(result.stdout, /^lt: done in /m)
        assert.strictEqual(yield* sha256Of(path.join(dir, swarm.TORRENT_NAME)), swarm.DATA_SHA256)
        const { stderr } = yield* seeder.output
        assert.match(stderr, /connected \(LT[^)]*\), encrypted \(RC4\)/, stderr)
      }).pipe(Effect.scoped))

    it.effect("download gets the exact payload from an aria2 seeder that requires encryption", () =>
      downloadsExactly("ours-aria2", [], aria2ForcedSeeder))

    it.effect("an aria2c leecher that requires encryption downloads the exact payload from our seed", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        yield* ourSeeder(swarm)
        yield* awaitSeeders(swarm, 1)
        const result = yield* fetchWith(swarm, "aria2c", { timeoutS: 60, extraArgs: Reference.aria2RequireCrypto })
        assert.strictEqual(result.exitCode, 0, result.log)
        assert.strictEqual(result.sha256, "OK", result.log)
      }).pipe(Effect.scoped))

    it.effect("a default aria2c (MSE first, plaintext allowed) gets an MSE handshake and a plaintext payload from our seed", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const seeder = yield* ourSeeder(swarm)
        yield* awaitSeeders(swarm, 1)
        const result = yield* fetchWith(swarm, "aria2c", { label: "aria2c-default", timeoutS: 60 })
        assert.strictEqual(result.exitCode, 0, result.log)
        const { stderr } = yield* seeder.output
        assert.match(stderr, /connected \([^)]*, inbound\), encrypted handshake$/m, stderr)
      }).pipe(Effect.scoped))

    it.effect("transmission-cli requiring encryption downloads the exact payload from our seed, which dials it", () =>
      Effect.gen(function* () {
        const swarm = yield* Swarm
        const seeder = yield* ourSeeder(swarm)
        yield* awaitSeeders(swarm, 1)
        // transmission-cli never dials loopback peers: our seed dials it, plaintext first, then MSE once it drops that
        const result = yield* fetchWith(swarm, "transmission", { label: "transmission-required", timeoutS: 90, extraArgs: ["-er"] })
        assert.strictEqual(result.exitCode, 0, result.log)
        assert.strictEqual(result.sha256, "OK", result.log)
        const { stderr } = yield* seeder.output
        assert.match(stderr, /connected \(TR[^)]*, dialled\), encrypted \(RC4\)/, stderr)
      }).pipe(Effect.scoped))
  })
})
