/**
 * One uTP connection (BEP 29) as a state machine: packets and the time go in, datagrams to send
 * and bytes delivered in order come out. It does no I/O: the socket that owns it hands it the
 * packets for its connection id, calls `tick` now and then for the timers, and gives it a `host`
 * to send datagrams through and to hear of its events.
 *
 * Sending: the bytes written wait in a queue and go out as packets of at most `maxPayload`
 * while the bytes in flight stay within the congestion window (LEDBAT) and the peer's receive
 * window. A packet is sent again when the retransmission timer fires (then the window falls to
 * one packet), after three duplicate acks, or when three later packets were selectively acked
 * and it is overdue by half a round trip (a packet merely overtaken arrives within that).
 * Receiving: packets are reassembled in order within our receive window; later ones wait in a
 * reorder buffer and are reported in selective acks.
 */
import { Data, Either } from "effect"
import { ByteQueue } from "./ByteQueue.js"
import * as Ledbat from "./Ledbat.js"
import {
  decodePacket,
  headerLength,
  PacketType,
  refreshHeader,
  seqAdd,
  seqDistance,
  type UtpPacket,
  writeHeader
} from "./UtpPacket.js"

/** Payload bytes per packet: fits a 1500-byte MTU with the IP, UDP and uTP headers and a selective ack. */
export const maxPayload = 1400
const duplicateAcksBeforeResend = 3
const maxConsecutiveTimeouts = 6
/** How long a closed connection stays to get its FIN acked. */
const lingerMillis = 10_000
/** The window may grow only if it was full this recently (libutp). */
const windowLimitedMillis = 1000
/** Reorder distance we accept at most, in packets. */
const maxReorder = 0x4000
/** Selective ack bytes at most (covers 512 packets past the ack). */
const maxSelectiveAckBytes = 64

export type UtpConnectionErrorReason = "Reset" | "Timeout"

export class UtpConnectionError extends Data.TaggedError("UtpConnectionError")<{
  readonly reason: UtpConnectionErrorReason
  readonly detail: string
}> {
  override get message() {
    return `uTP connection ${this.reason === "Reset" ? "reset" : "timed out"}: ${this.detail}`
  }
}

export type UtpState = "SynSent" | "Connected" | "Closed"

export interface UtpHost {
  /** Microseconds on a monotonic clock. */
  readonly nowMicros: () => number
  readonly transmit: (datagram: Uint8Array) => void
  /** The connection was accepted by the peer (dialling side). */
  readonly connected: () => void
  /** Bytes arrived in order, or the read side ended. */
  readonly readable: () => void
  /** Unsent plus in-flight bytes went down: the writer may go on. */
  readonly writable: () => void
  /** The connection is over for its user: ended by either side, reset or timed out. */
  readonly closed: () => void
  /**
   * An ack is owed: call `flushAck` soon, once the datagrams that arrived together are all in
   * (one ack for a burst, not one per packet).
   */
  readonly ackLater: () => void
  /** Nothing more to send or acknowledge: the socket may forget the connection. */
  readonly finished: () => void
}

export interface UtpConnectionOptions {
  /** Our receive buffer: unread plus reordered bytes at most. */
  readonly receiveWindow: number
  readonly ledbat?: Ledbat.LedbatOptions
}

interface Outgoing {
  readonly seq: number
  readonly datagram: Uint8Array
  readonly length: number
  sentAtMicros: number
  transmissions: number
  inFlight: boolean
  acked: boolean
  /** Sent again already on duplicate or selective acks: a second loss waits for the timer. */
  fastResent: boolean
}

