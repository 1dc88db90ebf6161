/**
 * Bencode (BEP 3): a strict decoder and a canonical encoder.
 *
 * Value model: byte strings are `Uint8Array` (bencode strings are bytes, not text), integers are
 * `bigint` (exact past 2^53), lists are arrays and dictionaries are `Map`s keyed by the key's raw
 * bytes as a latin1 ("binary") string, one char per byte, in the order they stand in the input.
 */
import { Data, Either } from "effect"
import { concatBytes } from "./Bytes.js"

export type Bencode = Uint8Array | bigint | BencodeList | BencodeDict
export interface BencodeList extends ReadonlyArray<Bencode> {}
export type BencodeDict = ReadonlyMap<string, Bencode>

/** Malformed bencode: where it went wrong and what the decoder expected there. */
export class BencodeError extends Data.TaggedError("BencodeError")<{
  readonly offset: number
  readonly expected: string
}> {
  override get message() {
    return `invalid bencode at byte ${this.offset}: expected ${this.expected}`
  }
}

/** Deeper nesting than this is rejected, so `llll…` cannot exhaust the stack. */
export const maxDepth = 256

/** Byte span `[start, end)` of a value inside the decoded input. */
export interface Span {
  readonly start: number
  readonly end: number
}

const COLON = 0x3a
const MINUS = 0x2d
const ZERO = 0x30
const NINE = 0x39
const LETTER_I = 0x69
const LETTER_L = 0x6c
const LETTER_D = 0x64
const LETTER_E = 0x65

const isDigit = (b: number | undefined): boolean => b !== undefined && b >= ZERO && b <= NINE

/** A latin1 string with one char per byte: how dictionary keys are stored. */
export const bytesToKey = (bytes: Uint8Array): string => {
  let s = ""
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!)
  return s
}

export const keyToBytes = (key: string): Uint8Array => {
  const out = new Uint8Array(key.length)
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i) & 0xff
  return out
}

class Failure {
  constructor(readonly offset: number, readonly expected: string) {}
}

/**
 * Recursive-descent decoder over one input. Failures are thrown as a private `Failure` and turned
 * into a typed `BencodeError` at the module boundary: no exception ever leaves this module.
 */
class Decoder {
  pos: number
  constructor(readonly bytes: Uint8Array, start: number, readonly spans?: Map<string, Span>) {
    this.pos = start
  }

  fail(expected: string, at = this.pos): never {
    throw new Failure(at, expected)
  }

  value(depth: number): Bencode {
    const b = this.bytes[this.pos]
    if (b === undefined) return this.fail("a value (input ended)")
    if (b === LETTER_I) return this.integer()
    if (isDigit(b)) return this.string()
    if (b === LETTER_L || b === LETTER_D) {
      if (depth >= maxDepth) return this.fail(`nesting of at most ${maxDepth} levels`)
      return b === LETTER_L ? this.list(depth + 1) : this.dict(depth + 1)
    }
    return this.fail("'i', 'l', 'd' or a digit")
  }

  integer(): bigint {
    const start = ++this.pos
    const bytes = this.bytes
    if (bytes[this.pos] === MINUS) this.pos++
    const digitsStart = this.pos
    while (isDigit(bytes[this.pos])) this.pos++
    const digits = this.pos - digitsStart
    if (digits === 0) return this.fail("a digit", digitsStart)
    if (bytes[digitsStart] === ZERO && digits > 1) return this.fail("no leading zero", digitsStart)
    if (bytes[digitsStart] === ZERO && digitsStart > start) return this.fail("no negative zero", start)
    if (bytes[this.pos] !== LETTER_E) return this.fail("'e' closing the integer")
    let text = ""
    for (let i = start; i < this.pos; i++) text += String.fromCharCode(bytes[i]!)
    this.pos++
    return BigInt(text)
  }

  string(): Uint8Array {
    const bytes = this.bytes
    const start = this.pos
    // Accumulate only while the length could still fit the input: a longer digit run cannot be a
    // valid length, and stopping there keeps the number exact (no float rounding, no Infinity).
    let length = 0
    while (isDigit(bytes[this.pos])) {
      if (length <= bytes.length) length = length * 10 + (bytes[this.pos]! - ZERO)
      this.pos++
    }
    const digits = this.pos - start
    if (bytes[start] === ZERO && digits > 1) return this.fail("no leading zero in a string length", start)
    if (bytes[this.pos] !== COLON) return this.fail("':' after the string length")
    this.pos++
    const left = bytes.length - this.pos
    if (length > left) {
      const declared = digits <= 20 ? bytesToKey(bytes.subarray(start, start + digits)) : `a ${digits}-digit number`
      return this.fail(`a string length that fits the input (declared ${declared}, ${left} byte${left === 1 ? "" : "s"} left)`, start)
    }
    const out = bytes.subarray(this.pos, this.pos + length)
    this.pos += length
    return out
  }

  list(depth: number): BencodeList {
    this.pos++
    const items: Array<Bencode> = []
    while (this.bytes[this.pos] !== LETTER_E) {
      if (this.pos >= this.bytes.length) return this.fail("'e' closing the list (input ended)")
      items.push(this.value(depth))
    }
    this.pos++
    return items
  }

