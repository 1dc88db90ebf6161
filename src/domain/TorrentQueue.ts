/**
 * A session's queue: which of its torrents may run, given at most so many active downloads and
 * so many active seeds. Running torrents keep their slots (a torrent resumed or added later waits
 * rather than stopping one that runs); free slots go to the waiting ones in queue order. Only
 * when a limit is lowered below what runs are the last in queue order stopped.
 */

export type QueueRole = "download" | "seed"

export interface QueuedTorrent {
  /** Queue order: lower first. */
  readonly position: number
  readonly role: QueueRole
  readonly running: boolean
}

export interface QueueLimits {
  readonly downloads: number
  readonly seeds: number
}

/** The positions of the torrents that should run. */
export const admitted = (torrents: ReadonlyArray<QueuedTorrent>, limits: QueueLimits): ReadonlySet<number> => {
  const ordered = [...torrents].sort((a, b) => a.position - b.position)
  const admit = new Set<number>()
  for (const role of ["download", "seed"] as const) {
    const limit = role === "download" ? limits.downloads : limits.seeds
    const ofRole = ordered.filter((t) => t.role === role)
    const running = ofRole.filter((t) => t.running).slice(0, Math.max(0, limit))
    const waiting = ofRole.filter((t) => !t.running).slice(0, Math.max(0, limit - running.length))
    for (const t of [...running, ...waiting]) admit.add(t.position)
  }
  return admit
}

/** Where `queue-move-*` sends the torrents named. */
export type QueueMove = "top" | "up" | "down" | "bottom"

/**
 * The queue order after moving the `moved` torrents (ids, in queue order `order`): to the top or
 * the bottom keeping their own order, or one place up or down, where a moved torrent never passes
 * another moved one (a block of them moves as one). Ids not in `order` are ignored.
 */
export const moveInQueue = (order: ReadonlyArray<number>, moved: ReadonlySet<number>, move: QueueMove): ReadonlyArray<number> => {
  if (move === "top" || move === "bottom") {
    const chosen = order.filter((id) => moved.has(id))
    const rest = order.filter((id) => !moved.has(id))
    return move === "top" ? [...chosen, ...rest] : [...rest, ...chosen]
  }
  // Down is up in the reversed order.
  const next = move === "up" ? [...order] : [...order].reverse()
  for (let i = 1; i < next.length; i++) {
    if (moved.has(next[i]!) && !moved.has(next[i - 1]!)) [next[i - 1], next[i]] = [next[i]!, next[i - 1]!]
  }
  return move === "up" ? next : next.reverse()
}
