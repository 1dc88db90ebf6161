import { describe, expect, it } from "@effect/vitest"
import { descendsFrom, foreignSockets, isLoopbackOrWildcard } from "./support/LoopbackGuard.js"

describe("the loopback guard", () => {
  it.each(["127.0.0.1", "127.9.9.9", "[::1]", "::ffff:127.0.0.1", "[::ffff:127.0.0.2]", "127.0.0.1%lo", "localhost", "*", "0.0.0.0", "::"])(
    "lets %s pass", (address) => expect(isLoopbackOrWildcard(address)).toBe(true))

  it.each(["10.0.0.1", "192.168.1.2", "239.192.152.143", "[2001:db8::1]", "::ffff:10.0.0.1", "example.org", "128.0.0.1"])(
    "catches %s", (address) => expect(isLoopbackOrWildcard(address)).toBe(false))

  it("finds the sockets of ss output whose remote address is not loopback, with their owners", () => {
    const ss = [
      `udp UNCONN 0 0 0.0.0.0:42360 0.0.0.0:* users:(("node",pid=14550,fd=20))`,
      `tcp ESTAB 0 0 127.0.0.1:5000 127.0.0.2:6881 users:(("node",pid=1,fd=3))`,
      `tcp ESTAB 0 0 [::1]:5000 [::1]:6881 users:(("node",pid=1,fd=4))`,
      `tcp ESTAB 0 0 10.0.0.5:40000 93.184.216.34:443 users:(("aria2c",pid=77,fd=9),("aria2c",pid=78,fd=9))`,
      `tcp SYN-SENT 0 1 [2001:db8::5]:40000 [2001:db8::1]:80 users:(("curl",pid=80,fd=3))`,
      `udp ESTAB 0 0 10.0.0.5:5353 239.192.152.143:6771 users:(("node",pid=90,fd=5))`
    ].join("\n")
    expect(foreignSockets(ss).map((s) => [s.program, s.pid])).toEqual([["aria2c", 77], ["aria2c", 78], ["curl", 80], ["node", 90]])
  })

  it("knows this worker descends from its parent, and not the other way round", () => {
    expect(descendsFrom(process.pid, process.ppid)).toBe(true)
    expect(descendsFrom(process.ppid, process.pid)).toBe(false)
  })
})
