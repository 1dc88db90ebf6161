/** Small byte helpers shared by the codecs. */

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

/** Parses exactly `bytes * 2` hex digits; undefined when the text is not that. */
export const fromHex = (hex: string, bytes: number): Uint8Array | undefined =>
  hex.length === bytes * 2 && /^[0-9a-fA-F]*$/.test(hex) ? new Uint8Array(Buffer.from(hex, "hex")) : undefined

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
