import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { filePriorities } from "../../src/domain/FileSelection.js"
import * as SessionRecord from "../../src/domain/SessionRecord.js"

const inputArb: fc.Arbitrary<SessionRecord.RecordInput> = fc.oneof(
  fc.constant({ _tag: "Metainfo" } as const),
  fc.constant({ _tag: "InfoHash" } as const),
  fc.string().map((uri) => ({ _tag: "Magnet", uri }) as const)
)

const recordArb: fc.Arbitrary<SessionRecord.SessionRecord> = fc.record({
  infoHash: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  input: inputArb,
  directory: fc.string({ minLength: 1 }),
  paused: fc.boolean(),
  addedAtMs: fc.nat(),
  maxPeers: fc.option(fc.nat({ max: 1000 }), { nil: undefined }),
  seedRatio: fc.option(fc.double({ min: 0, max: 1e6, noNaN: true }), { nil: undefined }),
  seedTimeMs: fc.option(fc.nat(), { nil: undefined }),
  peers: fc.array(fc.record({ host: fc.string(), port: fc.nat({ max: 65535 }) }), { maxLength: 5 }),
  files: fc.option(fc.array(fc.constantFrom(...filePriorities), { maxLength: 8 }), { nil: undefined }),
  downloadLimit: fc.option(fc.nat(), { nil: undefined }),
  uploadLimit: fc.option(fc.nat(), { nil: undefined }),
  queuePosition: fc.option(fc.nat(), { nil: undefined })
})

const decoded = (bytes: Uint8Array) => Either.getOrThrow(SessionRecord.decode(bytes))
const failure = (bytes: Uint8Array) => Either.getOrThrowWith(Either.flip(SessionRecord.decode(bytes)), () => new Error("decoded"))

describe("SessionRecord codec", () => {
  it.prop("round-trips every record", [recordArb], ([record]) => {
    const back = decoded(SessionRecord.encode(record))
    // -0 has no decimal text of its own: it reads back as 0.
    expect(back).toEqual({ ...record, seedRatio: record.seedRatio === undefined ? undefined : record.seedRatio + 0 })
  })

  it.prop("a truncated record is a typed error, never a partial record", [recordArb, fc.double({ min: 0, max: 1, maxExcluded: true })], ([record, at]) => {
    const bytes = SessionRecord.encode(record)
    expect(failure(bytes.subarray(0, Math.floor(bytes.length * at)))._tag).toBe("SessionRecordError")
  })

  it.prop("never throws on arbitrary bytes", [fc.uint8Array({ maxLength: 200 })], ([bytes]) => {
    expect(Either.isEither(SessionRecord.decode(bytes))).toBe(true)
  })

  const good = SessionRecord.encode({
    infoHash: new Uint8Array(20),
    input: { _tag: "Magnet", uri: "magnet:?xt=urn:btih:00" },
    directory: "/d",
    paused: false,
    addedAtMs: 5,
    maxPeers: undefined,
    seedRatio: undefined,
    seedTimeMs: undefined,
    peers: [],
    files: undefined,
    downloadLimit: undefined,
    uploadLimit: undefined,
    queuePosition: undefined
  })
  const root = Either.getOrThrow(Bencode.decode(good)) as Bencode.BencodeDict
  const changed = (key: string, value: Bencode.Bencode | undefined) => {
    const d = new Map(root)
    if (value === undefined) d.delete(Bencode.bytesToKey(Bencode.text(key)))
    else d.set(Bencode.bytesToKey(Bencode.text(key)), value)
    return Bencode.encode(d)
  }

  it.each([
    { key: "version", value: 2n, field: "version" },
    { key: "info hash", value: new Uint8Array(19), field: "info hash" },
    { key: "input", value: Bencode.text("url"), field: "input" },
    { key: "magnet", value: undefined, field: "magnet" },
    { key: "directory", value: 3n, field: "directory" },
    { key: "paused", value: 2n, field: "paused" },
    { key: "added at", value: -1n, field: "added at" },
    { key: "seed ratio", value: Bencode.text("-1"), field: "seed ratio" },
    { key: "seed ratio", value: Bencode.text(""), field: "seed ratio" },
    { key: "max peers", value: Bencode.text("9"), field: "max peers" },
    { key: "peers", value: [[Bencode.text("h"), 70000n]], field: "peers[0].port" },
    { key: "peers", value: [[Bencode.text("h")]], field: "peers[0]" },
    { key: "peers", value: undefined, field: "peers" },
    { key: "files", value: [Bencode.text("urgent")], field: "files[0]" },
    { key: "files", value: 1n, field: "files" },
    { key: "download limit", value: -5n, field: "download limit" }
  ])("rejects a bad $key ($field)", ({ key, value, field }) => {
    const e = failure(changed(key, value))
    expect(e.field).toBe(field)
    expect(e.message).toMatch(/^invalid session record: /)
  })
})
