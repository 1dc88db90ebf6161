/**
 * The peer wire protocol (BEP 3), with the Fast extension (BEP 6) and the extension protocol
 * envelope (BEP 10), and the BEP 52 hash messages (src/domain/HashRequest.ts): the 68-byte handshake, the `Message` union, encoders, and `FrameDecoder`,
 * which turns arbitrary TCP chunks into messages.
 *
 * Messages are plain objects with a `_tag` (no classes, no Data wrappers: one small allocation
 * per message on the hot path). Build them with the constructors of the `Message` object, e.g.
 * `Message.request(0, 16384, 16384)`, `Message.interested`, or write the literal yourself.
 */
import { Data, Either } from "effect"
import { readU32, writeU32 } from "./Bytes.js"
import { type HashReject, type HashRange, type HashRequest, type Hashes, hashHeaderLength, readHashMessage, writeHashHeader } from "./HashRequest.js"

/** A violation of the wire format by the remote side (or a malformed buffer given to a decoder). */
export class WireError extends Data.TaggedError("WireError")<{ readonly rule: string }> {
  override get message() {
    return `wire protocol violation: ${this.rule}`
  }
}

// ---------------------------------------------------------------------------------------------
// Handshake

export const handshakeLength = 68
const protocolName = "BitTorrent protocol"

export interface Handshake {
  /** 8 bytes of extension flags. */
  readonly reserved: Uint8Array
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
}

/** `reserved` (8 bytes), `infoHash` and `peerId` (20 bytes each) are written as given. */
export const encodeHandshake = (h: Handshake): Uint8Array => {
  const out = new Uint8Array(handshakeLength)
  out[0] = protocolName.length
  for (let i = 0; i < protocolName.length; i++) out[1 + i] = protocolName.charCodeAt(i)
  out.set(h.reserved.subarray(0, 8), 20)
  out.set(h.infoHash.subarray(0, 20), 28)
  out.set(h.peerId.subarray(0, 20), 48)
  return out
}

/** Decodes the first 68 bytes; the fields are copies, so they do not pin the input buffer. */
export const decodeHandshake = (bytes: Uint8Array): Either.Either<Handshake, WireError> => {
  if (bytes.length < handshakeLength) {
    return Either.left(new WireError({ rule: `handshake is ${handshakeLength} bytes, got ${bytes.length}` }))
  }
  if (bytes[0] !== protocolName.length) {
    return Either.left(new WireError({ rule: `handshake must start with byte 19, got ${bytes[0]}` }))
  }
  for (let i = 0; i < protocolName.length; i++) {
    if (bytes[1 + i] !== protocolName.charCodeAt(i)) {
      return Either.left(new WireError({ rule: `handshake protocol name must be "${protocolName}"` }))
    }
  }
  // copies as plain Uint8Arrays (a Buffer's slice() would be a view)
  return Either.right({
    reserved: new Uint8Array(bytes.subarray(20, 28)),
    infoHash: new Uint8Array(bytes.subarray(28, 48)),
    peerId: new Uint8Array(bytes.subarray(48, 68))
  })
}

/**
 * Reserved bits: extension protocol (BEP 10) is byte 5 bit 0x10, Fast (BEP 6) is byte 7 bit 0x04,
 * v2 (BEP 52: this side speaks the v2 protocol, hash messages included) byte 7 bit 0x10.
 */
export const makeReserved = (flags: { readonly extensions?: boolean; readonly fast?: boolean; readonly v2?: boolean }): Uint8Array => {
  const r = new Uint8Array(8)
  if (flags.extensions === true) r[5] = 0x10
  if (flags.fast === true) r[7] = 0x04
  if (flags.v2 === true) r[7] = r[7]! | 0x10
  return r
}

export const supportsExtensions = (reserved: Uint8Array): boolean => ((reserved[5] ?? 0) & 0x10) !== 0
export const supportsFast = (reserved: Uint8Array): boolean => ((reserved[7] ?? 0) & 0x04) !== 0
export const supportsV2 = (reserved: Uint8Array): boolean => ((reserved[7] ?? 0) & 0x10) !== 0

