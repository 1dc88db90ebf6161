/**
 * The test suite's loopback guard: no process the suite starts may talk to an address outside
 * 127.0.0.0/8 (or ::1). Two parts, both cheap:
 * - in every test worker (`installLoopbackHooks`, a vitest setup file), `net.Socket#connect`,
 *   `dgram.Socket#send` and `dgram.Socket#connect` note any target that is not a loopback
 *   address (a host name other than `localhost` counts, since it would be resolved and dialled),
 *   and the test that did it fails;
 * - for child processes (our CLI, the reference clients, the swarm's daemons), `startSocketAudit`
 *   samples `ss -tunap` every second from the global setup and notes every socket with a remote
 *   address outside loopback that belongs to a descendant of the vitest process; the run fails
 *   at teardown if there was any.
 * Not covered: a child's connection that opens and closes between two samples, and processes in
 * network namespaces of their own (which cannot reach the host's interfaces anyway).
 */
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"

/** A loopback address, or a wildcard (`*`, 0.0.0.0, ::): what an unconnected socket shows as its peer. */
export const isLoopbackOrWildcard = (address: string): boolean => {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "").replace(/^::ffff:/i, "")
  return bare.startsWith("127.") || bare === "::1" || bare === "localhost" || bare === "*" || bare === "0.0.0.0" || bare === "::"
}

/** The host part of `ss`'s `addr:port` (`[v6]:port`, `addr%iface:port`, `*:*`). */
const hostOf = (endpoint: string): string => endpoint.slice(0, endpoint.lastIndexOf(":"))

export interface ForeignSocket {
  readonly pid: number
  readonly program: string
  readonly line: string
}

/** The sockets of `ss -tunapH` output whose remote address is not loopback, with their owners. */
export const foreignSockets = (ssOutput: string): ReadonlyArray<ForeignSocket> =>
  ssOutput.split("\n").flatMap((line) => {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 6 || isLoopbackOrWildcard(hostOf(fields[5]!))) return []
    return [...line.matchAll(/\("([^"]*)",pid=(\d+)/g)].map((m) => ({ pid: Number(m[2]), program: m[1]!, line: fields.join(" ") }))
  })

const parentOf = (pid: number): number | undefined => {
  try {
    // The command name (2nd field) is in parentheses and may hold spaces: the ppid follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return undefined
  }
}

/** Whether `pid` descends from `root` (bounded: process trees are shallow). */
export const descendsFrom = (pid: number, root: number): boolean => {
  let current: number | undefined = pid
  for (let depth = 0; depth < 64 && current !== undefined && current > 1; depth++) {
    current = parentOf(current)
    if (current === root) return true
  }
  return false
}

/** Samples every second; `stop` ends it and gives what it found (each socket once). */
export const startSocketAudit = (root: number, everyMs = 1000) => {
  const found = new Map<string, ForeignSocket>()
  let sampling = false
  const sample = () => {
    if (sampling) return
    sampling = true
    execFile("ss", ["-tunapH"], { timeout: 5000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => {
      sampling = false
      if (error !== null) return
      for (const s of foreignSockets(stdout)) if (s.pid === root || descendsFrom(s.pid, root)) found.set(s.line, s)
    })
  }
  const timer = setInterval(sample, everyMs)
  timer.unref()
  sample()
  return {
    stop: (): ReadonlyArray<ForeignSocket> => {
      clearInterval(timer)
      return [...found.values()]
    }
  }
}
