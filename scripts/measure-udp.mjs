// What node's dgram alone costs per datagram, the floor under any uTP in JavaScript (run:
// `node scripts/measure-udp.mjs`). A child process sends COUNT datagrams of SIZE bytes (1452: a
// 1500-byte MTU's uTP packet, as libtorrent and libutp send) to a receiver on 127.0.0.1 whose
// handler only counts them; each side prints its CPU (user + system) per datagram. Bursts of 200
// per turn of the sender's event loop keep the receiver's kernel buffer from overflowing; what it drops is
// counted, and the receiver's figure is per datagram it got.
//
// Environment: COUNT=200000, SIZE=1452, RUNS=3.
import { fork } from "node:child_process"
import dgram from "node:dgram"

const count = Number(process.env.COUNT ?? 200_000)
const size = Number(process.env.SIZE ?? 1452)
const runs = Number(process.env.RUNS ?? 3)
const burst = 200

const perDatagram = (usage, n) =>
  `${((usage.user + usage.system) / n).toFixed(2)} us CPU per datagram (user ${(usage.user / n).toFixed(2)}, system ${(usage.system / n).toFixed(2)})`

const send = (port) => {
  const socket = dgram.createSocket("udp4")
  const datagram = Buffer.alloc(size, 7)
  const cpu = process.cpuUsage()
  let sent = 0
  const sendBurst = () => {
    for (let i = 0; i < burst && sent < count; i++, sent++) socket.send(datagram, port, "127.0.0.1")
    if (sent < count) return setImmediate(sendBurst)
    process.send?.(perDatagram(process.cpuUsage(cpu), sent))
    // then exit: the socket closes once its last sends are out, and the IPC channel is let go
    setTimeout(() => {
      socket.close()
      process.disconnect?.()
    }, 200)
  }
  sendBurst()
}

/**
 * One run: the receiver's CPU from its first datagram until a moment after the sender reports
 * (an idle socket costs nothing), per datagram it got; datagrams the kernel dropped are counted.
 */
const receiveOnce = () =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4")
    const timer = setTimeout(() => reject(new Error("the sender did not finish in 60 s")), 60_000)
    socket.bind(0, "127.0.0.1", () => {
      socket.setRecvBufferSize(4 * 1024 * 1024)
      let got = 0
      let cpu
      socket.on("message", () => {
        if (got++ === 0) cpu = process.cpuUsage()
      })
      const sender = fork(new URL(import.meta.url).pathname, ["send", String(socket.address().port)])
      sender.on("message", (sending) =>
        setTimeout(() => {
          const usage = process.cpuUsage(cpu)
          socket.close()
          clearTimeout(timer)
          resolve({ received: perDatagram(usage, got), dropped: count - got, sending })
        }, 300))
    })
  })

if (process.argv[2] === "send") {
  send(Number(process.argv[3]))
} else {
  for (let run = 1; run <= runs; run++) {
    const { received, dropped, sending } = await receiveOnce()
    console.log(`run ${run}, ${count} datagrams of ${size} bytes (${dropped} dropped): receiving ${received}; sending ${sending}`)
  }
}
