import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { build } from "esbuild"
import { Effect, Fiber, type Layer } from "effect"
import { Hasher } from "../../src/services/Hasher.js"
import { payloadBytes, sha1 } from "../support/torrent.js"

// Sizes around the inline threshold of Hasher.Live (64 KiB) and beyond, plus the empty input.
const sizes = [0, 1, 16384, 65535, 65536, 262144 + 7, 1 << 20]

const suite = (name: string, layer: Layer.Layer<Hasher>) =>
  describe(name, () => {
    it.live("gives node:crypto's SHA-1 for every size, many at once", () =>
      Effect.gen(function* () {
        const hasher = yield* Hasher
        // Three rounds with sizes shuffled: more jobs than worker slots, and slots that must grow.
        const inputs = [...sizes, ...[...sizes].reverse(), ...sizes].map((n, i) => payloadBytes(n, i + 1))
        const digests = yield* Effect.forEach(inputs, (data) => hasher.sha1(data), { concurrency: "unbounded" })
        digests.forEach((d, i) => expect(d).toEqual(sha1(inputs[i]!)))
        // The caller's buffers are untouched (not transferred away).
        expect(inputs[6]!.length).toBe(1 << 20)
      }).pipe(Effect.provide(layer))
    )

    it.live("verify compares with the expected digest", () =>
      Effect.gen(function* () {
        const hasher = yield* Hasher
        const data = payloadBytes(300_000)
        expect(yield* hasher.verify(data, sha1(data))).toBe(true)
        const wrong = sha1(data)
        wrong[19]! ^= 1
        expect(yield* hasher.verify(data, wrong)).toBe(false)
        expect(yield* hasher.verify(data, new Uint8Array(0))).toBe(false)
      }).pipe(Effect.provide(layer))
    )
  })

suite("Hasher.Sync", Hasher.Sync)
suite("Hasher.Live", Hasher.Live)
suite("Hasher.layerWorkers (1 worker, everything off the loop)", Hasher.layerWorkers({ workers: 1, inlineBelow: 0 }))

describe("Hasher worker pool", () => {
  it.live("interrupted jobs leave the pool working", () =>
    Effect.gen(function* () {
      const hasher = yield* Hasher
      const big = payloadBytes(4 << 20)
      // Twenty jobs for two slots: most are queued when interrupted, some are running.
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(hasher.sha1(big)))
      yield* Fiber.interruptAll(fibers)
      const data = payloadBytes(100_000, 9)
      expect(yield* hasher.sha1(data)).toEqual(sha1(data))
    }).pipe(Effect.provide(Hasher.layerWorkers({ workers: 1, inlineBelow: 0 })))
  )

  it.live("works from an esbuild bundle and lets the process exit once the layer is released", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "bt-hasher-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const outfile = join(dir, "bundle.mjs")
      const contents = `import { Effect } from "effect"
        import { Hasher } from "./src/services/Hasher.ts"
        const program = Effect.flatMap(Hasher, (h) => h.sha1(new Uint8Array(1 << 20).fill(7)))
        Effect.runPromise(program.pipe(Effect.provide(Hasher.Live))).then((d) => console.log(Buffer.from(d).toString("hex")))`
      yield* Effect.promise(() =>
        build({
          stdin: { contents, resolveDir: process.cwd(), loader: "ts" },
          bundle: true,
          platform: "node",
          format: "esm",
          outfile,
          logLevel: "silent"
        })
      )
      // A worker left running would keep the process alive: the timeout turns that into a failure.
      const out = execFileSync(process.execPath, [outfile], { encoding: "utf8", timeout: 20_000 })
      expect(out.trim()).toBe(Buffer.from(sha1(new Uint8Array(1 << 20).fill(7))).toString("hex"))
    }).pipe(Effect.scoped)
  )
})