// ---------------------------------------------------------------------------------------------
// Messages

export interface KeepAlive { readonly _tag: "KeepAlive" }
export interface Choke { readonly _tag: "Choke" }
export interface Unchoke { readonly _tag: "Unchoke" }
export interface Interested { readonly _tag: "Interested" }
export interface NotInterested { readonly _tag: "NotInterested" }
export interface Have { readonly _tag: "Have"; readonly index: number }
export interface BitfieldMessage { readonly _tag: "Bitfield"; readonly bits: Uint8Array }
export interface Request { readonly _tag: "Request"; readonly index: number; readonly begin: number; readonly length: number }
export interface Piece { readonly _tag: "Piece"; readonly index: number; readonly begin: number; readonly block: Uint8Array }
export interface Cancel { readonly _tag: "Cancel"; readonly index: number; readonly begin: number; readonly length: number }
export interface Port { readonly _tag: "Port"; readonly port: number }
export interface SuggestPiece { readonly _tag: "SuggestPiece"; readonly index: number }
export interface HaveAll { readonly _tag: "HaveAll" }
export interface HaveNone { readonly _tag: "HaveNone" }
export interface RejectRequest {
  readonly _tag: "RejectRequest"
  readonly index: number
  readonly begin: number
  readonly length: number
}
export interface AllowedFast { readonly _tag: "AllowedFast"; readonly index: number }
/** BEP 10: `id` is the extended message id (0 = extension handshake), `payload` what follows it. */
export interface Extended { readonly _tag: "Extended"; readonly id: number; readonly payload: Uint8Array }
/** A message id we do not know; kept so that callers may log it, and skipped otherwise. */
export interface Unknown { readonly _tag: "Unknown"; readonly id: number; readonly payload: Uint8Array }

/**
 * Decoded payloads (`block`, `bits`, `payload`) may be views into the received chunks. The
 * decoder never reuses memory, so they stay valid; copy them only to stop pinning the chunk.
 */
export type Message =
  | KeepAlive
  | Choke
  | Unchoke
  | Interested
  | NotInterested
  | Have
  | BitfieldMessage
  | Request
  | Piece
  | Cancel
  | Port
  | SuggestPiece
  | HaveAll
  | HaveNone
  | RejectRequest
  | AllowedFast
  | Extended
  | HashRequest
  | Hashes
  | HashReject
  | Unknown

/** Constructors; the payload-free messages are shared constants. */
export const Message = {
  keepAlive: { _tag: "KeepAlive" } as KeepAlive,
  choke: { _tag: "Choke" } as Choke,
  unchoke: { _tag: "Unchoke" } as Unchoke,
  interested: { _tag: "Interested" } as Interested,
  notInterested: { _tag: "NotInterested" } as NotInterested,
  haveAll: { _tag: "HaveAll" } as HaveAll,
  haveNone: { _tag: "HaveNone" } as HaveNone,
  have: (index: number): Have => ({ _tag: "Have", index }),
  bitfield: (bits: Uint8Array): BitfieldMessage => ({ _tag: "Bitfield", bits }),
  request: (index: number, begin: number, length: number): Request => ({ _tag: "Request", index, begin, length }),
  piece: (index: number, begin: number, block: Uint8Array): Piece => ({ _tag: "Piece", index, begin, block }),
  cancel: (index: number, begin: number, length: number): Cancel => ({ _tag: "Cancel", index, begin, length }),
  port: (port: number): Port => ({ _tag: "Port", port }),
  suggestPiece: (index: number): SuggestPiece => ({ _tag: "SuggestPiece", index }),
  rejectRequest: (index: number, begin: number, length: number): RejectRequest => ({
    _tag: "RejectRequest",
    index,
    begin,
    length
  }),
  allowedFast: (index: number): AllowedFast => ({ _tag: "AllowedFast", index }),
  extended: (id: number, payload: Uint8Array): Extended => ({ _tag: "Extended", id, payload }),
  hashRequest: (range: HashRange): HashRequest => ({ ...range, _tag: "HashRequest" }),
  hashes: (range: HashRange, hashes: Uint8Array): Hashes => ({ ...range, _tag: "Hashes", hashes }),
  hashReject: (range: HashRange): HashReject => ({ ...range, _tag: "HashReject" }),
  unknown: (id: number, payload: Uint8Array): Unknown => ({ _tag: "Unknown", id, payload })
} as const

