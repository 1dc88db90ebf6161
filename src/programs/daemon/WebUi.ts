/**
 * `/web/`: the web UI's files (an index page, its script and its style), read from one folder,
 * `dist/web`, which the build writes (scripts/build.mjs). A request names a file by plain names
 * only, and the file found must really lie inside the folder (a symbolic link out of it is not
 * followed), so nothing else on the machine can be read through it. The page loads nothing from
 * elsewhere, which its Content-Security-Policy says to the browser.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assetSegments, contentTypeOf } from "../../domain/WebAssets.js"

/**
 * The built web UI: the CLI's bundle (dist/main.cjs) runs with CommonJS's `__dirname`, dist/; the
 * sources and the library's ESM build sit three folders below the package's root.
 */
export const defaultWebDirectory = (): string =>
  typeof __dirname === "string" && path.basename(__dirname) === "dist"
    ? path.join(__dirname, "web")
    : fileURLToPath(new URL("../../../dist/web", import.meta.url))

const notFound = HttpServerResponse.text("404: Not Found\n", { status: 404 })

const headers = (type: string) => ({
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  ...(type.startsWith("text/html")
    ? {
        "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        "referrer-policy": "no-referrer"
      }
    : {})
})

/** The file a request path names inside `root`, or a 404. */
const asset = (root: string, requestPath: string) =>
  Effect.gen(function* () {
    const segments = assetSegments(requestPath)
    if (segments === undefined) return notFound
    const fs = yield* FileSystem.FileSystem
    const [realRoot, realFile] = yield* Effect.all([fs.realPath(root), fs.realPath(path.join(root, ...segments))])
    if (!realFile.startsWith(realRoot + path.sep)) return notFound
    const bytes = yield* fs.readFile(realFile)
    const type = contentTypeOf(segments[segments.length - 1]!)!
    return HttpServerResponse.uint8Array(bytes, { contentType: type, headers: headers(type) })
  }).pipe(Effect.catchAll(() => Effect.succeed(notFound)))

export const webRoutes = (root: string = defaultWebDirectory()) =>
  HttpRouter.empty.pipe(
    // The router takes `/web/` for `/web`; only the former is the page (its links are relative).
    HttpRouter.get("/web", Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
      request.url.startsWith("/web/") ? undefined : HttpServerResponse.redirect("/web/", { status: 301 })).pipe(
      Effect.flatMap((redirect) => redirect === undefined ? asset(root, "") : Effect.succeed(redirect))
    )),
    HttpRouter.get("/web/*", Effect.flatMap(HttpRouter.params, (params) => asset(root, params["*"] ?? "")))
  )
