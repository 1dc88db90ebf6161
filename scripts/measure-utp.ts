/**
 * uTP throughput on loopback (run: `npx tsx scripts/measure-utp.ts`): SIZE MiB one way between
 * two of our transports in this process, beside TCP (`Transport.Tcp`) through the same Duplex
 * harness and, when it can be loaded, the native libutp binding `utp-native` from the reference
 * clients' node_modules (measured only, never a dependency). Both ends run in this one process,
 * so the CPU figure (user + system seconds per GiB) covers sender and receiver together.
 *
 * Environment: SIZE=256 (MiB), RUNS=3, UTP_NATIVE=/opt/effect-bittorrent-reference/node_modules/utp-native
 */
import { createRequire } from "node:module"
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import { type Duplex, Transport } from "../src/services/Transport.js"
import { Udp } from "../src/services/Udp.js"
import { Utp, utpStats } from "../src/services/Utp.js"
import { writeAll } from "../test/support/duplexTransfer.js"

const sizeMib = Number(process.env["SIZE"] ?? 256)
const runs = Number(process.env["RUNS"] ?? 3)
const nativePath = process.env["UTP_NATIVE"] ?? "/opt/effect-bittorrent-reference/node_modules/utp-native"
const total = sizeMib * 1024 * 1024
const chunk = new Uint8Array(64 * 1024).fill(7)
const payload = new Uint8Array(total).fill(7)

interface Sample {
  readonly seconds: number
  readonly cpuSeconds: number
}

const measure = async (run: () => Promise<void>): Promise<Sample> => {
  const cpu = process.cpuUsage()
  const start = performance.now()
  await run()
  const used = process.cpuUsage(cpu)
  return { seconds: (performance.now() - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6 }
}

const receiveAll = (duplex: Duplex) =>
  Effect.async<void>((resume) => {
    let got = 0
    const pull = () => {
      for (let bytes = duplex.read(); bytes !== null; bytes = duplex.read()) got += bytes.length
      if (got < total && !duplex.readEnded) return
      duplex.off("readable", pull)
      resume(got >= total ? Effect.void : Effect.die(`ended after ${got} of ${total} bytes`))
    }
    duplex.on("readable", pull)
    pull()
  })

/** One transfer between a listener on `b` and a dial from `a`. */
const transfer = (a: Transport["Type"], b: Transport["Type"]) =>
  Effect.scoped(
    Effect.gen(function* () {
      const listening = yield* b.listen({ host: "127.0.0.1", port: 0 })
      const receiver = yield* Effect.fork(
        Effect.flatMap(Stream.runHead(listening.connections), (d) => receiveAll(Effect.runSync(d)))
      )
      const duplex = yield* a.dial({ host: "127.0.0.1", port: listening.port })
      yield* writeAll(duplex, payload)
      yield* Fiber.join(receiver)
      const stats = utpStats(duplex)
      if (stats !== undefined && process.env["VERBOSE"] !== undefined) console.log(stats)
    })
  )

const ours = (layer: Layer.Layer<Transport, unknown>) => () =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const a = Context.get(yield* Layer.build(layer), Transport)
        const b = Context.get(yield* Layer.build(layer), Transport)
        yield* transfer(a, b)
      })
    )
  )

interface NativeSocket {
  write(bytes: Uint8Array): boolean
  end(): void
  destroy(): void
  on(event: string, f: (data?: Uint8Array) => void): void
  once(event: string, f: () => void): void
}
interface NativeServer {
  listen(port: number, host: string, f: () => void): void
  address(): { port: number }
  close(): void
}
interface UtpNative {
  createServer(f: (socket: NativeSocket) => void): NativeServer
  connect(port: number, host: string): NativeSocket
}

const native = (utp: UtpNative) => () =>
  new Promise<void>((resolve) => {
    let got = 0
    const server = utp.createServer((socket) => {
      socket.on("data", (data) => {
        got += data!.length
        if (got >= total) {
          socket.destroy()
          server.close()
          resolve()
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const socket = utp.connect(server.address().port, "127.0.0.1")
      let sent = 0
      const pump = () => {
        while (sent < total) {
          sent += chunk.length
          if (!socket.write(Buffer.from(chunk))) return
        }
      }
      socket.on("drain", pump)
      pump()
    })
  })

const loadNative = (): UtpNative | undefined => {
  try {
    return createRequire(import.meta.url)(nativePath) as UtpNative
  } catch {
    return undefined
  }
}

const main = async () => {
  const utpNative = loadNative()
  const cases: Array<readonly [string, () => Promise<void>]> = [
    ["uTP (ours)", ours(Utp.layer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provide(Udp.Live)))],
    ["TCP (Transport.Tcp)", ours(Transport.Tcp)],
    ...(utpNative === undefined ? [] : [["uTP (utp-native, libutp)", native(utpNative)] as const])
  ]
  console.log(`${sizeMib} MiB one way on 127.0.0.1, ${runs} runs each (both ends in this process)`)
  for (const [name, run] of cases) {
    const samples: Array<Sample> = []
    for (let i = 0; i < runs; i++) samples.push(await measure(run))
    const best = samples.reduce((a, b) => (a.seconds < b.seconds ? a : b))
    const mibPerS = sizeMib / best.seconds
    const cpuPerGib = (best.cpuSeconds * 1024) / sizeMib
    console.log(`${name.padEnd(26)} ${mibPerS.toFixed(1).padStart(7)} MiB/s  ${cpuPerGib.toFixed(1).padStart(6)} CPU-s/GiB  (best of ${runs}: ${best.seconds.toFixed(2)} s)`)
  }
}

void main()