/** Message ids (BEP 3, BEP 5 `port`, BEP 6 Fast, BEP 10 extended, BEP 52 hashes). */
export const MessageId = {
  Choke: 0,
  Unchoke: 1,
  Interested: 2,
  NotInterested: 3,
  Have: 4,
  Bitfield: 5,
  Request: 6,
  Piece: 7,
  Cancel: 8,
  Port: 9,
  SuggestPiece: 0x0d,
  HaveAll: 0x0e,
  HaveNone: 0x0f,
  RejectRequest: 0x10,
  AllowedFast: 0x11,
  Extended: 20,
  HashRequest: 21,
  Hashes: 22,
  HashReject: 23
} as const

/** Bytes of the frame body (id and payload), without the 4-byte length prefix. */
const bodyLength = (m: Message): number => {
  switch (m._tag) {
    case "KeepAlive":
      return 0
    case "Choke":
    case "Unchoke":
    case "Interested":
    case "NotInterested":
    case "HaveAll":
    case "HaveNone":
      return 1
    case "Have":
    case "SuggestPiece":
    case "AllowedFast":
      return 5
    case "Port":
      return 3
    case "Request":
    case "Cancel":
    case "RejectRequest":
      return 13
    case "Bitfield":
      return 1 + m.bits.length
    case "Piece":
      return 9 + m.block.length
    case "Extended":
      return 2 + m.payload.length
    case "HashRequest":
    case "HashReject":
      return 1 + hashHeaderLength
    case "Hashes":
      return 1 + hashHeaderLength + m.hashes.length
    case "Unknown":
      return 1 + m.payload.length
  }
}

/** Writes the whole frame at `at`; returns the offset after it. */
const writeMessage = (out: Uint8Array, at: number, m: Message): number => {
  const len = bodyLength(m)
  writeU32(out, at, len)
  const body = at + 4
  switch (m._tag) {
    case "KeepAlive":
      break
    case "Choke":
    case "Unchoke":
    case "Interested":
    case "NotInterested":
    case "HaveAll":
    case "HaveNone":
      out[body] = MessageId[m._tag]
      break
    case "Have":
    case "SuggestPiece":
    case "AllowedFast":
      out[body] = MessageId[m._tag]
      writeU32(out, body + 1, m.index)
      break
    case "Port":
      out[body] = MessageId.Port
      out[body + 1] = m.port >>> 8
      out[body + 2] = m.port
      break
    case "Request":
    case "Cancel":
    case "RejectRequest":
      out[body] = MessageId[m._tag]
      writeU32(out, body + 1, m.index)
      writeU32(out, body + 5, m.begin)
      writeU32(out, body + 9, m.length)
      break
    case "Bitfield":
      out[body] = MessageId.Bitfield
      out.set(m.bits, body + 1)
      break
    case "Piece":
      out[body] = MessageId.Piece
      writeU32(out, body + 1, m.index)
      writeU32(out, body + 5, m.begin)
      out.set(m.block, body + 9)
      break
    case "Extended":
      out[body] = MessageId.Extended
      out[body + 1] = m.id
      out.set(m.payload, body + 2)
      break
    case "HashRequest":
    case "HashReject":
    case "Hashes":
      out[body] = MessageId[m._tag]
      writeHashHeader(out, body + 1, m)
      if (m._tag === "Hashes") out.set(m.hashes, body + 1 + hashHeaderLength)
      break
    case "Unknown":
      out[body] = m.id
      out.set(m.payload, body + 1)
      break
  }
  return body + len
}

export const encodeMessage = (m: Message): Uint8Array => {
  const out = new Uint8Array(4 + bodyLength(m))
  writeMessage(out, 0, m)
  return out
}