  dict(depth: number): BencodeDict {
    const recordSpans = depth === 1 ? this.spans : undefined
    this.pos++
    const entries = new Map<string, Bencode>()
    while (this.bytes[this.pos] !== LETTER_E) {
      if (this.pos >= this.bytes.length) return this.fail("'e' closing the dictionary (input ended)")
      if (!isDigit(this.bytes[this.pos])) return this.fail("a byte-string dictionary key")
      const keyAt = this.pos
      const key = bytesToKey(this.string())
      if (entries.has(key)) return this.fail("no duplicate dictionary key", keyAt)
      if (this.bytes[this.pos] === LETTER_E) return this.fail(`a value for the key at byte ${keyAt}`)
      const valueStart = this.pos
      entries.set(key, this.value(depth))
      recordSpans?.set(key, { start: valueStart, end: this.pos })
    }
    this.pos++
    return entries
  }
}

const run = <A>(f: () => A): Either.Either<A, BencodeError> => {
  try {
    return Either.right(f())
  } catch (e) {
    if (e instanceof Failure) return Either.left(new BencodeError({ offset: e.offset, expected: e.expected }))
    throw e
  }
}

/** Decodes one value that must span the whole input. */
export const decode = (bytes: Uint8Array): Either.Either<Bencode, BencodeError> =>
  run(() => {
    const d = new Decoder(bytes, 0)
    const value = d.value(0)
    if (d.pos !== bytes.length) d.fail("end of input after the value")
    return value
  })

/** Decodes one value starting at `start` and reports where it ends (trailing bytes allowed). */
export const decodePrefix = (
  bytes: Uint8Array,
  start = 0
): Either.Either<{ readonly value: Bencode; readonly end: number }, BencodeError> =>
  run(() => {
    const d = new Decoder(bytes, start)
    const value = d.value(0)
    return { value, end: d.pos }
  })

/**
 * Decodes a dictionary at the start of the input and gives the byte span of each top-level value, so
 * that the info hash is taken over the info dict's bytes exactly as they stand in the file. Bytes
 * after the dictionary are ignored (some torrent files carry them, and other clients accept them).
 */
export const decodeDictWithSpans = (
  bytes: Uint8Array
): Either.Either<{ readonly dict: BencodeDict; readonly spans: ReadonlyMap<string, Span> }, BencodeError> =>
  run(() => {
    if (bytes[0] !== LETTER_D) throw new Failure(0, "a dictionary ('d')")
    const spans = new Map<string, Span>()
    const d = new Decoder(bytes, 0, spans)
    const dict = d.dict(1) as BencodeDict
    return { dict, spans }
  })

// ---------------------------------------------------------------------------------------------
// Encoding

const textEncoder = new TextEncoder()

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

class Writer {
  readonly chunks: Array<Uint8Array> = []
  push(bytes: Uint8Array) {
    this.chunks.push(bytes)
  }
  ascii(text: string) {
    this.push(textEncoder.encode(text))
  }
}

const write = (w: Writer, value: Bencode): void => {
  if (value instanceof Uint8Array) {
    w.ascii(`${value.length}:`)
    w.push(value)
  } else if (typeof value === "bigint") {
    w.ascii(`i${value}e`)
  } else if (value instanceof Map) {
    w.ascii("d")
    // Canonical form: keys sorted as raw bytes (latin1 code units compare like bytes).
    for (const key of [...value.keys()].sort(compareKeys)) {
      w.push(keyToBytes(`${key.length}:`))
      w.push(keyToBytes(key))
      write(w, value.get(key)!)
    }
    w.ascii("e")
  } else {
    w.ascii("l")
    for (const item of value as BencodeList) write(w, item)
    w.ascii("e")
  }
}

/** Encodes canonically (dictionary keys sorted by their bytes). */
export const encode = (value: Bencode): Uint8Array => {
  const w = new Writer()
  write(w, value)
  return concatBytes(w.chunks)
}

// ---------------------------------------------------------------------------------------------
// Construction and access helpers

/** A byte string from text (UTF-8). */
export const text = (s: string): Uint8Array => textEncoder.encode(s)

/** A dictionary from a record of text keys; `undefined` values are left out. */
export const dict = (entries: Record<string, Bencode | undefined>): BencodeDict => {
  const out = new Map<string, Bencode>()
  for (const [k, v] of Object.entries(entries)) if (v !== undefined) out.set(bytesToKey(text(k)), v)
  return out
}

export const int = (n: number | bigint): bigint => BigInt(n)

export const isDict = (v: Bencode | undefined): v is BencodeDict => v instanceof Map
export const isList = (v: Bencode | undefined): v is BencodeList => Array.isArray(v)
export const isBytes = (v: Bencode | undefined): v is Uint8Array => v instanceof Uint8Array
export const isInt = (v: Bencode | undefined): v is bigint => typeof v === "bigint"

/** Looks a text key up in a dictionary (keys are stored as raw bytes). */
export const get = (d: BencodeDict, key: string): Bencode | undefined => d.get(bytesToKey(text(key)))

const utf8 = new TextDecoder("utf-8")

/** Decodes a byte string as UTF-8 text (invalid sequences become U+FFFD). */
export const toText = (bytes: Uint8Array): string => utf8.decode(bytes)

/**
 * JSON text of a value, as the `decode` command prints it: strings as UTF-8 text, integers bare
 * and exact, dictionary keys in input order, `JSON.stringify` spacing.
 */
export const toJson = (value: Bencode): string => {
  if (value instanceof Uint8Array) return JSON.stringify(toText(value))
  if (typeof value === "bigint") return value.toString()
  if (value instanceof Map) {
    const parts: Array<string> = []
    for (const [k, v] of value) parts.push(`${JSON.stringify(toText(keyToBytes(k)))}:${toJson(v)}`)
    return `{${parts.join(",")}}`
  }
  return `[${(value as BencodeList).map(toJson).join(",")}]`
}
