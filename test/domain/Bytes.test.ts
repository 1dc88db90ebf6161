import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import { fromBase64 } from "../../src/domain/Bytes.js"

describe("fromBase64", () => {
  it("reads back what base64 wrote, with or without padding, wrapped or not", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const text = Buffer.from(bytes).toString("base64")
      expect([...fromBase64(text)!]).toEqual([...bytes])
      expect([...fromBase64(text.replace(/=+$/, ""))!]).toEqual([...bytes])
      expect([...fromBase64(text.replace(/(.{76})/g, "$1\r\n"))!]).toEqual([...bytes])
    }))
  })

  it("refuses what is not base64", () => {
    for (const text of ["a", "abc!", "ab=c", "====", "a===", "-_-_"]) expect(fromBase64(text)).toBeUndefined()
  })
})