export class UtpConnection {
  state: UtpState
  error: UtpConnectionError | undefined = undefined
  /** The peer's FIN arrived, in order: no more bytes. */
  readEnded = false
  /** We closed (destroy or the peer's FIN): nothing more is written. */
  localClosed = false
  private seqNr: number
  private ackNr = 0
  private readonly outstanding: Array<Outgoing> = []
  flightBytes = 0
  /** Packets sent again, retransmission timeouts, and losses that shrank the window (once per window of data): for stats. */
  retransmissions = 0
  timeouts = 0
  lossEvents = 0
  /** Outstanding packets neither in flight nor acked: lost, waiting to be sent again. */
  private toResend = 0
  private readonly unsent = new ByteQueue()
  private readonly received = new ByteQueue()
  private readonly reorder = new Map<number, UtpPacket>()
  private reorderBytes = 0
  private remoteFinSeq: number | undefined = undefined
  private peerWindow = maxPayload
  private ledbat: Ledbat.Ledbat
  private replyMicros = 0
  private duplicateAcks = 0
  /** Losses after this seq halve the window again; before it, they are the same congestion event. */
  private recoverySeq: number | undefined = undefined
  private windowFullAtMillis = -Infinity
  private timerDeadlineMillis: number | undefined = undefined
  private consecutiveTimeouts = 0
  private lastAdvertised = 0
  private closedAtMillis = 0
  private lastSendMillis = 0
  /** An ack is owed and not yet sent (every packet we send carries the ack). */
  private ackDue = false
  /** While an ack is taken: when the newest packet it acks that was sent once went out. */
  private newestSentOnce: number | undefined = undefined

  private constructor(
    private readonly host: UtpHost,
    readonly recvId: number,
    readonly sendId: number,
    seqNr: number,
    state: UtpState,
    private readonly options: UtpConnectionOptions
  ) {
    this.seqNr = seqNr
    this.state = state
    this.ledbat = Ledbat.makeLedbat(this.nowMillis(), options.ledbat)
  }

  /** Dials: sends the SYN. `recvId` is the id the peer's packets will carry; `initialSeq` is random. */
  static connect(host: UtpHost, recvId: number, initialSeq: number, options: UtpConnectionOptions): UtpConnection {
    const c = new UtpConnection(host, recvId, (recvId + 1) & 0xffff, initialSeq, "SynSent", options)
    // The SYN carries the receive id (BEP 29); every later packet carries the send id.
    c.sendPacket(PacketType.Syn, new Uint8Array(0), recvId)
    return c
  }

  /** Answers a SYN with a STATE; the connection is established at once. */
  static accept(host: UtpHost, syn: UtpPacket, initialSeq: number, options: UtpConnectionOptions): UtpConnection {
    const c = new UtpConnection(host, (syn.connectionId + 1) & 0xffff, syn.connectionId, initialSeq, "Connected", options)
    c.ackNr = syn.seqNr
    c.peerWindow = syn.windowSize
    c.noteTimestamp(syn)
    c.sendState()
    return c
  }

  get unsentBytes() {
    return this.unsent.length
  }
  get bufferedBytes() {
    return this.received.length
  }
  get congestionWindow() {
    return this.ledbat.cwnd
  }
  get queuingDelayMicros() {
    return Ledbat.queuingDelay(this.ledbat)
  }
  get roundTripMillis() {
    return this.ledbat.rttMillis
  }

  private nowMillis() {
    return this.host.nowMicros() / 1000
  }

  // -------------------------------------------------------------------------------------------
  // The user's side

  /** Queues bytes to send; they go out as the windows allow. */
  write(bytes: Uint8Array) {
    if (this.localClosed || this.state === "Closed") return
    this.unsent.push(bytes)
    this.flush()
  }

  /** See `Duplex.read`: exactly `size` bytes, or what is buffered; null when not enough (except at the end). */
  read(size?: number): Uint8Array | null {
    const buffered = this.received.length
    if (buffered === 0 || (size !== undefined && buffered < size && !this.readEnded)) return null
    const bytes = size === undefined ? this.received.takeChunk()! : this.received.take(Math.min(size, buffered))
    // The window reopened while the peer may be waiting on it: tell it.
    const half = this.options.receiveWindow / 2
    if (this.state === "Connected" && !this.readEnded && this.lastAdvertised < half && this.freeWindow() >= half) this.sendState()
    return bytes
  }

