/**
 * The `Range` header of a GET for one file (bytes only): what to answer with. A single range
 * `bytes=a-b`, `bytes=a-` or `bytes=-n` gets a 206 with those bytes (an end past the file is
 * cut to it); a range that starts past the end, or an empty suffix, is unsatisfiable (416). A
 * header that is not a byte range, is malformed, or asks for several ranges is ignored: the whole
 * file is sent (200), which the HTTP rules allow a server to do with any Range header, and which
 * keeps multipart/byteranges bodies out (players ask for one range).
 */

export type RangeAnswer =
  | { readonly _tag: "Whole" }
  | { readonly _tag: "Partial"; readonly start: number; readonly end: number }
  | { readonly _tag: "Unsatisfiable" }

const whole: RangeAnswer = { _tag: "Whole" }
const unsatisfiable: RangeAnswer = { _tag: "Unsatisfiable" }

const spec = /^(\d*)-(\d*)$/

/** How to answer `header` (absent: the whole file) for a file of `size` bytes. */
export const parseRange = (header: string | undefined, size: number): RangeAnswer => {
  if (header === undefined) return whole
  const [unit, ...rest] = header.split("=")
  if (unit?.trim().toLowerCase() !== "bytes" || rest.length !== 1) return whole
  const specs = rest[0]!.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  if (specs.length !== 1) return whole
  const match = spec.exec(specs[0]!)
  if (match === null) return whole
  const [, first, last] = match as unknown as [string, string, string]
  if (first === "") {
    if (last === "") return whole
    const suffix = Number(last)
    return suffix === 0 || size === 0 ? unsatisfiable : { _tag: "Partial", start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (last !== "" && Number(last) < start) return whole
  if (start >= size) return unsatisfiable
  return { _tag: "Partial", start, end: last === "" ? size - 1 : Math.min(Number(last), size - 1) }
}

/** `Content-Range` of a 206. */
export const contentRange = (start: number, end: number, size: number): string => `bytes ${start}-${end}/${size}`

/** `Content-Range` of a 416. */
export const unsatisfiedRange = (size: number): string => `bytes */${size}`
