/**
 * The BEP 52 messages that move parts of a file's merkle tree between peers: `hash request`
 * (id 21), `hashes` (22, the answer) and `hash reject` (23). All three start with the same 48-byte
 * header: the file's `pieces root`, the base layer (0 = the 16 KiB leaves), the index of the first
 * hash in that layer, how many hashes, and how many layers of proof above them. A `hashes` answer
 * then lists the requested hashes and the uncle hashes that prove them (src/domain/MerkleProof.ts).
 */
import { readU32, writeU32 } from "./Bytes.js"
import { merkleHashLength } from "./Merkle.js"

export interface HashRange {
  /** The file's `pieces root` (32 bytes). */
  readonly piecesRoot: Uint8Array
  /** Layer of the requested hashes, counted from the leaves (0). */
  readonly baseLayer: number
  /** Position of the first requested hash in the base layer (a multiple of `length`). */
  readonly index: number
  /** How many hashes of the base layer: a power of two. */
  readonly length: number
  /** How many layers above the base layer the proof covers. */
  readonly proofLayers: number
}

export interface HashRequest extends HashRange { readonly _tag: "HashRequest" }
/** `hashes`: the base layer's `length` hashes, then the uncle hashes, bottom up, concatenated. */
export interface Hashes extends HashRange { readonly _tag: "Hashes"; readonly hashes: Uint8Array }
export interface HashReject extends HashRange { readonly _tag: "HashReject" }

/** Bytes of the shared header (after the message id). */
export const hashHeaderLength = merkleHashLength + 16

export const isPowerOfTwo = (n: number): boolean => n >= 1 && (n & (n - 1)) === 0 && n <= 0x40000000

/** log2 of a power of two. */
export const log2 = (n: number): number => 31 - Math.clz32(n)

/**
 * Uncle hashes a `hashes` answer carries: one per layer from the top of the subtree its base
 * hashes span up to `proofLayers` above the base layer.
 */
export const uncleCount = (length: number, proofLayers: number): number => Math.max(0, proofLayers - log2(length) + 1)

/** Writes the header at `at` (the fields are taken to fit: a 32-byte root, unsigned 32-bit numbers). */
export const writeHashHeader = (out: Uint8Array, at: number, r: HashRange): void => {
  out.set(r.piecesRoot.subarray(0, merkleHashLength), at)
  writeU32(out, at + merkleHashLength, r.baseLayer)
  writeU32(out, at + merkleHashLength + 4, r.index)
  writeU32(out, at + merkleHashLength + 8, r.length)
  writeU32(out, at + merkleHashLength + 12, r.proofLayers)
}

/**
 * Reads the header of the payload `b[at, at + payloadLength)` of message `id` (21, 22 or 23);
 * a string says what is malformed. The root is a copy; a `hashes` list is a view into `b`.
 */
export const readHashMessage = (b: Uint8Array, at: number, payloadLength: number, id: 21 | 22 | 23): HashRequest | Hashes | HashReject | string => {
  if (payloadLength < hashHeaderLength || (id !== 22 && payloadLength !== hashHeaderLength)) {
    return `hash message ${id} has a ${payloadLength}-byte payload`
  }
  const range: HashRange = {
    piecesRoot: new Uint8Array(b.subarray(at, at + merkleHashLength)),
    baseLayer: readU32(b, at + merkleHashLength),
    index: readU32(b, at + merkleHashLength + 4),
    length: readU32(b, at + merkleHashLength + 8),
    proofLayers: readU32(b, at + merkleHashLength + 12)
  }
  if (!isPowerOfTwo(range.length)) return `hash message ${id} asks for ${range.length} hashes, not a power of two`
  if (id === 21) return { _tag: "HashRequest", ...range }
  if (id === 23) return { _tag: "HashReject", ...range }
  const listed = payloadLength - hashHeaderLength
  const expected = (range.length + uncleCount(range.length, range.proofLayers)) * merkleHashLength
  if (listed !== expected) return `hashes message carries ${listed} bytes of hashes, but its range needs ${expected}`
  return { _tag: "Hashes", ...range, hashes: b.subarray(at + hashHeaderLength, at + payloadLength) }
}
