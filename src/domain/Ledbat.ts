/**
 * LEDBAT congestion control for uTP (BEP 29, as libutp does it): the window grows while the
 * one-way queuing delay is below a 100 ms target and shrinks above it, by at most a few KB per
 * round trip; it shrinks to 0.7 on loss and falls to one packet on a timeout (then slow start). The queuing delay is the
 * delay measured now (the least of the last few samples) minus the base delay (the least seen
 * over the last minutes), so the clocks of the two ends never need to agree.
 *
 * The module is a value and functions over it: no clock, no I/O; the caller passes the time.
 * Delays are in microseconds modulo 2^32 (they come off the wire so), times in milliseconds.
 */

export interface LedbatOptions {
  /** The queuing delay aimed at; BEP 29 says 100 ms. */
  readonly targetMicros: number
  /** The most the window grows by in one round trip, at zero delay. */
  readonly maxIncreasePerRtt: number
  /**
   * What a loss leaves of the window. BEP 29 and libtorrent halve it; we keep 0.7 of it, as
   * CUBIC (RFC 8312, Linux's TCP) does: random loss is not congestion, and LEDBAT yields to TCP
   * by the delay long before a queue overflows. At 1% loss and a 40 ms round trip, 0.7 moves
   * about a third more than halving.
   */
  readonly lossFactor: number
  /** The least window: one full packet, so that something can always be sent. */
  readonly minWindow: number
  readonly maxWindow: number
  /** How long a base delay bucket covers, and how many are kept (libutp: a minute, a few of them). */
  readonly baseBucketMillis: number
  readonly baseBuckets: number
}

export const defaultLedbatOptions: LedbatOptions = {
  targetMicros: 100_000,
  maxIncreasePerRtt: 3000,
  lossFactor: 0.7,
  minWindow: 1400,
  maxWindow: 4 * 1024 * 1024,
  baseBucketMillis: 60_000,
  baseBuckets: 3
}

export const minRtoMillis = 500
export const initialRtoMillis = 1000
export const maxRtoMillis = 60_000
/** Samples the current delay is the least of: filters out a single lucky or unlucky packet. */
const currentSamples = 3

export interface Ledbat {
  readonly options: LedbatOptions
  /** The congestion window in bytes. */
  readonly cwnd: number
  /** Doubling per round trip until loss, until the delay reaches half the target, or up to `ssthresh`. */
  readonly slowStart: boolean
  /**
   * Where slow start ends: the window a loss left, or half the window a timeout found. After a
   * timeout the window starts again from one packet in slow start, so that it is back near its
   * old size in a few round trips rather than thousands of bytes per round trip (libtorrent does so).
   */
  readonly ssthresh: number
  /** The per-bucket least delays, newest last; empty before the first sample. */
  readonly baseDelays: ReadonlyArray<number>
  readonly bucketStartMillis: number
  readonly recentDelays: ReadonlyArray<number>
  /** Smoothed round trip and its variation (ms); undefined before the first sample. */
  readonly rttMillis: number | undefined
  readonly rttVarMillis: number
  readonly rtoMillis: number
}

export const makeLedbat = (nowMillis: number, options: LedbatOptions = defaultLedbatOptions): Ledbat => ({
  options,
  cwnd: options.minWindow * 2,
  slowStart: true,
  ssthresh: options.maxWindow,
  baseDelays: [],
  bucketStartMillis: nowMillis,
  recentDelays: [],
  rttMillis: undefined,
  rttVarMillis: 0,
  rtoMillis: initialRtoMillis
})

/** a before b on the 32-bit microsecond circle. */
const wrapBefore = (a: number, b: number) => ((a - b) >>> 0) > 0x80000000
const wrapMin = (a: number, b: number) => (wrapBefore(a, b) ? a : b)

/** Whether recording `sample` now would leave the state as it is (a copy of equal values). */
const unchangedBy = (s: Ledbat, sample: number, nowMillis: number) => {
  const recent = s.recentDelays
  if (recent.length < currentSamples) return false
  for (let i = 0; i < recent.length; i++) if (recent[i] !== sample) return false
  const base = s.baseDelays[s.baseDelays.length - 1]
  return base !== undefined && !wrapBefore(sample, base) && nowMillis - s.bucketStartMillis < s.options.baseBucketMillis
}

