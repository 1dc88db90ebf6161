import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { type FilePriority, filePriorities } from "../../src/domain/FileSelection.js"
import { applyFileChanges, etaSeconds, fraction, parseTorrentRef, sseComment, sseEvent } from "../../src/domain/RestApi.js"

/** What a follower reads back from a stream of frames, the way EventSource splits them. */
const parseFrames = (text: string) =>
  text.split("\n\n").filter((block) => block !== "").map((block) => {
    const fields: Record<string, string> = {}
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (line.startsWith(":")) continue
      const colon = line.indexOf(":")
      fields[line.slice(0, colon)] = (fields[line.slice(0, colon)] ?? "") + line.slice(colon + 2)
    }
    return fields
  })

describe("parseTorrentRef", () => {
  it.prop("reads an id back from its decimal form", [fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })], ([id]) => {
    expect(parseTorrentRef(String(id))).toEqual(id > 999_999_999_999_999 ? undefined : { _tag: "Id", id })
  })

  it.prop("reads 40 hex digits as an info hash, lower case", [fc.stringMatching(/^[0-9a-fA-F]{40}$/)], ([hex]) => {
    expect(parseTorrentRef(hex)).toEqual({ _tag: "InfoHash", infoHash: hex.toLowerCase() })
  })

  it("names no torrent with anything else", () => {
    for (const text of ["", "0", "01", "-1", "1.5", "1e3", " 1", "abc", "a".repeat(39), "g".repeat(40), "a".repeat(41)]) {
      expect(parseTorrentRef(text)).toBeUndefined()
    }
  })
})

describe("fraction and etaSeconds", () => {
  it.prop("a fraction stays within 0..1", [fc.integer({ min: -10, max: 1e9 }), fc.integer({ min: -10, max: 1e9 })], ([done, total]) => {
    const f = fraction(done, total)
    expect(f >= 0 && f <= 1).toBe(true)
    if (total <= 0) expect(f).toBe(0)
  })

  it.prop("the time left covers what remains at the rate", [fc.integer({ min: 1, max: 1e12 }), fc.integer({ min: 1, max: 1e9 })], ([remaining, rate]) => {
    const eta = etaSeconds(remaining, rate)!
    expect(eta * rate).toBeGreaterThanOrEqual(remaining)
    expect((eta - 1) * rate).toBeLessThan(remaining)
  })

  it("is 0 when nothing remains and unknown when nothing arrives", () => {
    expect(etaSeconds(0, 0)).toBe(0)
    expect(etaSeconds(10, 0)).toBeUndefined()
  })
})

const prioritiesArb = fc.array(fc.constantFrom(...filePriorities), { minLength: 1, maxLength: 10 })

describe("applyFileChanges", () => {
  it.prop(
    "unwanted files are skipped, wanted ones keep a priority or become normal, the others stay",
    [prioritiesArb.chain((current) => fc.tuple(fc.constant(current), fc.uniqueArray(fc.nat(current.length - 1)), fc.uniqueArray(fc.nat(current.length - 1))))],
    ([[current, wanted, unwanted]]) => {
      const next = Either.getOrThrow(applyFileChanges(current, { wanted, unwanted }))
      expect(next).toHaveLength(current.length)
      next.forEach((p, i) => {
        const expected: FilePriority = unwanted.includes(i) ? "skip" : wanted.includes(i) && current[i] === "skip" ? "normal" : current[i]!
        expect(p).toBe(expected)
      })
    }
  )

  it("sets priorities by index before the wanted and unwanted lists", () => {
    const next = applyFileChanges(["normal", "normal", "skip"], { priorities: [{ index: 0, priority: "high" }, { index: 1, priority: "skip" }], wanted: [1] })
    expect(Either.getOrThrow(next)).toEqual(["high", "normal", "skip"])
  })

  it("refuses an index that is not a file of the torrent", () => {
    for (const bad of [-1, 3, 1.5]) {
      const error = Either.flip(applyFileChanges(["normal", "normal", "normal"], { unwanted: [bad] }))
      expect(Either.getOrThrow(error).message).toContain(`file ${bad} does not exist: the torrent has 3 files`)
    }
  })
})

describe("sseEvent", () => {
  it.prop("frames any JSON value as one event a follower reads back whole", [fc.string(), fc.jsonValue(), fc.option(fc.nat())], ([name, data, id]) => {
    const frame = sseEvent(`ev${name}`, data, id ?? undefined)
    const [fields, ...rest] = parseFrames(frame + sseComment(`keep\nalive ${name}`))
    expect(rest).toEqual([{}])
    expect(fields!["event"]).toBe(`ev${name}`.replace(/[\r\n]/g, ""))
    expect(JSON.parse(fields!["data"]!)).toEqual(JSON.parse(JSON.stringify(data)))
    if (id !== null) expect(fields!["id"]).toBe(String(id))
  })
})
