/**
 * Streaming priority: each open stream of a torrent's file holds a window of pieces, from the
 * piece under its read head to a read-ahead bound. The picker fetches the union of the windows
 * first, in deadline order: every window's head piece, then every window's next piece, and so on
 * (a piece is due when its stream's head reaches it, so its distance from the head is its
 * deadline). Ties between windows go to the one opened first. Streams open, move and close their
 * windows as they start, read and end; the order follows.
 */

/** Pieces `first..last`, both included. */
export interface PieceWindow {
  readonly first: number
  readonly last: number
}

/**
 * The window of a read at payload offset `at` that ends at `end` (inclusive): the piece under the
 * head, then what lies within `aheadBytes` of it, never past `end` (a range is not read beyond).
 */
export const readAheadWindow = (pieceLength: number, at: number, end: number, aheadBytes: number): PieceWindow => ({
  first: Math.floor(at / pieceLength),
  last: Math.floor(Math.max(at, Math.min(end, at + aheadBytes - 1)) / pieceLength)
})

/** The union of the windows in deadline order, each piece once (at its earliest deadline). */
export const deadlineOrder = (windows: ReadonlyArray<PieceWindow>): Array<number> => {
  const order: Array<number> = []
  const seen = new Set<number>()
  const longest = windows.reduce((n, w) => Math.max(n, w.last - w.first + 1), 0)
  for (let distance = 0; distance < longest; distance++) {
    for (const w of windows) {
      const piece = w.first + distance
      if (piece > w.last || seen.has(piece)) continue
      seen.add(piece)
      order.push(piece)
    }
  }
  return order
}

/** The windows of a torrent's open streams, by registration id. */
export class StreamWindows {
  private readonly windows = new Map<number, PieceWindow>()
  private nextId = 0
  private cached: ReadonlyArray<number> | undefined

  /** Registers a stream's window; gives the id to move or close it by. */
  open(window: PieceWindow): number {
    const id = this.nextId++
    this.windows.set(id, window)
    this.cached = undefined
    return id
  }

  /** The stream read on or seeked: its window moves (a closed id is ignored). */
  move(id: number, window: PieceWindow): void {
    if (!this.windows.has(id)) return
    this.windows.set(id, window)
    this.cached = undefined
  }

  close(id: number): void {
    if (this.windows.delete(id)) this.cached = undefined
  }

  get size(): number {
    return this.windows.size
  }

  /** The pieces to fetch first, in deadline order (Map order is registration order: ties go to older streams). */
  get order(): ReadonlyArray<number> {
    this.cached ??= deadlineOrder([...this.windows.values()])
    return this.cached
  }
}
