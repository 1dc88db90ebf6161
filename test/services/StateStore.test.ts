import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { StateStore } from "../../src/services/StateStore.js"

const text = (s: string) => new TextEncoder().encode(s)
const decoded = (bytes: Option.Option<Uint8Array>) => Option.map(bytes, (b) => new TextDecoder().decode(b))

const live = () => {
  const directory = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "state-store-")), "nested", "state")
  return { directory, layer: StateStore.layer(directory).pipe(Layer.provide(NodeFileSystem.layer)) }
}

const behaviour = (name: string, make: () => { readonly layer: Layer.Layer<StateStore, unknown> }) =>
  describe(name, () => {
    it.effect("writes, replaces, lists and removes files", () =>
      Effect.gen(function* () {
        const store = yield* StateStore
        expect(decoded(yield* store.read("a.resume"))).toEqual(Option.none())
        yield* store.write("a.resume", text("one"))
        yield* store.write("b.torrent", text("two"))
        yield* store.write("a.resume", text("three"))
        expect(decoded(yield* store.read("a.resume"))).toEqual(Option.some("three"))
        expect(yield* store.list).toEqual(["a.resume", "b.torrent"])
        yield* store.remove("a.resume")
        yield* store.remove("a.resume")
        expect(yield* store.list).toEqual(["b.torrent"])
      }).pipe(Effect.provide(make().layer)))

    it.effect.each(["../escape", ".hidden", "a/b", "", "x.tmp", "a".repeat(200)])("refuses the name %j", (bad) =>
      Effect.gen(function* () {
        const store = yield* StateStore
        const error = yield* Effect.flip(store.write(bad, text("x")))
        expect(error._tag).toBe("StateStoreError")
        expect(error.message).toContain("not a valid state file name")
        expect(yield* store.list).toEqual([])
      }).pipe(Effect.provide(make().layer)))
  })

behaviour("StateStore.layer (files)", live)
behaviour("StateStore.Memory", () => ({ layer: StateStore.Memory }))

describe("StateStore.layer crash safety", () => {
  it.effect("a write interrupted before its rename leaves the old file, and its leftover is not listed", () => {
    const { directory, layer } = live()
    return Effect.gen(function* () {
      const store = yield* StateStore
      yield* store.write("t.resume", text("old"))
      // What a kill between the temporary file's write and the rename leaves behind.
      fs.writeFileSync(path.join(directory, "t.resume.tmp"), "half")
      expect(decoded(yield* store.read("t.resume"))).toEqual(Option.some("old"))
      expect(yield* store.list).toEqual(["t.resume"])
      yield* store.write("t.resume", text("new"))
      expect(fs.readFileSync(path.join(directory, "t.resume"), "utf8")).toBe("new")
      // Each write has a temporary file of its own: the leftover stays, never listed, never read.
      expect(yield* store.list).toEqual(["t.resume"])
      expect(fs.readdirSync(directory).filter((n) => n.startsWith("t.resume.") && n.endsWith(".tmp") && n !== "t.resume.tmp")).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.effect("writers of the same file at once (two processes saving one record) leave one whole version", () => {
    const { layer } = live()
    return Effect.gen(function* () {
      const store = yield* StateStore
      const versions = Array.from({ length: 8 }, (_, i) => String(i).repeat(10_000 + i))
      const results = yield* Effect.all(versions.map((v) => Effect.either(store.write("same.resume", text(v)))), { concurrency: "unbounded" })
      expect(results.every((r) => r._tag === "Right")).toBe(true)
      expect(versions).toContain(Option.getOrThrow(decoded(yield* store.read("same.resume"))))
      expect(yield* store.list).toEqual(["same.resume"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a folder that cannot be made is a typed error naming it", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "state-store-")), "file")
    fs.writeFileSync(file, "")
    return Effect.gen(function* () {
      const error = yield* Effect.flip(Layer.build(StateStore.layer(path.join(file, "state")).pipe(Layer.provide(NodeFileSystem.layer))))
      expect(error).toMatchObject({ _tag: "StateStoreError", operation: "mkdir", path: path.join(file, "state") })
    }).pipe(Effect.scoped)
  })
})
