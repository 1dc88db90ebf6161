/**
 * What an HTTP answer says a torrent's file is: its media type from the file name's extension
 * (a small table of what players and browsers open; anything else is octet-stream), and an inline
 * Content-Disposition carrying the file name (an ASCII fallback and the UTF-8 name).
 */

const byExtension: ReadonlyMap<string, string> = new Map([
  ["mp4", "video/mp4"], ["m4v", "video/mp4"], ["mkv", "video/x-matroska"], ["webm", "video/webm"],
  ["avi", "video/x-msvideo"], ["mov", "video/quicktime"], ["ogv", "video/ogg"], ["ts", "video/mp2t"],
  ["mpg", "video/mpeg"], ["mpeg", "video/mpeg"], ["wmv", "video/x-ms-wmv"], ["flv", "video/x-flv"],
  ["mp3", "audio/mpeg"], ["m4a", "audio/mp4"], ["aac", "audio/aac"], ["ogg", "audio/ogg"], ["oga", "audio/ogg"],
  ["opus", "audio/ogg"], ["flac", "audio/flac"], ["wav", "audio/wav"], ["wma", "audio/x-ms-wma"],
  ["srt", "application/x-subrip"], ["vtt", "text/vtt"], ["txt", "text/plain; charset=utf-8"], ["nfo", "text/plain; charset=utf-8"],
  ["pdf", "application/pdf"], ["epub", "application/epub+zip"], ["jpg", "image/jpeg"], ["jpeg", "image/jpeg"],
  ["png", "image/png"], ["gif", "image/gif"], ["webp", "image/webp"], ["zip", "application/zip"]
])

/** The media type for a file name, by its extension (case-insensitive). */
export const contentTypeOf = (fileName: string): string => {
  const dot = fileName.lastIndexOf(".")
  return (dot < 0 ? undefined : byExtension.get(fileName.slice(dot + 1).toLowerCase())) ?? "application/octet-stream"
}

/** Bytes of a `filename*` value kept as they are; everything else is percent-encoded. */
const attrChar = /[A-Za-z0-9!#$&+\-.^_`|~]/

/** `inline` with the name: `filename` in printable ASCII (others as `_`), `filename*` in UTF-8. */
export const inlineDisposition = (fileName: string): string => {
  const ascii = [...fileName].map((c) => (c >= " " && c <= "~" && c !== '"' && c !== "\\" ? c : "_")).join("")
  const encoded = [...new TextEncoder().encode(fileName)]
    .map((b) => {
      const c = String.fromCharCode(b)
      return b < 0x80 && attrChar.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`
    })
    .join("")
  return `inline; filename="${ascii}"; filename*=UTF-8''${encoded}`
}
