/**
 * The extension protocol (BEP 10) handshake and the metadata extension (BEP 9, `ut_metadata`):
 * pure codecs for the payloads of extended messages (what follows the extended id),
 * `answerMetadataRequest` for the side that serves the info dict, and `MetadataAssembler`, which
 * puts it back together from its 16 KiB pieces and checks it against the info hash.
 */
import { createHash } from "node:crypto"
import { isIPv4, isIPv6 } from "node:net"
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { concatBytes, equalBytes, toHex } from "./Bytes.js"

export type ExtensionErrorReason =
  /** Not bencode, or not the shape BEP 9/10 describe. */
  | "Malformed"
  /** A metadata size of 0, or above `maxMetadataSize`. */
  | "MetadataSize"
  /** A metadata piece with an index out of range, the wrong size, or another total size. */
  | "BadPiece"
  /** The assembled metadata does not hash to the info hash. */
  | "HashMismatch"

export class ExtensionError extends Data.TaggedError("ExtensionError")<{
  readonly reason: ExtensionErrorReason
  readonly detail: string
  /** Hex SHA-1s, for HashMismatch. */
  readonly expected?: string
  readonly actual?: string
}> {
  override get message() {
    return this.reason === "HashMismatch"
      ? `metadata hash mismatch: expected ${this.expected}, got ${this.actual}`
      : this.detail
  }
}

const fail = (reason: ExtensionErrorReason, detail: string): Either.Either<never, ExtensionError> =>
  Either.left(new ExtensionError({ reason, detail }))

/** The extended message id of the extension handshake (BEP 10). */
export const extensionHandshakeId = 0
export const utMetadataName = "ut_metadata"
/** The id under which we accept ut_metadata messages (what we put in our handshake's `m`). */
export const ourUtMetadataId = 1
/** Peer exchange (BEP 11). */
export const utPexName = "ut_pex"
/** The id under which we accept ut_pex messages (offered unless the torrent is private). */
export const ourUtPexId = 2
/** Metadata travels in pieces of 16 KiB; only the last may be shorter (BEP 9). */
export const metadataPieceSize = 16384
/**
 * The largest metadata we accept: about 400k piece hashes (400 GiB in 1 MiB pieces), far above real
 * torrents, and small enough that a lying peer cannot make us allocate much.
 */
export const maxMetadataSize = 8 * 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Extension handshake (BEP 10)

export interface ExtendedHandshake {
  /** Extension name to the id the sender wants to receive it under; 0 means disabled. */
  readonly m: ReadonlyMap<string, number>
  /** BEP 9: the size of the info dict, from a peer that has it. */
  readonly metadataSize?: number
  /** Client name and version. */
  readonly v?: string
  /** The sender's listening port. */
  readonly p?: number
  /** How many outstanding requests the sender queues. */
  readonly reqq?: number
  /** The address the sender sees us from: 4 bytes (IPv4) or 16 (IPv6). */
  readonly yourip?: Uint8Array
}

type Parsed<A> = Either.Either<A, ExtensionError>

/** A non-negative integer within `max`, or a Malformed error naming `field`. */
const intField = (v: Bencode.Bencode, field: string, max: number): Parsed<number> =>
  Bencode.isInt(v) && v >= 0n && v <= BigInt(max)
    ? Either.right(Number(v))
    : fail("Malformed", `${field} must be an integer from 0 to ${max}`)

/** An optional field: absent gives undefined. */
const optional = <A>(v: Bencode.Bencode | undefined, parse: (v: Bencode.Bencode) => Parsed<A>): Parsed<A | undefined> =>
  v === undefined ? Either.right(undefined) : parse(v)

const decodeDict = (payload: Uint8Array, what: string): Parsed<Bencode.BencodeDict> =>
  Either.flatMap(
    Either.mapLeft(Bencode.decode(payload), (e) => new ExtensionError({ reason: "Malformed", detail: `${what}: ${e.message}` })),
    (v) => (Bencode.isDict(v) ? Either.right(v) : fail("Malformed", `${what} must be a dictionary`))
  )

