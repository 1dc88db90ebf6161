import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

const decodeOk = (s: string | Uint8Array): Bencode.Bencode =>
  Either.getOrThrow(Bencode.decode(typeof s === "string" ? ascii(s) : s))

const decodeErr = (s: string | Uint8Array): Bencode.BencodeError =>
  Either.getOrThrowWith(Either.flip(Bencode.decode(typeof s === "string" ? ascii(s) : s)), () => new Error(`decoded: ${s}`))

/** Canonical values: dictionaries are built with their keys in sorted byte order, as `encode` writes them. */
const canonicalDict = (entries: ReadonlyArray<readonly [Uint8Array, Bencode.Bencode]>): Bencode.BencodeDict => {
  const byKey = new Map<string, Bencode.Bencode>()
  for (const [k, v] of entries) byKey.set(Bencode.bytesToKey(k), v)
  return new Map([...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

const { value: arbValue, dict: arbDict } = fc.letrec<{ value: Bencode.Bencode; dict: Bencode.BencodeDict }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.uint8Array({ maxLength: 24 }),
    fc.bigInt(),
    fc.array(tie("value"), { maxLength: 5 }),
    tie("dict")
  ),
  dict: fc
    .array(fc.tuple(fc.uint8Array({ maxLength: 6 }), tie("value")), { maxLength: 5 })
    .map(canonicalDict)
}))

/** Inputs from bencode's own alphabet reach far deeper into the grammar than uniform bytes. */
const arbGrammarBytes = fc
  .array(fc.constantFrom(..."ildeild0123456789:-x"), { maxLength: 40 })
  .map((cs) => ascii(cs.join("")))