  /** Closes our side: unsent bytes are dropped, what is in flight is still delivered, then the FIN. */
  close() {
    if (this.localClosed || this.state === "Closed") return
    this.localClosed = true
    this.closedAtMillis = this.nowMillis()
    this.unsent.clear()
    this.received.clear()
    this.host.closed()
    if (this.state === "SynSent") return this.finish(undefined)
    this.sendPacket(PacketType.Fin, new Uint8Array(0), this.sendId)
  }

  /**
   * Forgets the connection at once and tells the peer with a RESET. It carries the last sequence
   * number we sent: after our FIN, libtorrent ignores any packet numbered past the FIN, so a RESET
   * numbered next would leave it waiting for the connection to time out.
   */
  reset() {
    if (this.state === "Closed") return
    this.transmitHeader(PacketType.Reset, (this.seqNr - 1) & 0xffff, undefined)
    this.finish(undefined)
  }

  // -------------------------------------------------------------------------------------------
  // Packets in

  /** A packet for this connection (the socket matched its connection id). */
  receive(p: UtpPacket) {
    if (this.state === "Closed") return
    if (p.type === PacketType.Reset) return this.finish(new UtpConnectionError({ reason: "Reset", detail: "reset by the peer" }))
    this.noteTimestamp(p)
    if (p.type === PacketType.Syn) return this.sendState() // our STATE was lost: the peer asks again
    if (this.state === "SynSent") {
      if (p.type !== PacketType.State || p.ackNr !== this.outstanding[0]?.seq) return
      this.state = "Connected"
      this.ackNr = seqAdd(p.seqNr, -1)
      this.host.connected()
    }
    this.peerWindow = p.windowSize
    if (p.timestampDifferenceMicros !== 0) {
      this.ledbat = Ledbat.onDelaySample(this.ledbat, p.timestampDifferenceMicros, this.nowMillis())
    }
    this.takeAcks(p)
    const mustAck = p.type === PacketType.Data || p.type === PacketType.Fin ? this.takeData(p) : false
    const sent = this.flush()
    if (mustAck && !sent && !this.ackDue) {
      this.ackDue = true
      this.host.ackLater()
    }
    if (this.localClosed && this.outstanding.length === 0) {
      // The ack owed (for the peer's FIN, say, which acked ours) goes now: once finished, none
      // would, and the peer would send its FIN again until it timed out.
      this.flushAck()
      this.finish(undefined)
    }
  }

  private noteTimestamp(p: UtpPacket) {
    this.replyMicros = p.timestampMicros === 0 ? 0 : (this.host.nowMicros() - p.timestampMicros) >>> 0
  }

  /** Cumulative ack, duplicate acks and the selective ack; the window follows the bytes acked. */
  private takeAcks(p: UtpPacket) {
    const first = this.outstanding[0]
    if (first === undefined) return
    const acked = seqDistance(p.ackNr, first.seq) + 1
    if (acked > this.outstanding.length) return // acks what we never sent
    const now = this.host.nowMicros()
    let bytes = 0
    if (acked > 0) {
      for (const o of this.outstanding.splice(0, acked)) bytes += this.settle(o)
      this.duplicateAcks = 0
      this.consecutiveTimeouts = 0
      this.timerDeadlineMillis = this.outstanding.length > 0 ? this.nowMillis() + this.ledbat.rtoMillis : undefined
    } else if (acked === 0 && p.type === PacketType.State && p.selectiveAck === undefined) {
      const oldest = this.outstanding[0]!
      if (++this.duplicateAcks === duplicateAcksBeforeResend && !oldest.fastResent) this.fastResend(oldest)
    }
    if (p.selectiveAck !== undefined) bytes += this.takeSelectiveAck(p.ackNr, p.selectiveAck, now)
    // one round-trip sample per ack, from the newest packet it acks that was sent once (Karn)
    if (this.newestSentOnce !== undefined) {
      this.ledbat = Ledbat.onRttSample(this.ledbat, (now - this.newestSentOnce) / 1000)
      this.newestSentOnce = undefined
    }
    if (bytes > 0) {
      const windowLimited = this.nowMillis() - this.windowFullAtMillis < windowLimitedMillis
      this.ledbat = Ledbat.onAck(this.ledbat, { bytes, windowLimited })
      this.host.writable()
    }
  }

