import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as path from "node:path"
import { assetSegments, contentTypeOf } from "../../src/domain/WebAssets.js"

describe("assetSegments", () => {
  it("names the files of the folder, the index page for the folder itself", () => {
    expect(assetSegments("")).toEqual(["index.html"])
    expect(assetSegments("app.js")).toEqual(["app.js"])
    expect(assetSegments("img/logo%2Dsmall.svg")).toEqual(["img", "logo-small.svg"])
  })

  it("refuses a path that could leave the folder, a hidden file, or a kind of file not served", () => {
    const refused = [
      "..", "../secret.txt", "a/../../x.js", "%2e%2e/x.js", "a%2F..%2Fx.js", "..%5cx.js", "a\\..\\x.js", "/etc/passwd.txt",
      ".env", "a//b.js", "a/./b.js", "x.js%00.html", "%E0%A4%A.js", "app", "app.ts", "server.cjs"
    ]
    for (const p of refused) expect(assetSegments(p), p).toBeUndefined()
  })

  it.prop("whatever the request, the file it names stays inside the folder", [fc.array(fc.oneof(fc.constantFrom("..", ".", "%2e%2e", "%2f", "\\", "a", "b.js", "%00", ""), fc.string()), { maxLength: 6 })], ([parts]) => {
    const segments = assetSegments(parts.join("/"))
    if (segments === undefined) return
    const root = path.resolve("/srv/web")
    const full = path.resolve(root, ...segments)
    expect(full.startsWith(root + path.sep)).toBe(true)
    expect(contentTypeOf(full)).toBeDefined()
  })
})
