/**
 * The in-process half of the loopback guard (see LoopbackGuard.ts), a vitest setup file: every
 * socket connect and datagram send of the test worker is checked, and a test that aimed one at
 * an address outside loopback fails.
 */
import * as dgram from "node:dgram"
import * as net from "node:net"
import { afterEach } from "vitest"
import { isLoopbackOrWildcard } from "./LoopbackGuard.js"

const violations: Array<string> = []

const note = (what: string, host: unknown) => {
  // No host: Node's default, which is loopback (dgram) or localhost (net).
  if (typeof host === "string" && host !== "" && !isLoopbackOrWildcard(host)) violations.push(`${what} ${host}`)
}

/** The host of `net.Socket#connect(options | port, host | path)`. */
const netHost = (args: ReadonlyArray<unknown>): unknown => {
  const [first, second] = args
  if (Array.isArray(first)) return netHost(first) // Node's internal normalized form
  if (typeof first === "object" && first !== null) return "path" in first ? undefined : (first as { host?: unknown }).host
  return typeof second === "string" ? second : undefined
}

/** The address of `dgram.Socket#send(msg, [offset, length,] port, address, cb)`. */
const dgramAddress = (args: ReadonlyArray<unknown>): unknown =>
  typeof args[1] === "number" && typeof args[2] === "number" ? args[4] : args[2]

const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (this: net.Socket, ...args: Array<unknown>) {
  note("net connect to", netHost(args))
  return (connect as (...a: Array<unknown>) => net.Socket).apply(this, args)
} as typeof connect

const send = dgram.Socket.prototype.send
dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: Array<unknown>) {
  note("dgram send to", dgramAddress(args))
  return (send as (...a: Array<unknown>) => void).apply(this, args)
} as typeof send

const dgramConnect = dgram.Socket.prototype.connect
dgram.Socket.prototype.connect = function (this: dgram.Socket, ...args: Array<unknown>) {
  note("dgram connect to", args[1])
  return (dgramConnect as (...a: Array<unknown>) => void).apply(this, args)
} as typeof dgramConnect

afterEach(() => {
  if (violations.length === 0) return
  const found = violations.splice(0)
  throw new Error(`loopback guard: this test reached outside 127.0.0.0/8: ${[...new Set(found)].join(", ")}`)
})
