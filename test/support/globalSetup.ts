// Builds the CLI bundle once, before any test file runs, so that test files running in parallel
// never rebuild it under each other's feet; and audits the sockets of every process the suite
// starts (the loopback guard, see LoopbackGuard.ts): the run fails if one reached outside loopback.
import { ensureBuilt } from "./cli.js"
import { startSocketAudit } from "./LoopbackGuard.js"

export default async function setup(): Promise<() => void> {
  const audit = startSocketAudit(process.pid)
  await ensureBuilt()
  return () => {
    const foreign = audit.stop()
    if (foreign.length === 0) return
    const lines = foreign.map((s) => `  ${s.program} (pid ${s.pid}): ${s.line}`).join("\n")
    throw new Error(`loopback guard: processes the suite started had sockets outside 127.0.0.0/8:\n${lines}`)
  }
}
