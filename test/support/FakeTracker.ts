/**
 * In-process fake trackers on 127.0.0.1:0, as scoped resources: an HTTP tracker that serves chosen
 * bodies and statuses and records the raw query strings, and a UDP tracker (BEP 15) whose
 * misbehaviour is scriptable. Packets are built and read by hand here, independently of the codecs
 * under test.
 */
import { Effect, type Scope } from "effect"
import * as Dgram from "node:dgram"
import type { PeerAddress } from "../../src/domain/Peer.js"
import { scopedHttpServer } from "./ScopedHttpServer.js"

// ---------------------------------------------------------------------------------------------
// HTTP

export interface FakeHttpReply {
  readonly status?: number
  readonly body: Uint8Array
}

/** A reply, or `"hang"`: read the request and never answer. */
export type FakeHttpBehaviour = FakeHttpReply | "hang"

export interface FakeHttpTracker {
  /** `http://127.0.0.1:<port>/announce`. */
  readonly url: string
  /** The raw (undecoded) query string of every request, in arrival order. */
  readonly queries: ReadonlyArray<string>
}

export const fakeHttpTracker = (
  behaviour: FakeHttpBehaviour | ((query: string) => FakeHttpBehaviour)
): Effect.Effect<FakeHttpTracker, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queries: Array<string> = []
    const { port } = yield* scopedHttpServer((req, res) => {
      const raw = req.url ?? ""
      const query = raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : ""
      queries.push(query)
      const reply = typeof behaviour === "function" ? behaviour(query) : behaviour
      if (reply === "hang") return
      res.writeHead(reply.status ?? 200, { "content-type": "text/plain" })
      res.end(reply.body)
    })
    return { url: `http://127.0.0.1:${port}/announce`, queries }
  })

/**
 * One parameter of a raw query, percent-decoded to bytes. Undefined when absent, or when its text
 * holds anything but unreserved characters and `%XX` escapes (a client that sent that is wrong).
 */
export const rawQueryBytes = (query: string, name: string): Uint8Array | undefined => {
  const pair = query.split("&").find((p) => p.startsWith(`${name}=`))
  if (pair === undefined) return undefined
  const value = pair.slice(name.length + 1)
  if (!/^(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})*$/.test(value)) return undefined
  const out: Array<number> = []
  for (let i = 0; i < value.length; i++) {
    if (value[i] === "%") {
      out.push(parseInt(value.slice(i + 1, i + 3), 16))
      i += 2
    } else out.push(value.charCodeAt(i))
  }
  return new Uint8Array(out)
}

/** A query's parameters as text (names and plain values such as `port=6881`). */
export const queryParams = (query: string): ReadonlyMap<string, string> =>
  new Map(query.split("&").map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)] as const))

/** Compact IPv4 peers: 4 address bytes and a big-endian port each. */
export const compactPeers = (peers: ReadonlyArray<PeerAddress>): Uint8Array => {
  const out = new Uint8Array(peers.length * 6)
  peers.forEach((p, i) => {
    out.set(p.host.split(".").map(Number), i * 6)
    out[i * 6 + 4] = p.port >> 8
    out[i * 6 + 5] = p.port & 0xff
  })
  return out
}

// ---------------------------------------------------------------------------------------------
// UDP (BEP 15)

export interface FakeUdpBehaviour {
  /** Ignore this many datagrams first (of any kind), as a lossy network would. */
  readonly dropFirst?: number
  /** Answer every announce with action 3 (error) and this message. */
  readonly error?: string
  /** Before each real reply, send a well-formed reply with another transaction id and `decoyPeers`. */
  readonly wrongTransactionFirst?: boolean
  readonly peers?: ReadonlyArray<PeerAddress>
  readonly decoyPeers?: ReadonlyArray<PeerAddress>
  readonly interval?: number
}

export interface ReceivedDatagram {
  readonly action: number
  readonly connectionId: bigint
  readonly dropped: boolean
  readonly bytes: Uint8Array
}

