/**
 * The choking algorithm (BEP 3, as established clients run it): every round (10 s) the
 * interested peers with the best rates get the regular upload slots, and one more interested peer
 * gets an optimistic unchoke that rotates every third round (30 s), so newcomers get a chance to
 * show their rate. Pure: the caller supplies rates and randomness and applies the decision.
 */

export interface ChokeCandidate {
  readonly peer: string
  readonly interested: boolean
  /** Bytes/s: what they give us while we download, what we give them while we seed. */
  readonly rate: number
}

export interface ChokerState {
  readonly round: number
  readonly optimistic: string | undefined
}

export interface ChokeDecision {
  readonly state: ChokerState
  /** Peers to have unchoked after this round; every other peer is choked. */
  readonly unchoked: ReadonlySet<string>
}

export const initialChokerState: ChokerState = { round: 0, optimistic: undefined }

/** Rounds between optimistic rotations: 3 rounds of 10 s. */
export const optimisticEvery = 3

export const chokeRound = (
  state: ChokerState,
  candidates: ReadonlyArray<ChokeCandidate>,
  slots: number,
  random: () => number
): ChokeDecision => {
  const interested = candidates.filter((c) => c.interested)
  const regular = [...interested].sort((a, b) => b.rate - a.rate).slice(0, slots).map((c) => c.peer)
  const unchoked = new Set(regular)
  const others = interested.filter((c) => !unchoked.has(c.peer))
  const keep = state.optimistic !== undefined && state.round % optimisticEvery !== 0 &&
    others.some((c) => c.peer === state.optimistic)
  const optimistic = keep
    ? state.optimistic
    : others.length === 0
    ? undefined
    : others[Math.floor(random() * others.length)]!.peer
  if (optimistic !== undefined) unchoked.add(optimistic)
  return { state: { round: state.round + 1, optimistic }, unchoked }
}
