/**
 * How many pieces that could still be started (wanted, missing, not started) sit at each priority
 * tier and availability, so the picker knows the best (tier, availability) any peer could offer
 * without scanning every piece. The picker scans pieces from a random offset and stops at the
 * first one that reaches this best: the answer a full scan would give, in a fraction of the steps
 * when most peers have most pieces (a full scan per started piece is quadratic in the piece count).
 */

/** Availability is a piece's count of peers that have it, below 2^16 (the picker's Uint16Array). */
const availabilityRange = 0x10000

/** Higher is better: a higher tier first, then a lower availability. */
export const candidateKey = (tier: number, availability: number): number =>
  tier * availabilityRange + (availabilityRange - 1 - availability)

export const tierOfKey = (key: number): number => Math.floor(key / availabilityRange)

export class PieceCandidates {
  private readonly counts = new Map<number, number>()

  add(key: number): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }

  remove(key: number): void {
    const count = this.counts.get(key)
    if (count === undefined) return
    if (count <= 1) this.counts.delete(key)
    else this.counts.set(key, count - 1)
  }

  clear(): void {
    this.counts.clear()
  }

  /** The best key among the candidates (keys are few: tiers times distinct availabilities), or undefined when there are none. */
  best(): number | undefined {
    let best: number | undefined
    for (const key of this.counts.keys()) if (best === undefined || key > best) best = key
    return best
  }
}
