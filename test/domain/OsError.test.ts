import { describe, expect, it } from "@effect/vitest"
import { describeOsError, osErrorCode } from "../../src/domain/OsError.js"

const nodeError = (code: string) => Object.assign(new Error(`${code}: raw message`), { code })

describe("OsError", () => {
  it("names the common codes in one wording", () => {
    expect(describeOsError(nodeError("EISDIR"))).toBe("is a directory")
    expect(describeOsError(nodeError("EACCES"))).toBe("permission denied")
    expect(describeOsError(nodeError("EADDRINUSE"))).toBe("the port is in use")
  })

  it("finds the code in a wrapping error's cause", () => {
    const wrapped = { _tag: "SystemError", reason: "BadResource", cause: nodeError("EISDIR") }
    expect(osErrorCode(wrapped)).toBe("EISDIR")
    expect(describeOsError(wrapped)).toBe("is a directory")
  })

  it("falls back to the platform reason, then to the code or message", () => {
    expect(describeOsError({ reason: "NotFound" })).toBe("no such file or directory")
    expect(describeOsError(nodeError("EWHATEVER"))).toBe("EWHATEVER")
    expect(describeOsError(new Error("first line\nsecond"))).toBe("first line")
  })
})
