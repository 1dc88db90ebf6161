// What node's dgram alone costs per datagram, the floor under any uTP in JavaScript (run:
// `node scripts/measure-udp.mjs`). A child process sends COUNT datagrams of SIZE bytes (1452: a
// 1500-byte MTU's uTP packet, as libtorrent and libutp send) to a receiver on 127.0.0.1 whose
// handler only counts them; each side prints its CPU (user + system) per datagram. Bursts of 200
// per turn of the sender's event loop keep the receiver's kernel buffer from overflowing.
//
// Environment: COUNT=200000, SIZE=1452, RUNS=3.
import { fork } from "node:child_process"
import dgram from "node:dgram"

const count = Number(process.env.COUNT ?? 200_000)
const size = Number(process.env.SIZE ?? 1452)
const runs = Number(process.env.RUNS ?? 3)
const burst = 200
/** Extra datagrams past `count`, in case some are dropped; the receiver stops at `count`. */
const spare = 2000

const perDatagram = (usage, n) =>
  `${((usage.user + usage.system) / n).toFixed(2)} us CPU per datagram (user ${(usage.user / n).toFixed(2)}, system ${(usage.system / n).toFixed(2)})`

const send = (port) => {
  const socket = dgram.createSocket("udp4")
  const datagram = Buffer.alloc(size, 7)
  const cpu = process.cpuUsage()
  let sent = 0
  const sendBurst = () => {
    for (let i = 0; i < burst && sent < count + spare; i++, sent++) socket.send(datagram, port, "127.0.0.1")
    if (sent < count + spare) return setImmediate(sendBurst)
    process.send?.(perDatagram(process.cpuUsage(cpu), sent))
    setTimeout(() => socket.close(), 200)
  }
  sendBurst()
}

const receiveOnce = () =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4")
    const timer = setTimeout(() => reject(new Error(`fewer than ${count} datagrams in 60 s`)), 60_000)
    socket.bind(0, "127.0.0.1", () => {
      socket.setRecvBufferSize(4 * 1024 * 1024)
      let got = 0
      let cpu
      let senderSays = "?"
      socket.on("message", () => {
        if (got === 0) cpu = process.cpuUsage()
        if (++got < count) return
        const received = perDatagram(process.cpuUsage(cpu), count)
        socket.close()
        clearTimeout(timer)
        // the sender reports once it is done, a moment after the last datagram
        setTimeout(() => resolve({ received, sender: senderSays }), 300)
      })
      const sender = fork(new URL(import.meta.url).pathname, ["send", String(socket.address().port)])
      sender.on("message", (text) => (senderSays = text))
    })
  })

if (process.argv[2] === "send") {
  send(Number(process.argv[3]))
} else {
  for (let run = 1; run <= runs; run++) {
    const { received, sender } = await receiveOnce()
    console.log(`run ${run}, ${count} datagrams of ${size} bytes: receiving ${received}; sending ${sender}`)
  }
}