/**
 * Decodes an extension handshake payload. Unknown keys are ignored; the known ones must have
 * their documented types. A missing `m` is an empty one (Transmission sends it empty).
 */
export const decodeExtendedHandshake = (payload: Uint8Array): Parsed<ExtendedHandshake> =>
  Either.gen(function* () {
    const d = yield* decodeDict(payload, "extension handshake")
    const rawM = Bencode.get(d, "m")
    const m = new Map<string, number>()
    if (rawM !== undefined) {
      if (!Bencode.isDict(rawM)) return yield* fail("Malformed", "extension handshake: m must be a dictionary")
      for (const [key, value] of rawM) {
        const name = Bencode.toText(Bencode.keyToBytes(key))
        m.set(name, yield* intField(value, `extension handshake: m.${name}`, 255))
      }
    }
    const metadataSize = yield* optional(Bencode.get(d, "metadata_size"), (v) =>
      intField(v, "extension handshake: metadata_size", Number.MAX_SAFE_INTEGER)
    )
    const v = yield* optional(Bencode.get(d, "v"), (v) =>
      Bencode.isBytes(v) ? Either.right(Bencode.toText(v)) : fail("Malformed", "extension handshake: v must be a byte string")
    )
    const p = yield* optional(Bencode.get(d, "p"), (v) => intField(v, "extension handshake: p", 65535))
    const reqq = yield* optional(Bencode.get(d, "reqq"), (v) => intField(v, "extension handshake: reqq", 0xffffffff))
    // Only a hint about ourselves: one of another shape is ignored rather than fatal.
    const rawYourip = Bencode.get(d, "yourip")
    const yourip = rawYourip !== undefined && Bencode.isBytes(rawYourip) && (rawYourip.length === 4 || rawYourip.length === 16)
      ? rawYourip
      : undefined
    return {
      m,
      ...(metadataSize === undefined ? {} : { metadataSize }),
      ...(v === undefined ? {} : { v }),
      ...(p === undefined ? {} : { p }),
      ...(reqq === undefined ? {} : { reqq }),
      ...(yourip === undefined ? {} : { yourip })
    }
  })

export const encodeExtendedHandshake = (h: ExtendedHandshake): Uint8Array => {
  const m = new Map<string, Bencode.Bencode>()
  for (const [name, id] of h.m) m.set(Bencode.bytesToKey(Bencode.text(name)), Bencode.int(id))
  return Bencode.encode(
    Bencode.dict({
      m,
      metadata_size: h.metadataSize === undefined ? undefined : Bencode.int(h.metadataSize),
      v: h.v === undefined ? undefined : Bencode.text(h.v),
      p: h.p === undefined ? undefined : Bencode.int(h.p),
      reqq: h.reqq === undefined ? undefined : Bencode.int(h.reqq),
      yourip: h.yourip
    })
  )
}

/** The handshake we send when fetching metadata: `{"m": {"ut_metadata": 1}}` and nothing else. */
export const metadataFetchHandshake: ExtendedHandshake = { m: new Map([[utMetadataName, ourUtMetadataId]]) }

/** The id a peer wants an extension's messages sent under, or undefined when it does not offer it. */
export const peerExtensionId = (h: ExtendedHandshake, name: string): number | undefined => {
  const id = h.m.get(name)
  return id === undefined || id === 0 ? undefined : id
}

/** The id a peer wants ut_metadata messages sent under, or undefined when it does not offer it. */
export const peerUtMetadataId = (h: ExtendedHandshake): number | undefined => peerExtensionId(h, utMetadataName)

/**
 * An address in the compact form `yourip` carries: 4 bytes for IPv4, 16 for IPv6 (an
 * IPv4-mapped IPv6 address gives its 4 IPv4 bytes); undefined when it is not an IP address.
 */