/** Records a one-way delay sample (the peer's timestamp difference, i.e. its clock minus ours). */
export const onDelaySample = (s: Ledbat, delayMicros: number, nowMillis: number): Ledbat => {
  const sample = delayMicros >>> 0
  const recent = s.recentDelays
  // A peer repeats its last measurement in every packet until it hears from us again: when the
  // recent samples all equal it and the base stays, the state is the same, and no copy is made.
  if (unchangedBy(s, sample, nowMillis)) return s
  // one sample per packet received: one array (of currentSamples, 3) and one object; the base delays are shared while unchanged
  const recentDelays = recent.length < currentSamples ? [...recent, sample] : [recent[recent.length - 2]!, recent[recent.length - 1]!, sample]
  const last = s.baseDelays.length - 1
  if (last < 0) return { ...s, recentDelays, baseDelays: [sample], bucketStartMillis: nowMillis }
  if (nowMillis - s.bucketStartMillis >= s.options.baseBucketMillis) {
    const baseDelays = [...s.baseDelays.slice(1 - s.options.baseBuckets), sample]
    return { ...s, recentDelays, baseDelays, bucketStartMillis: nowMillis }
  }
  if (!wrapBefore(sample, s.baseDelays[last]!)) return { ...s, recentDelays }
  const baseDelays = s.baseDelays.map((d, i) => (i === last ? sample : d))
  return { ...s, recentDelays, baseDelays }
}

/** The current queuing delay in microseconds: 0 before any sample. */
export const queuingDelay = (s: Ledbat): number => {
  if (s.recentDelays.length === 0) return 0
  const base = s.baseDelays.reduce(wrapMin)
  const current = s.recentDelays.reduce(wrapMin)
  const delay = (current - base) >>> 0
  return delay > 0x80000000 ? 0 : delay
}

const clampWindow = (s: Ledbat, cwnd: number) => Math.min(s.options.maxWindow, Math.max(s.options.minWindow, cwnd))

export interface Acked {
  readonly bytes: number
  /** The window was full lately (libutp: within a second): only then may it grow. */
  readonly windowLimited: boolean
}

/** Bytes newly acknowledged: the window moves towards the delay target. */
export const onAck = (s: Ledbat, acked: Acked): Ledbat => {
  if (acked.bytes <= 0) return s
  const target = s.options.targetMicros
  const delay = queuingDelay(s)
  const windowFactor = Math.min(acked.bytes, s.cwnd) / Math.max(s.cwnd, acked.bytes)
  const delayFactor = (target - delay) / target
  let gain = s.options.maxIncreasePerRtt * windowFactor * delayFactor
  if (gain > 0 && !acked.windowLimited) gain = 0
  const ledbatWindow = s.cwnd + gain
  if (!s.slowStart) return { ...s, cwnd: clampWindow(s, ledbatWindow) }
  if (delay > target / 2) return { ...s, slowStart: false, cwnd: clampWindow(s, ledbatWindow) }
  const slowStartWindow = acked.windowLimited ? s.cwnd + acked.bytes : s.cwnd
  const cwnd = clampWindow(s, Math.min(s.ssthresh, Math.max(slowStartWindow, ledbatWindow)))
  return { ...s, slowStart: cwnd < s.ssthresh, cwnd }
}

/** A packet was lost (duplicate or selective acks): the window shrinks by `lossFactor` (the caller: once per window of data). */
export const onLoss = (s: Ledbat): Ledbat => {
  const cwnd = clampWindow(s, s.cwnd * s.options.lossFactor)
  return { ...s, slowStart: false, cwnd, ssthresh: cwnd }
}

/**
 * The retransmission timer fired: one packet's window, slow start up to half the window it had,
 * and the timer backs off (until a packet sent once is acked: `onRttSample`).
 */
export const onTimeout = (s: Ledbat): Ledbat => ({
  ...s,
  slowStart: true,
  ssthresh: clampWindow(s, s.cwnd / 2),
  cwnd: s.options.minWindow,
  rtoMillis: Math.min(maxRtoMillis, s.rtoMillis * 2)
})

/** A round trip measured on a packet sent once (Karn's rule is the caller's). */
export const onRttSample = (s: Ledbat, rttMillis: number): Ledbat => {
  const sample = Math.max(0, rttMillis)
  if (s.rttMillis === undefined) {
    const rttVarMillis = sample / 2
    return { ...s, rttMillis: sample, rttVarMillis, rtoMillis: Math.max(minRtoMillis, sample + 4 * rttVarMillis) }
  }
  const rttVarMillis = s.rttVarMillis + (Math.abs(s.rttMillis - sample) - s.rttVarMillis) / 4
  const rtt = s.rttMillis + (sample - s.rttMillis) / 8
  return { ...s, rttMillis: rtt, rttVarMillis, rtoMillis: Math.min(maxRtoMillis, Math.max(minRtoMillis, rtt + 4 * rttVarMillis)) }
}
