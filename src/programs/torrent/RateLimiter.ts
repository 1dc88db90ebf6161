/**
 * Bandwidth limits as values torrents share: a `RateLimiter` is one token bucket whose rate can be
 * changed (or lifted) while torrents run; a torrent applies every limiter it is given (its own and
 * a session's global one, say), so its bytes count against each and wait for the slowest grant.
 *
 * Downloads are limited where bytes come in: the bytes of a socket read are charged when they are
 * handled, and the peer's socket is not read again until they are granted (TCP flow control then
 * holds the sender back). That counts exactly what arrived, from any peer and any transport, at
 * the cost of a subtraction per read. Pacing our block requests instead would be cheaper still,
 * but inaccurate: a pipeline of requests is answered in bursts whose timing is the peer's, and
 * data a peer sends unasked would not be limited at all. Uploads are limited by delaying a batch
 * of piece messages until its bytes are granted, before it is read from disk. Grants are first
 * come, first served, so under a limit peers take turns by read (or batch): a slow peer waits at
 * most one turn of the others, never for a fast one to be done.
 */
import { Effect } from "effect"
import { TokenBucket } from "../../domain/TokenBucket.js"
import type { Message } from "../../domain/Wire.js"

/** The bucket holds a quarter of a second of the rate (at least 64 KiB): the burst after a pause. */
const burstSeconds = 0.25
const minBurst = 64 * 1024
/** A wait is slept in slices of at most this, so that a rate changed meanwhile applies soon. */
const sliceMillis = 100

const burstFor = (bytesPerSecond: number) => Math.max(minBurst, bytesPerSecond * burstSeconds)

/** A settable rate limit, in bytes per second (undefined: none); share it between torrents to share the limit. */
export class RateLimiter {
  private bucket: TokenBucket | undefined = undefined
  private limit: number | undefined = undefined

  constructor(private readonly now: () => number, bytesPerSecond?: number) {
    this.set(bytesPerSecond)
  }

  get bytesPerSecond(): number | undefined {
    return this.limit
  }

  /** Whether bytes are counted at all: false costs the data path nothing. */
  get limited(): boolean {
    return this.limit !== undefined
  }

  /** A new rate from now on, in bytes per second; undefined or 0 lifts the limit. Takes effect within a tenth of a second. */
  set(bytesPerSecond: number | undefined): void {
    const now = this.now()
    if (bytesPerSecond === undefined || bytesPerSecond <= 0) this.limit = undefined
    else {
      this.limit = bytesPerSecond
      if (this.bucket === undefined) this.bucket = new TokenBucket(bytesPerSecond, burstFor(bytesPerSecond), now)
      else this.bucket.setRate(bytesPerSecond, burstFor(bytesPerSecond), now)
    }
  }

  /** Counts `bytes`; gives the ticket to wait for, or undefined when unlimited. */
  take(bytes: number): number | undefined {
    return this.limit === undefined ? undefined : this.bucket!.take(bytes, this.now())
  }

  /** Milliseconds until the take with this ticket is granted (0 once it is, or when the limit was lifted). */
  waitFor(ticket: number): number {
    return this.limit === undefined ? 0 : this.bucket!.waitFor(ticket, this.now())
  }
}

/** A rate limiter on Effect's clock (so TestClock drives it in tests). */
export const makeRateLimiter = (bytesPerSecond?: number): Effect.Effect<RateLimiter> =>
  Effect.map(Effect.clock, (clock) => new RateLimiter(() => clock.unsafeCurrentTimeMillis(), bytesPerSecond))

/** A download and an upload limit that go together: a torrent's own, or a session's for all its torrents. */
export interface RateLimits {
  readonly download: RateLimiter
  readonly upload: RateLimiter
}

export const makeRateLimits = (rates: { readonly download?: number | undefined; readonly upload?: number | undefined } = {}): Effect.Effect<RateLimits> =>
  Effect.all({ download: makeRateLimiter(rates.download), upload: makeRateLimiter(rates.upload) })

/** Sleeps (in slices) until every ticket is granted by its limiter. */
const awaitGrants = (limiters: ReadonlyArray<RateLimiter>, tickets: ReadonlyArray<number | undefined>): Effect.Effect<void> =>
  Effect.suspend(() => {
    let wait = 0
    for (let i = 0; i < limiters.length; i++) {
      const ticket = tickets[i]
      if (ticket !== undefined) wait = Math.max(wait, limiters[i]!.waitFor(ticket))
    }
    return wait <= 0 ? Effect.void : Effect.zipRight(Effect.sleep(Math.ceil(Math.min(wait, sliceMillis))), awaitGrants(limiters, tickets))
  })

/** Whether any of the limiters limits: when none does, the data path counts nothing. */
export const anyLimited = (limiters: ReadonlyArray<RateLimiter>): boolean => {
  for (const limiter of limiters) if (limiter.limited) return true
  return false
}

/** The lowest rate the limiters set, in bytes per second; undefined when none limits. */
export const smallestRate = (limiters: ReadonlyArray<RateLimiter>): number | undefined => {
  let rate: number | undefined
  for (const limiter of limiters) {
    const limit = limiter.bytesPerSecond
    if (limit !== undefined && (rate === undefined || limit < rate)) rate = limit
  }
  return rate
}

/**
 * Charges `bytes` to every limiter that limits; gives the wait for their grants, or undefined when
 * none has to be waited for.
 */
export const charge = (limiters: ReadonlyArray<RateLimiter>, bytes: number): Effect.Effect<void> | undefined => {
  let tickets: Array<number | undefined> | undefined
  for (let i = 0; i < limiters.length; i++) {
    const limiter = limiters[i]!
    const ticket = limiter.take(bytes)
    if (ticket === undefined || limiter.waitFor(ticket) === 0) continue
    ;(tickets ??= new Array<number | undefined>(limiters.length))[i] = ticket
  }
  return tickets === undefined ? undefined : awaitGrants(limiters, tickets)
}

/**
 * Charges a read's payload (blocks and extension messages, whether we asked for them or not: a
 * peer cannot get past the limit by flooding) to the limiters. The few bytes of framing and
 * control messages are not counted.
 */
export const chargeReceived = (limiters: ReadonlyArray<RateLimiter>, messages: ReadonlyArray<Message>): Effect.Effect<void> | undefined => {
  let bytes = 0
  for (const m of messages) {
    if (m._tag === "Piece") bytes += m.block.length
    else if (m._tag === "Extended") bytes += m.payload.length
  }
  return bytes === 0 ? undefined : charge(limiters, bytes)
}