export const compactIp = (host: string): Uint8Array | undefined => {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)
  const address = mapped === null ? host : mapped[1]!
  if (isIPv4(address)) return new Uint8Array(address.split(".").map(Number))
  if (!isIPv6(address) || address.includes(".") || address.includes("%")) return undefined
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined]
  const groups = (text: string | undefined) => (text === undefined || text === "" ? [] : text.split(":"))
  const left = groups(head)
  const right = groups(tail)
  const words = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right]
  const bytes = new Uint8Array(16)
  words.forEach((word, k) => {
    const value = parseInt(word, 16)
    bytes[2 * k] = value >> 8
    bytes[2 * k + 1] = value & 0xff
  })
  return bytes
}

// ---------------------------------------------------------------------------------------------
// ut_metadata messages (BEP 9)

export interface MetadataRequest { readonly _tag: "Request"; readonly piece: number }
/** `data` is the raw piece after the dictionary (a view into the payload). */
export interface MetadataData {
  readonly _tag: "Data"
  readonly piece: number
  readonly totalSize: number
  readonly data: Uint8Array
}
export interface MetadataReject { readonly _tag: "Reject"; readonly piece: number }
/** A msg_type BEP 9 does not define: receivers must ignore it. */
export interface MetadataUnknown { readonly _tag: "Unknown"; readonly msgType: number }

export type MetadataMessage = MetadataRequest | MetadataData | MetadataReject | MetadataUnknown

const msgTypes = { Request: 0, Data: 1, Reject: 2 } as const

/** The payload of a ut_metadata message (to follow the receiver's extended id). */
export const encodeMetadataMessage = (m: MetadataRequest | MetadataData | MetadataReject): Uint8Array => {
  const head = Bencode.encode(
    Bencode.dict({
      msg_type: Bencode.int(msgTypes[m._tag]),
      piece: Bencode.int(m.piece),
      total_size: m._tag === "Data" ? Bencode.int(m.totalSize) : undefined
    })
  )
  return m._tag === "Data" ? concatBytes([head, m.data]) : head
}

/** Decodes a ut_metadata payload: a dictionary, followed by the raw piece for a data message only. */
export const decodeMetadataMessage = (payload: Uint8Array): Parsed<MetadataMessage> =>
  Either.gen(function* () {
    const prefix = yield* Either.mapLeft(
      Bencode.decodePrefix(payload, 0),
      (e) => new ExtensionError({ reason: "Malformed", detail: `ut_metadata message: ${e.message}` })
    )
    const d = prefix.value
    if (!Bencode.isDict(d)) return yield* fail("Malformed", "ut_metadata message must start with a dictionary")
    const rawType = Bencode.get(d, "msg_type")
    if (rawType === undefined) return yield* fail("Malformed", "ut_metadata message without msg_type")
    const msgType = yield* intField(rawType, "ut_metadata msg_type", Number.MAX_SAFE_INTEGER)
    if (msgType > msgTypes.Reject) return { _tag: "Unknown", msgType } as const
    const rawPiece = Bencode.get(d, "piece")
    if (rawPiece === undefined) return yield* fail("Malformed", "ut_metadata message without piece")
    const piece = yield* intField(rawPiece, "ut_metadata piece", Number.MAX_SAFE_INTEGER)
    if (msgType === msgTypes.Data) {
      const rawTotal = Bencode.get(d, "total_size")
      if (rawTotal === undefined) return yield* fail("Malformed", "ut_metadata data message without total_size")
      const totalSize = yield* intField(rawTotal, "ut_metadata total_size", Number.MAX_SAFE_INTEGER)
      return { _tag: "Data", piece, totalSize, data: payload.subarray(prefix.end) } as const
    }
    if (prefix.end !== payload.length) {
      return yield* fail("Malformed", `ut_metadata ${msgType === 0 ? "request" : "reject"} has ${payload.length - prefix.end} trailing bytes`)
    }
    return msgType === msgTypes.Request ? ({ _tag: "Request", piece } as const) : ({ _tag: "Reject", piece } as const)
  })

// ---------------------------------------------------------------------------------------------
// Serving and reassembly

export const metadataPieceCount = (totalSize: number): number => Math.ceil(totalSize / metadataPieceSize)

