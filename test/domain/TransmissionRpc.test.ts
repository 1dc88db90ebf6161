import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { type FilePriority, filePriorities } from "../../src/domain/FileSelection.js"
import {
  applyFileChanges,
  asTable,
  decodeBase64,
  decodeRequest,
  eta,
  freeSpaceAnswer,
  fromKBps,
  nextLimit,
  peerFlags,
  readFreeSpacePath,
  readIds,
  selects,
  splitAddress,
  statusCode,
  toKBps
} from "../../src/domain/TransmissionRpc.js"

const left = <A, E>(e: Either.Either<A, E>) => Either.getOrThrowWith(Either.flip(e), () => new Error("expected a failure"))
const right = <A, E>(e: Either.Either<A, E>) => Either.getOrThrow(e)
const hashArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString("hex"))

describe("request envelope", () => {
  it.prop("an object with a method name decodes, its tag kept whatever it is", [fc.string(), fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())], ([method, tag, args]) => {
    expect(right(decodeRequest({ method, tag, arguments: args }))).toEqual({ method, tag, arguments: args })
    expect(right(decodeRequest({ method })).arguments).toEqual({})
  })

  it.prop("anything else is refused with a message, never a throw", [fc.jsonValue()], ([body]) => {
    const decoded = decodeRequest(body)
    const ok = typeof body === "object" && body !== null && !Array.isArray(body) && typeof (body as { method?: unknown }).method === "string"
    if (Either.isLeft(decoded)) expect(decoded.left.message).not.toBe("")
    else expect(ok).toBe(true)
  })

  it("names what is wrong", () => {
    expect(left(decodeRequest([])).message).toBe("the request is not a JSON object")
    expect(left(decodeRequest({})).message).toBe("no method name")
    expect(left(decodeRequest({ method: "x", arguments: [1] })).message).toBe("arguments is not an object")
  })
})

describe("ids", () => {
  it.prop("numbers, hashes (any case) and lists of both select exactly those torrents", [fc.array(fc.nat({ max: 50 }), { maxLength: 5 }), fc.array(hashArb, { maxLength: 3 }), fc.nat({ max: 50 }), hashArb], ([ids, hashes, id, hash]) => {
    const selector = right(readIds([...ids, ...hashes.map((h) => h.toUpperCase())]))
    expect(selects(selector, { id, infoHash: hash })).toBe(ids.includes(id) || hashes.includes(hash))
    expect(selects(right(readIds(id)), { id, infoHash: hash })).toBe(true)
    expect(selects(right(readIds(hash)), { id: id + 1000, infoHash: hash })).toBe(true)
  })

  it("absent is all; recently-active is its own; anything else is an error", () => {
    expect(right(readIds(undefined))).toEqual({ _tag: "All" })
    expect(right(readIds("recently-active"))).toEqual({ _tag: "RecentlyActive" })
    for (const bad of ["abc", 1.5, -1.5, {}, [null], [true]]) expect(left(readIds(bad)).message).toMatch(/^ids: /)
  })
})

const priorityArb = fc.constantFrom<FilePriority>(...filePriorities)

describe("file changes", () => {
  it.prop("unwanted files are skipped, wanted ones come back normal; priorities leave unwanted files alone", [fc.array(priorityArb, { minLength: 1, maxLength: 8 }), fc.nat()], ([current, pick]) => {
    const i = pick % current.length
    expect(right(applyFileChanges(current, { unwanted: [i] }))[i]).toBe("skip")
    expect(right(applyFileChanges(current, { wanted: [i] }))[i]).toBe(current[i] === "skip" ? "normal" : current[i])
    expect(right(applyFileChanges(current, { high: [i] }))[i]).toBe(current[i] === "skip" ? "skip" : "high")
    // An empty list is every file.
    expect(right(applyFileChanges(current, { unwanted: [] }))).toEqual(current.map(() => "skip"))
    expect(right(applyFileChanges(current, { wanted: [], low: [] }))).toEqual(current.map(() => "low"))
    expect(right(applyFileChanges(current, {}))).toEqual(current)
  })

  it("an index past the last file is an error", () => {
    expect(left(applyFileChanges(["normal", "normal"], { wanted: [2] })).message).toBe("file index 2 does not exist: the torrent has 2 files")
  })
})