/** All the frames in one buffer, so that a batch (e.g. a window of requests) is one socket write. */
export const encodeMessages = (ms: ReadonlyArray<Message>): Uint8Array => {
  let size = 0
  for (const m of ms) size += 4 + bodyLength(m)
  const out = new Uint8Array(size)
  let at = 0
  for (const m of ms) at = writeMessage(out, at, m)
  return out
}

/** Bytes of a piece message before its block: length prefix, id, index and begin. */
const pieceHeaderLength = 13

/**
 * A batch as the buffers to write in order, blocks not copied: a piece message is its header and
 * then its block itself; the messages between pieces are encoded together. Written as one gathered
 * write, an upload makes no copy of its data.
 */
export const encodeFrames = (ms: ReadonlyArray<Message>): Array<Uint8Array> => {
  const frames: Array<Uint8Array> = []
  for (let from = 0; from < ms.length;) {
    const m = ms[from]!
    if (m._tag === "Piece") {
      const header = new Uint8Array(pieceHeaderLength)
      writeU32(header, 0, 9 + m.block.length)
      header[4] = MessageId.Piece
      writeU32(header, 5, m.index)
      writeU32(header, 9, m.begin)
      frames.push(header, m.block)
      from++
      continue
    }
    let to = from
    while (to < ms.length && ms[to]!._tag !== "Piece") to++
    frames.push(encodeMessages(ms.slice(from, to)))
    from = to
  }
  return frames
}

// ---------------------------------------------------------------------------------------------
// Framing

/** The block size everyone requests (and the most a well-behaved peer sends in one piece message). */
export const blockSize = 16384

/**
 * The largest frame body (length prefix value) we accept for a torrent of `pieceCount` pieces: a
 * piece message with a 16 KiB block, the bitfield, or an extended message with a 16 KiB
 * ut_metadata piece plus its dictionary (1 KiB of headroom).
 */
export const maxFrameLength = (pieceCount: number): number =>
  Math.max(9 + blockSize, 1 + Math.ceil(pieceCount / 8), 2 + blockSize + 1024)

/**
 * Payload bytes (after the id) of each fixed-size message, indexed by id: taken from the encoder's
 * own sizes, so that what we send and what we accept cannot disagree.
 */
const fixedLengths: ReadonlyArray<number | undefined> = (() => {
  const t: Array<number | undefined> = []
  const fixed = [
    Message.choke,
    Message.unchoke,
    Message.interested,
    Message.notInterested,
    Message.haveAll,
    Message.haveNone,
    Message.have(0),
    Message.suggestPiece(0),
    Message.allowedFast(0),
    Message.port(0),
    Message.request(0, 0, 0),
    Message.cancel(0, 0, 0),
    Message.rejectRequest(0, 0, 0),
    Message.hashRequest({ piecesRoot: new Uint8Array(32), baseLayer: 0, index: 0, length: 1, proofLayers: 0 }),
    Message.hashReject({ piecesRoot: new Uint8Array(32), baseLayer: 0, index: 0, length: 1, proofLayers: 0 })
  ]
  for (const m of fixed) t[MessageId[m._tag]] = bodyLength(m) - 1
  return t
})()

