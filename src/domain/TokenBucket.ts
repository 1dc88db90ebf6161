/**
 * A token bucket for a byte rate, in reservation form: a take always succeeds at once and gives a
 * ticket; the take is granted when the bucket has supplied tokens up to the ticket (`waitFor` says
 * how long that is). Tokens flow in at `rate` per second and never pile up beyond `burst` ahead of
 * what was taken. Takes are granted in the order they were made, so a taker is never held up by a
 * later one (no starvation, whatever their sizes), and over any window of t seconds the takes
 * granted in it (each at most `burst`) add up to at most rate·t + burst.
 *
 * Reservation suits bytes that are already here when they are counted (a socket read): the reader
 * takes them, then waits for the grant before reading on. Time is given in milliseconds by the
 * caller; the bucket does no I/O.
 */
export class TokenBucket {
  /** Tokens ever supplied (the initial burst included) and ever taken; the balance is the difference. */
  private supplied: number
  private taken = 0
  private at: number

  constructor(
    /** Tokens (bytes) per second; positive and finite. */
    private bytesPerSecond: number,
    /** The most tokens that pile up while nobody takes any. */
    private capacity: number,
    now: number
  ) {
    this.supplied = capacity
    this.at = now
  }

  get rate(): number {
    return this.bytesPerSecond
  }

  get burst(): number {
    return this.capacity
  }

  /** Tokens available now; negative while takes wait for their grant. */
  balance(now: number): number {
    this.refill(now)
    return this.supplied - this.taken
  }

  /** Takes `n` tokens; the ticket tells `waitFor` when they are granted. */
  take(n: number, now: number): number {
    this.refill(now)
    this.taken += n
    return this.taken
  }

  /** Milliseconds until the take with this ticket is granted; 0 once it is. */
  waitFor(ticket: number, now: number): number {
    this.refill(now)
    return ticket <= this.supplied ? 0 : ((ticket - this.supplied) / this.bytesPerSecond) * 1000
  }

  /** The wait a take of `n` tokens would have now, without taking them. */
  wouldWait(n: number, now: number): number {
    return this.waitFor(this.taken + n, now)
  }

  /** A new rate and burst from now on; what was supplied until now, at the old rate, stays. */
  setRate(bytesPerSecond: number, burst: number, now: number): void {
    this.refill(now)
    this.bytesPerSecond = bytesPerSecond
    this.capacity = burst
    this.supplied = Math.min(this.supplied, this.taken + burst)
  }

  private refill(now: number) {
    if (now <= this.at) return
    this.supplied = Math.min(this.supplied + (this.bytesPerSecond * (now - this.at)) / 1000, this.taken + this.capacity)
    this.at = now
  }
}