  /** An outgoing packet is acknowledged: its bytes are no longer in flight; the bytes newly acked. */
  private settle(o: Outgoing): number {
    if (o.acked) return 0
    o.acked = true
    if (o.inFlight) this.flightBytes -= o.length
    else this.toResend--
    o.inFlight = false
    // Karn: a retransmitted packet's ack says nothing of the round trip
    if (o.transmissions === 1 && (this.newestSentOnce === undefined || o.sentAtMicros > this.newestSentOnce)) this.newestSentOnce = o.sentAtMicros
    return o.length
  }

  private takeSelectiveAck(ackNr: number, mask: Uint8Array, now: number): number {
    const first = this.outstanding[0]
    if (first === undefined) return 0
    let bytes = 0
    const offset = seqDistance(seqAdd(ackNr, 2), first.seq)
    for (let bit = 0; bit < mask.length * 8; bit++) {
      if ((mask[bit >> 3]! & (1 << (bit & 7))) === 0) continue
      const o = this.outstanding[offset + bit]
      if (o !== undefined) bytes += this.settle(o)
    }
    // A packet with three later ones acked is lost (the duplicate-ack rule, per packet), once it
    // is also overdue by half a round trip: a packet merely overtaken arrives within that. A
    // packet sent again is lost again when one sent after it was acked (as RACK, RFC 8985,
    // reasons): without this, a lost retransmission waits for the timer and the window collapses.
    const overdueMicros = now - 1500 * (this.ledbat.rttMillis ?? 0)
    let ackedAfter = 0
    let latestAckedSend = -Infinity
    for (let i = this.outstanding.length - 1; i >= 0; i--) {
      const o = this.outstanding[i]!
      if (o.acked) {
        ackedAfter++
        latestAckedSend = Math.max(latestAckedSend, o.sentAtMicros)
      } else if (ackedAfter >= duplicateAcksBeforeResend && o.inFlight && o.sentAtMicros < overdueMicros && o.sentAtMicros < latestAckedSend) {
        this.fastResend(o)
      }
    }
    return bytes
  }

  /** A packet counts as lost: it is sent again, and the window halves once per window of data. */
  private fastResend(o: Outgoing) {
    o.fastResent = true
    this.markLost(o)
    if (this.recoverySeq === undefined || seqDistance(o.seq, this.recoverySeq) > 0) {
      this.ledbat = Ledbat.onLoss(this.ledbat)
      this.lossEvents++
      this.recoverySeq = seqAdd(this.seqNr, -1)
    }
  }

  /** A DATA or FIN packet: delivered in order or kept for later; whether it must be acked. */
  private takeData(p: UtpPacket): boolean {
    if (this.state !== "Connected") return false
    const distance = seqDistance(p.seqNr, this.ackNr)
    if (distance <= 0) return true // a duplicate: our ack was lost
    if (distance > maxReorder || this.reorder.has(p.seqNr)) return true
    // The next packet in order is taken whenever the unread bytes leave room, whatever waits
    // reordered: it is what frees the reorder buffer (else a full one would wait forever).
    const waiting = this.received.length + (distance > 1 ? this.reorderBytes : 0)
    if (!this.localClosed && waiting + p.payload.length > this.options.receiveWindow) return true
    if (p.type === PacketType.Fin) this.remoteFinSeq = p.seqNr
    if (distance > 1) {
      this.reorder.set(p.seqNr, p)
      this.reorderBytes += p.payload.length
      return true
    }
    this.deliver(p)
    for (let next = this.reorder.get(seqAdd(this.ackNr, 1)); next !== undefined; next = this.reorder.get(seqAdd(this.ackNr, 1))) {
      this.reorder.delete(next.seqNr)
      this.reorderBytes -= next.payload.length
      this.deliver(next)
    }
    if (this.remoteFinSeq !== undefined && seqDistance(this.ackNr, this.remoteFinSeq) >= 0) this.remoteEnded()
    else if (!this.localClosed) this.host.readable()
    return true
  }

