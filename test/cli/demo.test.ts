/** `demo` as a user runs it: the bundled CLI, a small payload, a summary on stdout, exit 0. */
import { describe, expect, it } from "@effect/vitest"
import { runCli } from "../support/cli.js"

describe("demo", () => {
  it("builds a local swarm, downloads from it and verifies the result", async () => {
    const res = await runCli(["demo", "--size-mib", "4", "--seeders", "2"], 60_000)
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toMatch(/^Demo: 4 MiB from 2 peers in [0-9.]+ s \([0-9.]+ MiB\/s\), verified byte for byte\n$/)
    expect(res.stderr).toMatch(/demo: 4 MiB payload, \d+ pieces, tracker http:\/\/127\.0\.0\.1:\d+\/announce, 2 seeders/)
    expect(res.stderr).toMatch(/done: demo\.bin, 4\.0 MiB in [0-9.]+ s \([0-9.]+ [KMG]?i?B\/s\), [0-9]+ peers?, [0-9.]+ [KMG]?i?B wasted/)
  })
})
