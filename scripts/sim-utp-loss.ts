/**
 * uTP under loss in virtual time (run: `npx tsx scripts/sim-utp-loss.ts`): two `UtpConnection`s
 * over a simulated wire like the lossy relay test's (LOSS=0.01 each way, 20 ms one way, 5% of
 * datagrams 15 ms later), SIZE MiB one way; prints the virtual throughput, the sender's
 * retransmissions and timeouts. No sockets and no runtime, so a run takes seconds and repeats
 * exactly (SEED).
 */
import { seededRandom } from "../src/domain/SeededRandom.js"
import { parseDatagram, UtpConnection, type UtpHost } from "../src/domain/UtpConnection.js"
import { PacketType } from "../src/domain/UtpPacket.js"

const sizeMib = Number(process.env["SIZE"] ?? 8)
const loss = Number(process.env["LOSS"] ?? 0.01)
const seeds = (process.env["SEEDS"] ?? "1 2 3").split(" ").map(Number)
const latencyMicros = 20_000
const total = sizeMib * 1024 * 1024

const simulate = (seed: number) => {
  const random = seededRandom(seed)
  let now = 0
  const queue: Array<{ at: number; to: "a" | "b"; bytes: Uint8Array }> = []
  const owing = new Set<UtpConnection>()
  let got = 0
  let written = 0
  const chunk = new Uint8Array(64 * 1024)
  const conns: { a?: UtpConnection; b?: UtpConnection } = {}
  const pump = () => {
    const c = conns.a!
    while (written < total && c.unsentBytes + c.flightBytes < 1024 * 1024) {
      written += chunk.length
      c.write(chunk)
    }
  }
  const host = (side: "a" | "b"): UtpHost => ({
    nowMicros: () => now,
    transmit: (bytes) => {
      if (random() < loss) return
      const delay = latencyMicros + (random() < 0.05 ? 15_000 : 0)
      queue.push({ at: now + delay, to: side === "a" ? "b" : "a", bytes: bytes.slice() })
    },
    connected: pump,
    readable: () => {
      for (let b = conns.b?.read(); b != null; b = conns.b?.read()) got += b.length
    },
    writable: () => side === "a" && pump(),
    ackLater: () => owing.add(conns[side]!),
    closed: () => {},
    finished: () => {}
  })
  conns.a = UtpConnection.connect(host("a"), 100, 1, { receiveWindow: 1024 * 1024 })
  let nextTick = 50_000
  while (got < total && now < 3_600_000_000) {
    queue.sort((x, y) => x.at - y.at)
    const next = queue[0]
    if (next === undefined || next.at > nextTick) {
      now = nextTick
      nextTick += 50_000
      conns.a.tick()
      conns.b?.tick()
      continue
    }
    queue.shift()
    now = next.at
    const p = parseDatagram(next.bytes)!
    if (next.to === "b" && conns.b === undefined) {
      if (p.type === PacketType.Syn) conns.b = UtpConnection.accept(host("b"), p, 7, { receiveWindow: 1024 * 1024 })
      continue
    }
    conns[next.to]!.receive(p)
    for (const c of owing) c.flushAck()
    owing.clear()
  }
  const seconds = now / 1e6
  const a = conns.a
  console.log(`seed ${seed}: ${sizeMib} MiB in ${seconds.toFixed(1)} virtual s (${(sizeMib / seconds).toFixed(2)} MiB/s), ` +
    `retransmissions ${a.retransmissions}, timeouts ${a.timeouts}, cwnd ${Math.round(a.congestionWindow)}, rtt ${a.roundTripMillis?.toFixed(1)} ms`)
}

for (const seed of seeds) simulate(seed)