describe("Bencode", () => {
  describe("round trip", () => {
    it.prop("decode(encode(v)) equals v, and encoding is canonical", [arbValue], ([v]) => {
      const bytes = Bencode.encode(v)
      const back = decodeOk(bytes)
      expect(back).toEqual(v)
      expect(Bencode.encode(back)).toEqual(bytes)
    }, { fastCheck: { numRuns: 500 } })

    it("sorts dictionary keys by their raw bytes", () => {
      const d = new Map<string, Bencode.Bencode>([["b", 1n], ["a", 2n], ["\xff", 3n], ["B", 4n]])
      expect(Bencode.encode(d)).toEqual(ascii("d1:Bi4e1:ai2e1:bi1e1:\xffi3ee"))
    })

    it("keeps integers exact past 2^53", () => {
      const big = 2n ** 53n + 1n
      expect(decodeOk(`i${big}e`)).toBe(big)
      expect(decodeOk("i-123456789012345678901234567890e")).toBe(-123456789012345678901234567890n)
      expect(Bencode.toJson(decodeOk(`i${big}e`))).toBe("9007199254740993")
      expect(Bencode.encode(big)).toEqual(ascii("i9007199254740993e"))
    })

    it("keeps byte strings as bytes, including non-UTF-8", () => {
      const raw = new Uint8Array([0xff, 0x00, 0x80, 0x3a])
      const v = decodeOk(new Uint8Array([0x34, 0x3a, ...raw]))
      expect(v).toEqual(raw)
    })
  })

  describe("decodeDictWithSpans", () => {
    it.prop("each span holds exactly the bytes of its value in canonical input", [arbDict], ([d]) => {
      const bytes = Bencode.encode(d)
      const { dict, spans } = Either.getOrThrow(Bencode.decodeDictWithSpans(bytes))
      expect([...spans.keys()]).toEqual([...d.keys()])
      for (const [key, span] of spans) {
        expect(bytes.subarray(span.start, span.end)).toEqual(Bencode.encode(dict.get(key)!))
      }
    }, { fastCheck: { numRuns: 300 } })

    it("gives the span of a value as written, even when the input is not canonical", () => {
      const bytes = ascii("d4:infod1:bi1e1:ai2ee3:fooi1ee")
      const { spans } = Either.getOrThrow(Bencode.decodeDictWithSpans(bytes))
      const span = spans.get("info")!
      expect(new TextDecoder().decode(bytes.subarray(span.start, span.end))).toBe("d1:bi1e1:ai2ee")
    })

    it("rejects a non-dictionary and a cut dictionary", () => {
      expect(Either.flip(Bencode.decodeDictWithSpans(ascii("le")))).toEqual(Either.right(expect.objectContaining({ offset: 0 })))
      expect(Either.flip(Bencode.decodeDictWithSpans(ascii("d3:foo")))).toEqual(Either.right(expect.objectContaining({ offset: 6 })))
    })

    it.prop("ignores any bytes after the dictionary", [arbDict, fc.uint8Array({ maxLength: 32 })], ([d, trailing]) => {
      const bytes = Bencode.encode(d)
      const withTrailing = new Uint8Array([...bytes, ...trailing])
      const { dict, spans } = Either.getOrThrow(Bencode.decodeDictWithSpans(withTrailing))
      expect(Bencode.encode(dict)).toEqual(bytes)
      for (const span of spans.values()) expect(span.end).toBeLessThanOrEqual(bytes.length)
    }, { fastCheck: { numRuns: 200 } })
  })

  describe("malformed input", () => {
    it.prop("never throws on arbitrary bytes", [fc.uint8Array({ maxLength: 64 })], ([bytes]) => {
      const r = Bencode.decode(bytes)
      if (Either.isLeft(r)) expect(r.left).toBeInstanceOf(Bencode.BencodeError)
    }, { fastCheck: { numRuns: 1000 } })

    it.prop("never throws on grammar-shaped bytes, and an error's offset lies within the input", [arbGrammarBytes], ([bytes]) => {
      const results: ReadonlyArray<Either.Either<unknown, Bencode.BencodeError>> = [Bencode.decode(bytes), Bencode.decodeDictWithSpans(bytes)]
      for (const r of results) {
        if (Either.isLeft(r)) {
          expect(r.left._tag).toBe("BencodeError")
          expect(r.left.offset).toBeGreaterThanOrEqual(0)
          expect(r.left.offset).toBeLessThanOrEqual(bytes.length)
        }
      }
    }, { fastCheck: { numRuns: 2000 } })

    it.prop("never throws on a valid encoding with one byte changed or cut", [arbValue, fc.nat(), fc.integer({ min: -1, max: 255 })], ([v, at, byte]) => {
      const bytes = Bencode.encode(v)
      const i = at % bytes.length
      const mutated = byte < 0 ? bytes.subarray(0, i) : Uint8Array.from(bytes, (b, j) => (j === i ? byte : b))
      const r = Bencode.decode(mutated)
      if (Either.isLeft(r)) expect(r.left).toBeInstanceOf(Bencode.BencodeError)
    }, { fastCheck: { numRuns: 1000 } })

    const cases: ReadonlyArray<{ readonly input: string; readonly offset: number; readonly expected: string }> = [
      { input: "i03e", offset: 1, expected: "leading zero" },
      { input: "i-0e", offset: 1, expected: "negative zero" },
      { input: "i-03e", offset: 2, expected: "leading zero" },
      { input: "ie", offset: 1, expected: "a digit" },
      { input: "i-e", offset: 2, expected: "a digit" },
      { input: "i12", offset: 3, expected: "'e' closing the integer" },
      { input: "i1.5e", offset: 2, expected: "'e' closing the integer" },
      { input: "5:abc", offset: 0, expected: "declared 5, 3 bytes left" },
      { input: "99999999999:x", offset: 0, expected: "declared 99999999999, 1 byte left" },
      { input: "01:a", offset: 0, expected: "no leading zero in a string length" },
      { input: "3abc", offset: 1, expected: "':' after the string length" },
      { input: "l", offset: 1, expected: "'e' closing the list" },
      { input: "li1e", offset: 4, expected: "'e' closing the list" },
      { input: "d", offset: 1, expected: "'e' closing the dictionary" },
      { input: "d3:fooe", offset: 6, expected: "a value for the key at byte 1" },
      { input: "di1ei2ee", offset: 1, expected: "a byte-string dictionary key" },
      { input: "d1:ai1e1:ai2ee", offset: 7, expected: "no duplicate dictionary key" },
      { input: "", offset: 0, expected: "a value (input ended)" },
      { input: "x", offset: 0, expected: "'i', 'l', 'd' or a digit" },
      { input: "i1ex", offset: 3, expected: "end of input after the value" },
      { input: "5:helloX", offset: 7, expected: "end of input after the value" },
      { input: "lee", offset: 2, expected: "end of input after the value" }
    ]
    it.each(cases)("rejects $input at byte $offset ($expected)", ({ input, offset, expected }) => {
      const e = decodeErr(input)
      expect(e.offset).toBe(offset)
      expect(e.expected).toContain(expected)
      expect(e.message).toBe(`invalid bencode at byte ${offset}: expected ${e.expected}`)
    })

    it("rejects 10^5 nested lists quickly, without overflowing the stack", () => {
      const deep = new Uint8Array(100_000).fill(0x6c)
      const started = performance.now()
      const e = decodeErr(deep)
      expect(performance.now() - started).toBeLessThan(500)
      expect(e.offset).toBe(Bencode.maxDepth)
      expect(e.expected).toContain("nesting")
      // At the limit exactly, a well-formed value still decodes.
      const ok = ascii("l".repeat(Bencode.maxDepth) + "e".repeat(Bencode.maxDepth))
      expect(Either.isRight(Bencode.decode(ok))).toBe(true)
    })

    it("rejects a string length of a million digits without reading it as a number", () => {
      const e = decodeErr(ascii("9".repeat(1_000_000) + ":x"))
      expect(e.offset).toBe(0)
      expect(e.expected).toContain("a 1000000-digit number, 1 byte left")
    })
  })

  describe("decodePrefix", () => {
    it("stops after one value and reports its end", () => {
      expect(Bencode.decodePrefix(ascii("xxi42e4:rest"), 2)).toEqual(Either.right({ value: 42n, end: 6 }))
    })
  })

  describe("toJson", () => {
    it("prints as the decode command does (CONTRACT.md)", () => {
      expect(Bencode.toJson(decodeOk("5:hello"))).toBe('"hello"')
      expect(Bencode.toJson(decodeOk("i-52e"))).toBe("-52")
      expect(Bencode.toJson(decodeOk("lli4eei5ee"))).toBe("[[4],5]")
      expect(Bencode.toJson(decodeOk("le"))).toBe("[]")
      expect(Bencode.toJson(decodeOk("d3:foo3:bar5:helloi52ee"))).toBe('{"foo":"bar","hello":52}')
      // Keys in input order, not sorted.
      expect(Bencode.toJson(decodeOk("d1:bi1e1:ai2ee"))).toBe('{"b":1,"a":2}')
      expect(Bencode.toJson(decodeOk('4:a"\\b'))).toBe('"a\\"\\\\b"')
    })
  })

  describe("helpers", () => {
    it("builds and reads dictionaries by text key", () => {
      const d = Bencode.dict({ "piece length": Bencode.int(5), name: Bencode.text("é"), gone: undefined })
      expect([...d.keys()]).toEqual(["piece length", "name"])
      expect(Bencode.get(d, "piece length")).toBe(5n)
      expect(Bencode.toText(Bencode.get(d, "name") as Uint8Array)).toBe("é")
      expect(Bencode.encode(d)).toEqual(Bencode.text("d4:name2:é12:piece lengthi5ee"))
      expect(Bencode.keyToBytes(Bencode.bytesToKey(new Uint8Array([0, 255, 128])))).toEqual(new Uint8Array([0, 255, 128]))
    })
  })
})