  private deliver(p: UtpPacket) {
    this.ackNr = p.seqNr
    if (!this.localClosed) this.received.push(p.payload)
  }

  /** The peer's FIN, in order: the read side ends, and we close ours (no half-open connections). */
  private remoteEnded() {
    this.readEnded = true
    this.reorder.clear()
    this.reorderBytes = 0
    if (this.localClosed) return
    this.localClosed = true
    this.closedAtMillis = this.nowMillis()
    this.unsent.clear()
    this.sendPacket(PacketType.Fin, new Uint8Array(0), this.sendId)
    this.host.readable()
    this.host.closed()
  }

  // -------------------------------------------------------------------------------------------
  // Packets out

  private markLost(o: Outgoing) {
    if (!o.inFlight) return
    this.flightBytes -= o.length
    this.toResend++
    o.inFlight = false
  }

  private freeWindow() {
    return Math.max(0, this.options.receiveWindow - this.received.length - this.reorderBytes)
  }

  /** Sends what the windows allow: packets marked lost first, then new data. Whether anything went out. */
  private flush(): boolean {
    if (this.state !== "Connected") return false
    const window = Math.min(this.ledbat.cwnd, this.peerWindow)
    let sent = false
    for (let i = 0; this.toResend > 0 && i < this.outstanding.length; i++) {
      const o = this.outstanding[i]!
      if (o.inFlight || o.acked) continue
      if (this.flightBytes + o.length > window && this.flightBytes > 0) return this.windowFull(sent)
      this.retransmit(o)
      sent = true
    }
    while (this.unsent.length > 0) {
      const length = Math.min(maxPayload, this.unsent.length)
      if (this.flightBytes + length > window) return this.windowFull(sent)
      const datagram = new Uint8Array(headerLength + length)
      this.unsent.copyInto(datagram, headerLength, length)
      this.sendDatagram(PacketType.Data, datagram, length, this.sendId)
      sent = true
    }
    return sent
  }

  private windowFull(sent: boolean) {
    this.windowFullAtMillis = this.nowMillis()
    return sent
  }

  private sendPacket(type: PacketType, payload: Uint8Array, connectionId: number) {
    const datagram = new Uint8Array(headerLength + payload.length)
    datagram.set(payload, headerLength)
    this.sendDatagram(type, datagram, payload.length, connectionId)
  }

  /** Sends a packet that takes a sequence number (SYN, DATA, FIN) and keeps it until acked. */
  private sendDatagram(type: PacketType, datagram: Uint8Array, length: number, connectionId: number) {
    const now = this.host.nowMicros()
    const seq = this.seqNr
    this.seqNr = seqAdd(seq, 1)
    writeHeader(datagram, this.header(type, connectionId, seq, now))
    this.outstanding.push({ seq, datagram, length, sentAtMicros: now, transmissions: 1, inFlight: true, acked: false, fastResent: false })
    this.flightBytes += length
    this.transmitted(datagram)
  }

  private retransmit(o: Outgoing) {
    const now = this.host.nowMicros()
    this.ackDue = false
    refreshHeader(o.datagram, now, this.replyMicros, this.advertise(), this.ackNr)
    o.sentAtMicros = now
    o.transmissions++
    this.retransmissions++
    o.inFlight = true
    this.toResend--
    this.flightBytes += o.length
    this.transmitted(o.datagram)
  }

  private transmitted(datagram: Uint8Array) {
    this.lastSendMillis = this.nowMillis()
    this.timerDeadlineMillis ??= this.lastSendMillis + this.ledbat.rtoMillis
    this.host.transmit(datagram)
  }

  private advertise() {
    this.lastAdvertised = this.freeWindow()
    return this.lastAdvertised
  }

  private header(type: PacketType, connectionId: number, seqNr: number, nowMicros: number) {
    this.ackDue = false
    return {
      type,
      connectionId,
      timestampMicros: nowMicros,
      timestampDifferenceMicros: this.replyMicros,
      windowSize: this.advertise(),
      seqNr,
      ackNr: this.ackNr
    }
  }