/**
 * The answer to a request for piece `piece` of `metadata` (the info dict's bytes): its 16 KiB
 * slice (the last one shorter), or a reject when there is no such piece.
 */
export const answerMetadataRequest = (metadata: Uint8Array, piece: number): MetadataData | MetadataReject =>
  piece < metadataPieceCount(metadata.length)
    ? {
        _tag: "Data",
        piece,
        totalSize: metadata.length,
        data: metadata.subarray(piece * metadataPieceSize, (piece + 1) * metadataPieceSize)
      }
    : { _tag: "Reject", piece }

/**
 * Collects the pieces of one peer's metadata. Stateful but pure: it allocates the buffer only after
 * the size passed its bounds, checks every piece's size, and hashes the whole once complete.
 */
export class MetadataAssembler {
  readonly pieceCount: number
  private readonly buffer: Uint8Array
  private readonly received: Uint8Array
  private remaining: number

  private constructor(readonly infoHash: Uint8Array, readonly totalSize: number) {
    this.pieceCount = metadataPieceCount(totalSize)
    this.buffer = new Uint8Array(totalSize)
    this.received = new Uint8Array(this.pieceCount)
    this.remaining = this.pieceCount
  }

  /** Fails with MetadataSize for 0 or more than `maxMetadataSize` bytes, before allocating anything. */
  static make(infoHash: Uint8Array, totalSize: number): Parsed<MetadataAssembler> {
    if (!Number.isSafeInteger(totalSize) || totalSize <= 0 || totalSize > maxMetadataSize) {
      return fail("MetadataSize", `metadata size ${totalSize} is not between 1 and ${maxMetadataSize} bytes`)
    }
    return Either.right(new MetadataAssembler(infoHash, totalSize))
  }

  /** Bytes of piece `index`: 16 KiB, the last one the rest. */
  pieceLength(index: number): number {
    return index === this.pieceCount - 1 ? this.totalSize - index * metadataPieceSize : metadataPieceSize
  }

  get isComplete(): boolean {
    return this.remaining === 0
  }

  /** The pieces still missing, in order. */
  missing(): ReadonlyArray<number> {
    const out: Array<number> = []
    for (let i = 0; i < this.pieceCount; i++) if (this.received[i] === 0) out.push(i)
    return out
  }

  /**
   * Takes one data message. Gives the whole metadata once the last piece is in and its SHA-1 (or
   * truncated SHA-256, for a v2 torrent) is the info hash, undefined while pieces are missing (a repeated piece is ignored).
   */
  add(m: MetadataData): Parsed<Uint8Array | undefined> {
    if (m.totalSize !== this.totalSize) {
      return fail("BadPiece", `metadata piece ${m.piece} says total_size ${m.totalSize}, the handshake said ${this.totalSize}`)
    }
    if (m.piece >= this.pieceCount) {
      return fail("BadPiece", `metadata piece ${m.piece} does not exist (${this.pieceCount} pieces)`)
    }
    const expected = this.pieceLength(m.piece)
    if (m.data.length !== expected) {
      return fail("BadPiece", `metadata piece ${m.piece} has ${m.data.length} bytes, expected ${expected}`)
    }
    if (this.received[m.piece] === 1) return Either.right(undefined)
    this.buffer.set(m.data, m.piece * metadataPieceSize)
    this.received[m.piece] = 1
    if (--this.remaining > 0) return Either.right(undefined)
    const actual = new Uint8Array(createHash("sha1").update(this.buffer).digest())
    // A v2-only torrent's swarm id is its SHA-256 info hash cut to 20 bytes (BEP 52).
    const v2 = () => new Uint8Array(createHash("sha256").update(this.buffer).digest()).subarray(0, 20)
    if (!equalBytes(actual, this.infoHash) && !equalBytes(v2(), this.infoHash)) {
      return Either.left(
        new ExtensionError({
          reason: "HashMismatch",
          detail: "the metadata does not hash to the info hash",
          expected: toHex(this.infoHash),
          actual: toHex(actual)
        })
      )
    }
    return Either.right(this.buffer)
  }
}
