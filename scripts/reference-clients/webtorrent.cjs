// The WebTorrent engine (npm `webtorrent` 1.9.7, from the cache scripts/install-deps.sh fills) as a
// loopback-only reference client:
//
//   node webtorrent.cjs seed|leech <torrent file|magnet> <dir> <port> [timeout seconds]
//
// BIND (environment, default 127.0.0.1) is the address it listens on and dials from. DHT, LSD and
// uTP are off. webtorrent-cli has no switch for DHT (it bootstraps from public routers) or LSD, so
// this runs the engine itself, behind a guard: TCP only to loopback hosts, from BIND; UDP sockets
// (UDP trackers) bound to BIND and sending to loopback hosts only.
// `seed` prints `webtorrent: seeding` once it has every piece; `leech` prints
// `webtorrent: done in <s> s` and exits 0 once the download is verified (124 on the timeout).
"use strict"
const dgram = require("node:dgram")
const fs = require("node:fs")
const net = require("node:net")
const path = require("node:path")

const bind = process.env.BIND || "127.0.0.1"
const isLoopback = (host) =>
  host === undefined || host === null || host === "" || host === "localhost" || host === "::1" ||
  host === "::ffff:127.0.0.1" || /^127\./.test(String(host))
const refuse = (what) => {
  const error = new Error(`webtorrent: loopback guard refused ${what}`)
  console.error(error.message)
  return error
}

// TCP: normalise connect(port, host, cb) to the options form, refuse other hosts, dial from BIND
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
  let options = Array.isArray(args[0]) ? args[0][0] : typeof args[0] === "object" ? args[0] : null
  if (options === null && /^\d+$/.test(String(args[0]))) {
    const callback = args.find((a) => typeof a === "function")
    options = { port: Number(args[0]), host: typeof args[1] === "string" ? args[1] : "127.0.0.1" }
    args = callback === undefined ? [options] : [options, callback]
  }
  if (options !== null && !isLoopback(options.host)) {
    const error = refuse(`a connection to ${options.host}`)
    process.nextTick(() => this.destroy(error))
    return this
  }
  if (options !== null && options.port !== undefined && options.path === undefined && options.localAddress === undefined) {
    options.localAddress = bind
  }
  return connect.apply(this, args)
}

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const portOnly = (typeof args[0] === "number" || args[0] === undefined) && typeof args[1] !== "string"
  return portOnly ? listen.call(this, args[0] || 0, bind, ...args.slice(1)) : listen.apply(this, args)
}

// UDP: udp4 only, bound to BIND before the first send (Node would bind 0.0.0.0), loopback targets only
const createSocket = dgram.createSocket
dgram.createSocket = function (...args) {
  const type = typeof args[0] === "string" ? args[0] : args[0] && args[0].type
  if (type !== "udp4") throw refuse(`a ${type} socket`)
  const socket = createSocket.apply(this, args)
  const { bind: bindSocket, send, connect: connectSocket } = socket
  let bound = false
  socket.bind = function (...b) {
    bound = true
    const port = typeof b[0] === "object" && b[0] !== null ? b[0].port || 0 : typeof b[0] === "number" ? b[0] : 0
    const callback = b.find((a) => typeof a === "function")
    return bindSocket.call(this, { address: bind, port }, ...(callback === undefined ? [] : [callback]))
  }
  const refused = (host, rest) => {
    const error = refuse(`UDP to ${host}`)
    const callback = rest.find((a) => typeof a === "function")
    process.nextTick(() => (callback === undefined ? socket.emit("error", error) : callback(error)))
  }
  socket.send = function (message, ...rest) {
    // send(msg, [offset, length,] port [, address] [, callback])
    const plain = rest.filter((a) => typeof a !== "function")
    const host = plain.length >= 3 ? plain[3] : plain[1]
    if (!isLoopback(host)) return refused(host, rest)
    if (!bound) this.bind(0)
    return send.call(this, message, ...rest)
  }
  socket.connect = function (port, host, ...rest) {
    if (typeof host === "string" && !isLoopback(host)) return refused(host, rest)
    if (!bound) this.bind(0)
    return connectSocket.call(this, port, host, ...rest)
  }
  return socket
}

const cache = process.env.EFFECT_BITTORRENT_REFERENCE_DIR || "/opt/effect-bittorrent-reference"
let WebTorrent
try {
  WebTorrent = require(path.join(cache, "node_modules", "webtorrent"))
} catch (error) {
  console.error(`webtorrent: not installed in ${cache} (run scripts/install-deps.sh): ${error.message}`)
  process.exit(3)
}

const [mode, source, dir, portText, timeoutText] = process.argv.slice(2)
if (!["seed", "leech"].includes(mode) || !source || !dir || !/^\d+$/.test(portText || "")) {
  console.error("usage: webtorrent.cjs seed|leech <torrent|magnet> <dir> <port> [timeout seconds]")
  process.exit(2)
}
const client = new WebTorrent({ dht: false, lsd: false, utp: false, torrentPort: Number(portText), tracker: {} })
const started = Date.now()
let stopping = false
const stop = (code) => {
  if (stopping) return
  stopping = true
  setTimeout(() => process.exit(code), 3000).unref()
  client.destroy(() => process.exit(code))
}
client.on("error", (error) => {
  console.error(`webtorrent: ${error.message || error}`)
  stop(1)
})
process.on("SIGTERM", () => stop(143))
process.on("SIGINT", () => stop(130))
const timeoutS = Number(timeoutText || 0)
if (timeoutS > 0) {
  setTimeout(() => {
    console.error(`webtorrent: timeout after ${timeoutS} s`)
    stop(124)
  }, timeoutS * 1000).unref()
}

const isMagnet = source.startsWith("magnet:")
// private: true keeps ut_pex off for public torrents too
const torrent = client.add(isMagnet ? source : fs.readFileSync(source), { path: dir, private: true }, (t) => {
  console.log(`webtorrent: ${mode} ${t.infoHash} on ${bind}:${portText}`)
  if (mode === "seed") {
    const ready = () => console.log("webtorrent: seeding")
    return t.done ? ready() : t.once("done", ready)
  }
  const done = () => {
    const seconds = (Date.now() - started) / 1000
    console.log(`webtorrent: done in ${seconds.toFixed(3)} s`)
    stop(0)
  }
  return t.done ? done() : t.once("done", done)
})
torrent.on("warning", (warning) => console.error(`webtorrent: warning: ${warning.message || warning}`))
torrent.on("error", (error) => {
  console.error(`webtorrent: ${error.message || error}`)
  stop(1)
})
// Before it has a magnet link's metadata WebTorrent announces an empty `left=`, which opentracker
// answers with HTTP 400; announce left=0 meanwhile, as aria2 does.
if (isMagnet) torrent._getAnnounceOpts = () => (Number.isFinite(torrent.length) ? {} : { left: 0 })