/** Decodes the frame body `b[start, start + len)`, `len >= 1`; payloads are views into `b`. */
const decodeBody = (b: Uint8Array, start: number, len: number): Message | WireError => {
  const id = b[start]!
  const p = start + 1
  const payloadLength = len - 1
  const fixed = fixedLengths[id]
  if (fixed !== undefined && payloadLength !== fixed) {
    return new WireError({ rule: `message id ${id} has a ${fixed}-byte payload, got ${payloadLength}` })
  }
  switch (id) {
    case MessageId.Choke:
      return Message.choke
    case MessageId.Unchoke:
      return Message.unchoke
    case MessageId.Interested:
      return Message.interested
    case MessageId.NotInterested:
      return Message.notInterested
    case MessageId.HaveAll:
      return Message.haveAll
    case MessageId.HaveNone:
      return Message.haveNone
    case MessageId.Have:
      return Message.have(readU32(b, p))
    case MessageId.SuggestPiece:
      return Message.suggestPiece(readU32(b, p))
    case MessageId.AllowedFast:
      return Message.allowedFast(readU32(b, p))
    case MessageId.Port:
      return Message.port((b[p]! << 8) | b[p + 1]!)
    case MessageId.Request:
      return Message.request(readU32(b, p), readU32(b, p + 4), readU32(b, p + 8))
    case MessageId.Cancel:
      return Message.cancel(readU32(b, p), readU32(b, p + 4), readU32(b, p + 8))
    case MessageId.RejectRequest:
      return Message.rejectRequest(readU32(b, p), readU32(b, p + 4), readU32(b, p + 8))
    case MessageId.Bitfield:
      return Message.bitfield(b.subarray(p, start + len))
    case MessageId.Piece:
      return payloadLength < 8
        ? new WireError({ rule: `piece message needs an 8-byte header, got ${payloadLength} bytes` })
        : Message.piece(readU32(b, p), readU32(b, p + 4), b.subarray(p + 8, start + len))
    case MessageId.Extended:
      return payloadLength < 1
        ? new WireError({ rule: "extended message without an extended id" })
        : Message.extended(b[p]!, b.subarray(p + 1, start + len))
    case MessageId.HashRequest:
    case MessageId.Hashes:
    case MessageId.HashReject: {
      const m = readHashMessage(b, p, payloadLength, id)
      return typeof m === "string" ? new WireError({ rule: m }) : m
    }
    default:
      return Message.unknown(id, b.subarray(p, start + len))
  }
}

/**
 * Turns a byte stream, cut anywhere, into messages. Each byte is copied at most once: frames that
 * lie within one chunk are decoded in place, and a frame split across chunks is gathered into a
 * buffer of exactly its size, allocated only after its length passed the limit. After an error
 * the decoder stays failed.
 */
export class FrameDecoder {
  private readonly header = new Uint8Array(4)
  private headerFill = 0
  private body: Uint8Array | undefined = undefined
  private bodyFill = 0
  private failure: WireError | undefined = undefined

  constructor(readonly maxFrameLength: number) {}

  push(chunk: Uint8Array): Either.Either<ReadonlyArray<Message>, WireError> {
    if (this.failure !== undefined) return Either.left(this.failure)
    const out: Array<Message> = []
    const end = chunk.length
    let at = 0
    while (at < end) {
      if (this.body !== undefined) {
        const n = Math.min(this.body.length - this.bodyFill, end - at)
        this.body.set(chunk.subarray(at, at + n), this.bodyFill)
        this.bodyFill += n
        at += n
        if (this.bodyFill < this.body.length) break
        const m = decodeBody(this.body, 0, this.body.length)
        this.body = undefined
        if (m instanceof WireError) return this.fail(m)
        out.push(m)
        continue
      }
      let len: number
      if (this.headerFill === 0 && end - at >= 4) {
        len = readU32(chunk, at)
        at += 4
      } else {
        const n = Math.min(4 - this.headerFill, end - at)
        this.header.set(chunk.subarray(at, at + n), this.headerFill)
        this.headerFill += n
        at += n
        if (this.headerFill < 4) break
        this.headerFill = 0
        len = readU32(this.header, 0)
      }
      if (len > this.maxFrameLength) {
        return this.fail(new WireError({ rule: `frame of ${len} bytes exceeds the limit of ${this.maxFrameLength}` }))
      }
      if (len === 0) {
        out.push(Message.keepAlive)
      } else if (end - at >= len) {
        const m = decodeBody(chunk, at, len)
        if (m instanceof WireError) return this.fail(m)
        out.push(m)
        at += len
      } else {
        this.body = new Uint8Array(len)
        this.bodyFill = 0
      }
    }
    return Either.right(out)
  }

  private fail(error: WireError): Either.Either<never, WireError> {
    this.failure = error
    return Either.left(error)
  }
}
