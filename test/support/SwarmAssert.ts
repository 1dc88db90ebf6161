/** Assertions on swarm results, for the interop tests (kept apart from Swarm.ts, which the benchmark also loads). */
import { assert } from "@effect/vitest"
import type { FetchResult } from "./Swarm.js"

/** Asserts a fetch got the exact payload, over loopback only. */
export const assertFetched = (result: FetchResult) => {
  const why = `${result.client}: rc=${result.rc} sha256=${result.sha256}\n${result.log}`
  assert.strictEqual(result.rc, 0, why)
  assert.strictEqual(result.sha256, "OK", why)
  assert.strictEqual(result.loopback, "OK", why)
  assert.strictEqual(result.exitCode, 0, why)
}
