/** Small byte helpers shared by the codecs. */

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

/** Parses exactly `bytes * 2` hex digits; undefined when the text is not that. */
export const fromHex = (hex: string, bytes: number): Uint8Array | undefined =>
  hex.length === bytes * 2 && /^[0-9a-fA-F]*$/.test(hex) ? new Uint8Array(Buffer.from(hex, "hex")) : undefined

/** The bytes of a base64 text (white space ignored, padding optional); undefined when it is not base64. */
export const fromBase64 = (text: string): Uint8Array | undefined => {
  const compact = text.replace(/\s+/g, "")
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return undefined
  return new Uint8Array(Buffer.from(compact, "base64"))
}

export const equalBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

export const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let size = 0
  for (const p of parts) size += p.length
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Writes `n` (0 to 2^32 - 1) big-endian at `at`. */
export const writeU32 = (out: Uint8Array, at: number, n: number): void => {
  out[at] = n >>> 24
  out[at + 1] = n >>> 16
  out[at + 2] = n >>> 8
  out[at + 3] = n
}

/** The big-endian unsigned 32-bit number at `at`. */
export const readU32 = (b: Uint8Array, at: number): number =>
  b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!)