export interface FakeUdpTracker {
  /** `udp://127.0.0.1:<port>/announce`. */
  readonly url: string
  readonly port: number
  /** Every datagram received, the dropped ones too. */
  readonly received: ReadonlyArray<ReceivedDatagram>
  /** Forgets every connection id it handed out (announces with them then get an error). */
  readonly forgetConnections: () => void
}

const PROTOCOL_ID = 0x41727101980n

export const fakeUdpTracker = (behaviour: FakeUdpBehaviour = {}): Effect.Effect<FakeUdpTracker, never, Scope.Scope> =>
  Effect.gen(function* () {
    const received: Array<ReceivedDatagram> = []
    const issued = new Set<bigint>()
    let nextConnectionId = 0x1234_5678_0000_0001n

    const reply = (socket: Dgram.Socket, to: Dgram.RemoteInfo, packet: Uint8Array) => socket.send(packet, to.port, to.address)

    const announceReply = (transactionId: number, peers: ReadonlyArray<PeerAddress>): Uint8Array => {
      const out = new Uint8Array(20 + peers.length * 6)
      const view = new DataView(out.buffer)
      view.setUint32(0, 1)
      view.setUint32(4, transactionId)
      view.setUint32(8, behaviour.interval ?? 1800)
      view.setUint32(12, 3) // leechers
      view.setUint32(16, 5) // seeders
      out.set(compactPeers(peers), 20)
      return out
    }

    const errorReply = (transactionId: number, message: string): Uint8Array => {
      const text = new TextEncoder().encode(message)
      const out = new Uint8Array(8 + text.length)
      const view = new DataView(out.buffer)
      view.setUint32(0, 3)
      view.setUint32(4, transactionId)
      out.set(text, 8)
      return out
    }

    const onMessage = (socket: Dgram.Socket, message: Buffer, from: Dgram.RemoteInfo) => {
      const bytes = new Uint8Array(message)
      if (bytes.length < 16) return
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      const connectionId = view.getBigUint64(0)
      const action = view.getUint32(8)
      const transactionId = view.getUint32(12)
      const dropped = received.length < (behaviour.dropFirst ?? 0)
      received.push({ action, connectionId, dropped, bytes })
      if (dropped) return
      const stray = (packet: Uint8Array) => {
        if (behaviour.wrongTransactionFirst) {
          new DataView(packet.buffer).setUint32(4, (transactionId + 1) >>> 0)
          reply(socket, from, packet)
        }
      }
      if (action === 0 && connectionId === PROTOCOL_ID) {
        const id = nextConnectionId++
        issued.add(id)
        const out = new Uint8Array(16)
        const outView = new DataView(out.buffer)
        outView.setUint32(0, 0)
        outView.setUint32(4, transactionId)
        outView.setBigUint64(8, id)
        stray(errorReply(0, "decoy"))
        reply(socket, from, out)
      } else if (action === 1 && bytes.length >= 98) {
        if (!issued.has(connectionId)) return reply(socket, from, errorReply(transactionId, "unknown connection id"))
        if (behaviour.error !== undefined) return reply(socket, from, errorReply(transactionId, behaviour.error))
        stray(announceReply(0, behaviour.decoyPeers ?? []))
        reply(socket, from, announceReply(transactionId, behaviour.peers ?? []))
      }
    }

    const socket = yield* Effect.acquireRelease(
      Effect.async<Dgram.Socket>((resume) => {
        const socket = Dgram.createSocket("udp4")
        socket.on("message", (message, from) => onMessage(socket, message, from))
        socket.bind(0, "127.0.0.1", () => resume(Effect.succeed(socket)))
      }),
      (socket) =>
        Effect.async<void>((resume) => {
          socket.close(() => resume(Effect.void))
        })
    )
    const { port } = socket.address()
    return { url: `udp://127.0.0.1:${port}/announce`, port, received, forgetConnections: () => issued.clear() }
  })
