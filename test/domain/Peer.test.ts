import { describe, expect, it } from "@effect/vitest"
import { listenPortCandidates } from "../../src/domain/Peer.js"

describe("listenPortCandidates", () => {
  it("is the port asked for alone without fallback, or for port 0", () => {
    expect(listenPortCandidates(6881, false)).toEqual([6881])
    expect(listenPortCandidates(0, true)).toEqual([0])
  })

  it("with fallback: the port, the next 8, then any free port; never past 65535", () => {
    expect(listenPortCandidates(6881, true)).toEqual([6881, 6882, 6883, 6884, 6885, 6886, 6887, 6888, 6889, 0])
    expect(listenPortCandidates(65534, true)).toEqual([65534, 65535, 0])
  })
})
