/**
 * Which file of the web UI's folder a request names, if any: plain names only (no `..`, no hidden
 * files, no backslashes or encoded slashes), so that a request can never reach outside the folder;
 * and the content type of each kind of file served (others are not served).
 */

const contentTypes: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  map: "application/json",
  txt: "text/plain; charset=utf-8"
}

const segment = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/

/** What is served for a file name, or undefined for a kind of file that is not. */
export const contentTypeOf = (name: string): string | undefined => {
  const dot = name.lastIndexOf(".")
  return dot < 0 ? undefined : contentTypes[name.slice(dot + 1).toLowerCase()]
}

/**
 * The path segments, under the folder, of the file a request path names (the part after the
 * folder's URL prefix, still percent-encoded); "" is the index page. Undefined when the path is
 * not a plain name of a served kind of file.
 */
export const assetSegments = (requestPath: string): ReadonlyArray<string> | undefined => {
  if (requestPath === "") return ["index.html"]
  // Split before decoding: an encoded slash stays inside its segment, where the check refuses it.
  const raw = requestPath.split("/")
  const segments: Array<string> = []
  for (const part of raw) {
    let decoded: string
    try {
      decoded = decodeURIComponent(part)
    } catch {
      return undefined
    }
    if (!segment.test(decoded)) return undefined
    segments.push(decoded)
  }
  return contentTypeOf(segments[segments.length - 1]!) === undefined ? undefined : segments
}