  /** Sends the ack `ackLater` asked for, unless a packet carried it meanwhile. */
  flushAck() {
    if (this.ackDue && this.state !== "Closed") this.sendState()
  }

  /** An ack (STATE), with a selective ack when packets wait out of order. */
  private sendState() {
    this.transmitHeader(PacketType.State, this.seqNr, this.selectiveAck())
  }

  private transmitHeader(type: PacketType, seqNr: number, selectiveAck: Uint8Array | undefined) {
    const now = this.host.nowMicros()
    const header = this.header(type, this.sendId, seqNr, now)
    if (selectiveAck === undefined) {
      const datagram = new Uint8Array(headerLength)
      writeHeader(datagram, header)
      return this.host.transmit(datagram)
    }
    const datagram = new Uint8Array(headerLength + 2 + selectiveAck.length)
    writeHeader(datagram, header, 1)
    datagram[headerLength + 1] = selectiveAck.length
    datagram.set(selectiveAck, headerLength + 2)
    this.host.transmit(datagram)
  }

  private selectiveAck(): Uint8Array | undefined {
    if (this.reorder.size === 0) return undefined
    let farthest = 0
    for (const seq of this.reorder.keys()) farthest = Math.max(farthest, seqDistance(seq, this.ackNr) - 2)
    const bytes = Math.min(maxSelectiveAckBytes, (Math.floor(farthest / 32) + 1) * 4)
    const mask = new Uint8Array(bytes)
    for (const seq of this.reorder.keys()) {
      const bit = seqDistance(seq, this.ackNr) - 2
      if (bit >= 0 && bit < bytes * 8) mask[bit >> 3]! |= 1 << (bit & 7)
    }
    return mask
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /** Runs the timers: retransmission, the zero-window probe, the linger after close. */
  tick() {
    if (this.state === "Closed") return
    const now = this.nowMillis()
    if (this.localClosed && now - this.closedAtMillis > lingerMillis) return this.finish(undefined)
    if (this.timerDeadlineMillis !== undefined && now >= this.timerDeadlineMillis) return this.timedOut(now)
    // The peer's window is shut and its reopening may have been lost: probe with one packet.
    if (this.state === "Connected" && this.flightBytes === 0 && this.unsent.length > 0 && now - this.lastSendMillis > this.ledbat.rtoMillis) {
      this.peerWindow = Math.max(this.peerWindow, maxPayload)
      this.flush()
    }
  }

  private timedOut(now: number) {
    this.timerDeadlineMillis = undefined
    if (this.outstanding.length === 0) return
    if (++this.consecutiveTimeouts > maxConsecutiveTimeouts) {
      const detail = `no ack after ${maxConsecutiveTimeouts} retransmissions`
      return this.finish(this.localClosed ? undefined : new UtpConnectionError({ reason: "Timeout", detail }))
    }
    this.timeouts++
    this.ledbat = Ledbat.onTimeout(this.ledbat)
    for (const o of this.outstanding) this.markLost(o)
    this.duplicateAcks = 0
    this.recoverySeq = seqAdd(this.seqNr, -1)
    if (this.state === "SynSent") this.retransmit(this.outstanding[0]!)
    else this.flush()
    this.timerDeadlineMillis = now + this.ledbat.rtoMillis
  }

  private finish(error: UtpConnectionError | undefined) {
    const wasOpen = !this.localClosed
    this.state = "Closed"
    this.error ??= error
    this.localClosed = true
    this.unsent.clear()
    this.outstanding.length = 0
    this.flightBytes = 0
    this.toResend = 0
    if (wasOpen) {
      this.host.readable()
      this.host.closed()
    }
    this.host.finished()
  }
}

/** Decodes a datagram for the socket's dispatch; undefined when it is not a valid packet. */
export const parseDatagram = (bytes: Uint8Array): UtpPacket | undefined => {
  const decoded = decodePacket(bytes)
  return Either.isRight(decoded) ? decoded.right : undefined
}
