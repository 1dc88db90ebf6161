/**
 * Path sanitising for metainfo file paths (the rules libtorrent applies, so that a torrent the
 * established clients accept downloads here too, and never outside its output folder).
 * docs/metainfo.md gives each rule with its reason.
 */

/** A component is cut to this many bytes (its extension kept), below every common file system's 255. */
export const maxComponentBytes = 240

/** Unicode controls that reverse the reading direction, so that `exe.txt` can display as `txt.exe`. */
const directionControls = new Set([0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x200e, 0x200f])

const [slash, backslash, dot, underscore] = [0x2f, 0x5c, 0x2e, 0x5f]

/** Code points removed from a component: separators, direction controls and NUL (libtorrent drops NUL too). */
const isRemoved = (codePoint: number): boolean =>
  codePoint === slash || codePoint === backslash || codePoint === 0 || directionControls.has(codePoint)

const sequenceLength = (lead: number): number =>
  lead < 0x80 ? 1 : lead >> 5 === 0b110 ? 2 : lead >> 4 === 0b1110 ? 3 : lead >> 3 === 0b11110 ? 4 : lead >> 2 === 0b111110 ? 5 : 0

const minimumOfLength = [0, 0, 0x80, 0x800, 0x10000]

/**
 * The UTF-8 code point at `at` and the bytes it spans; -1 for an invalid sequence (an overlong
 * form, a surrogate, a bad continuation byte or a cut sequence), which is skipped whole.
 */
const codePointAt = (bytes: Uint8Array, at: number): { readonly codePoint: number; readonly length: number } => {
  const length = sequenceLength(bytes[at]!)
  if (length === 1) return { codePoint: bytes[at]!, length }
  if (length === 0) return { codePoint: -1, length: 1 }
  if (length > 4) return { codePoint: -1, length }
  if (at + length > bytes.length) return { codePoint: -1, length: bytes.length - at }
  let codePoint = bytes[at]! & (0xff >> (length + 1))
  for (let k = 1; k < length; k++) {
    const b = bytes[at + k]!
    if (b >> 6 !== 0b10) return { codePoint: -1, length }
    codePoint = (codePoint << 6) | (b & 0x3f)
  }
  const invalid = codePoint < minimumOfLength[length]! || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)
  return { codePoint: invalid ? -1 : codePoint, length }
}

/** Where a long component's extension starts: a dot among its last 9 bytes, after `after`. */
const extensionStart = (bytes: Uint8Array, after: number): number => {
  for (let j = bytes.length - 1; j > Math.max(bytes.length - 10, after); j--) if (bytes[j] === dot) return j
  return -1
}

/** A Windows drive prefix (`C:`), which would make the rest of the path relative to that drive. */
const drivePrefix = /^(?:[A-Za-z]:)+/

/**
 * One path component made safe to join under a folder, or undefined when nothing of it remains
 * (it was `.` or `..`, or only separators): such a component is dropped. An empty component
 * becomes `_`; invalid UTF-8 and control characters become `_`; separators, NUL and direction
 * controls are removed; a leading drive letter is removed; the component is cut to
 * {@link maxComponentBytes} bytes, keeping a short extension.
 */
export const sanitizeComponent = (raw: Uint8Array): string | undefined => {
  if (raw.length === 1 && raw[0] === dot) return undefined
  if (raw.length === 0) return "_"
  const out: Array<number> = []
  let dots = 0
  let extensionKept = false
  for (let i = 0, step = 0; i < raw.length; i += step) {
    const { codePoint, length } = codePointAt(raw, i)
    step = length
    if (codePoint >= 0 && isRemoved(codePoint)) continue
    if (codePoint < 0x20) {
      out.push(underscore)
      continue
    }
    for (let k = i; k < i + length; k++) out.push(raw[k]!)
    if (codePoint === dot) dots++
    if (out.length >= maxComponentBytes && !extensionKept) {
      const extension = extensionStart(raw, i)
      if (extension === -1) break
      extensionKept = true
      step = extension - i
    }
  }
  if (out.length === dots && out.length <= 2) return undefined
  const text = new TextDecoder().decode(Uint8Array.from(out)).replace(drivePrefix, "")
  return text === "" || text === "." || text === ".." ? undefined : text
}

/**
 * A file path made safe: every component sanitised and the dropped ones left out. A path of which
 * nothing remains becomes `["_"]`, so a file always has a name.
 */
export const sanitizePath = (raw: ReadonlyArray<Uint8Array>): ReadonlyArray<string> => {
  const path = raw.flatMap((component) => sanitizeComponent(component) ?? [])
  return path.length > 0 ? path : ["_"]
}

/** The components of a `symlink path`, sanitised the same way, with no `_` fallback (an empty target names nothing). */
export const sanitizeLinkTarget = (raw: ReadonlyArray<Uint8Array>): ReadonlyArray<string> =>
  raw.flatMap((component) => sanitizeComponent(component) ?? [])