describe("numbers and names", () => {
  it("status codes as Transmission numbers them", () => {
    expect(["paused", "finished", "error", "checking", "metadata", "downloading", "seeding"].map((s) => statusCode(s, false))).toEqual([0, 0, 0, 2, 4, 4, 6])
    expect([statusCode("queued", false), statusCode("queued", true)]).toEqual([3, 5])
  })

  it.prop("eta: -1 when done, -2 without a rate, else whole seconds", [fc.nat(), fc.double({ min: 0, max: 1e9, noNaN: true })], ([left, rate]) => {
    const e = eta(left, rate)
    if (left === 0) expect(e).toBe(-1)
    else if (rate === 0) expect(e).toBe(-2)
    else expect(e).toBe(Math.round(left / rate))
  })

  it.prop("kB/s are 1000 bytes per second, whole both ways", [fc.nat({ max: 1e9 })], ([kBps]) => {
    expect(toKBps(fromKBps(kBps))).toBe(kBps)
    expect(toKBps(undefined)).toBe(0)
  })

  it.prop("a limit value turns it on unless told off; on without a value keeps the current one, else 100 kB/s", [fc.option(fc.nat({ max: 1e6 }), { nil: undefined }), fc.option(fc.nat({ max: 1e4 }), { nil: undefined }), fc.option(fc.boolean(), { nil: undefined })], ([current, kBps, limited]) => {
    const next = nextLimit(current === 0 ? undefined : current, kBps, limited)
    if (limited === false) expect(next).toBeUndefined()
    else if (kBps !== undefined) expect(next).toBe(kBps * 1000)
    else if (limited === true) expect(next).toBe(current || 100_000)
    else expect(next).toBe(current || undefined)
  })

  it("peer flags in Transmission's letters", () => {
    const base = { amChoking: true, amInterested: false, peerChoking: true, peerInterested: false, encrypted: false, inbound: false, transport: "tcp" as const }
    expect(peerFlags(base)).toBe("")
    expect(peerFlags({ ...base, amInterested: true, peerChoking: false, peerInterested: true, amChoking: false, encrypted: true, inbound: true, transport: "utp" })).toBe("DUEIT")
    expect(peerFlags({ ...base, amInterested: true, peerInterested: true })).toBe("du")
    expect(peerFlags({ ...base, peerChoking: false, amChoking: false })).toBe("K?")
  })

  it("peer addresses split into host and port, IPv6 without brackets", () => {
    expect(splitAddress("10.0.0.1:6881")).toEqual({ address: "10.0.0.1", port: 6881 })
    expect(splitAddress("[::1]:51413")).toEqual({ address: "::1", port: 51413 })
  })

  it.prop("the table form: field names, then each torrent's values in that order", [fc.uniqueArray(fc.string(), { maxLength: 5 }), fc.array(fc.dictionary(fc.string(), fc.integer()), { maxLength: 4 })], ([fields, torrents]) => {
    const table = asTable(fields, torrents)
    expect(table[0]).toEqual(fields)
    expect(table.slice(1)).toEqual(torrents.map((t) => fields.map((f) => t[f])))
  })

  it.prop("metainfo in base64 decodes to its bytes, line breaks allowed; other text is refused", [fc.uint8Array({ maxLength: 300 })], ([bytes]) => {
    const text = Buffer.from(bytes).toString("base64")
    expect([...right(decodeBase64(text.replace(/(.{76})/g, "$1\n")))]).toEqual([...bytes])
    expect(left(decodeBase64(`${text}!`)).message).toBe("metainfo is not base64")
  })
})

describe("free-space", () => {
  it.each([
    [{}, "directory path argument is missing"],
    [{ path: "" }, "directory path argument is missing"],
    [{ path: 3 }, "path is not a string"],
    [{ path: "downloads" }, "directory path is not absolute"],
    [{ path: "./x" }, "directory path is not absolute"]
  ])("%j is refused: %s", (args, message) => {
    expect(left(readFreeSpacePath(args)).message).toBe(message)
  })

  it("an absolute path is taken as it is", () => {
    expect(right(readFreeSpacePath({ path: "/srv/torrents" }))).toBe("/srv/torrents")
  })

  it.prop("answers the free and whole sizes in bytes", [fc.nat(1 << 16), fc.nat(1 << 30), fc.nat(1 << 30)], ([bsize, blocks, bavail]) => {
    expect(freeSpaceAnswer("/p", { bsize, blocks, bavail })).toEqual({ path: "/p", "size-bytes": bavail * bsize, total_size: blocks * bsize })
  })
})
