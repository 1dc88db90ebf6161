/**
 * Which blocks to ask which peer for: the bookkeeping core of the download engine, pure and
 * synchronous so that the engine's per-chunk work is one plain function call.
 *
 * - Pieces are picked rarest first (random tie-break) or in sequential order; a started piece
 *   is finished before a new one is started, so few piece buffers live at once.
 * - Every outstanding request is recorded per peer with the time it was sent, so a choke, a
 *   dropped peer or a timeout hands the blocks back to the pool.
 * - Endgame: once nothing is left unrequested, a peer may request blocks that others have
 *   outstanding; the first copy to arrive wins and the others are cancelled.
 * - A piece is handed out for verification once all its blocks are in; only `verified` marks it
 *   done. A failed piece starts over and its contributors are reported for strikes.
 */
import { Bitfield } from "./Bitfield.js"
import { blockSize } from "./Wire.js"

export { blockSize }

export interface BlockRequest {
  readonly index: number
  readonly begin: number
  readonly length: number
}

/** A peer's request that another peer's copy made redundant. */
export interface Cancel extends BlockRequest {
  readonly peer: string
}

export interface CompletedPiece {
  readonly index: number
  readonly data: Uint8Array
  /** Peers that sent at least one block of this piece. */
  readonly contributors: ReadonlySet<string>
}

export interface BlockOutcome {
  /** False for blocks we did not want: not requested from this peer, bad offset or length, already received. */
  readonly accepted: boolean
  readonly completed: CompletedPiece | undefined
  readonly cancels: ReadonlyArray<Cancel>
}

/** Spare piece buffers kept for reuse. */
const maxSpareBuffers = 64

const FREE = 0
const REQUESTED = 1
const RECEIVED = 2

interface ActivePiece {
  readonly index: number
  readonly length: number
  readonly blockCount: number
  readonly data: Uint8Array
  readonly state: Uint8Array
  /** Blocks still FREE: lets a full piece be skipped without scanning its states. */
  free: number
  received: number
  readonly contributors: Set<string>
}

interface PeerLedger {
  /** Outstanding requests: block id -> time sent (ms). */
  readonly outstanding: Map<number, number>
  has: Bitfield
}

export interface PickerOptions {
  readonly pieceCount: number
  readonly pieceLength: number
  readonly totalLength: number
  /** Pieces to fetch; default all. */
  readonly wanted?: Bitfield
  /** Pieces already verified on disk (resume). */
  readonly have?: Bitfield
  readonly sequential?: boolean
  /** Random source in [0, 1) for the rarest-first tie-break. */
  readonly random?: () => number
}

export class PiecePicker {
  readonly pieceCount: number
  readonly have: Bitfield
  readonly wanted: Bitfield
  private readonly pieceLength: number
  private readonly totalLength: number
  private readonly blocksPerPiece: number
  private readonly sequential: boolean
  private readonly random: () => number
  private readonly availability: Uint16Array
  private readonly active = new Map<number, ActivePiece>()
  /** Pieces whose blocks are all in, waiting for the hash check. */
  private readonly verifying = new Set<number>()
  private readonly peers = new Map<string, PeerLedger>()
  /** Who has each outstanding block requested: block id -> peers. */
  private readonly requesters = new Map<number, Array<string>>()
  private remaining: number
  /** Full-size piece buffers handed back after their write, reused for new pieces (less GC churn). */
  private readonly spare: Array<Uint8Array> = []

  constructor(options: PickerOptions) {
    this.pieceCount = options.pieceCount
    this.pieceLength = options.pieceLength
    this.totalLength = options.totalLength
    this.blocksPerPiece = Math.ceil(options.pieceLength / blockSize)
    this.sequential = options.sequential ?? false
    this.random = options.random ?? Math.random
    this.wanted = options.wanted?.copy() ?? Bitfield.full(options.pieceCount)
    this.have = options.have?.copy() ?? Bitfield.empty(options.pieceCount)
    this.availability = new Uint16Array(options.pieceCount)
    let remaining = 0
    for (let i = 0; i < this.pieceCount; i++) if (this.wanted.has(i) && !this.have.has(i)) remaining++
    this.remaining = remaining
  }

  /** Wanted pieces not yet verified. */
  get piecesLeft(): number {
    return this.remaining
  }

  get isComplete(): boolean {
    return this.remaining === 0
  }

  pieceSize(index: number): number {
    return index === this.pieceCount - 1 ? this.totalLength - index * this.pieceLength : this.pieceLength
  }

  /** Bytes of wanted pieces not yet verified. */
  get bytesLeft(): number {
    let left = 0
    for (let i = 0; i < this.pieceCount; i++) if (this.wanted.has(i) && !this.have.has(i)) left += this.pieceSize(i)
    return left
  }

  /** Bytes of all wanted pieces. */
  get bytesWanted(): number {
    let total = 0
    for (let i = 0; i < this.pieceCount; i++) if (this.wanted.has(i)) total += this.pieceSize(i)
    return total
  }

  // --- peers ----------------------------------------------------------------------------------

  addPeer(peer: string): void {
    this.peers.set(peer, { outstanding: new Map(), has: Bitfield.empty(this.pieceCount) })
  }

  removePeer(peer: string): void {
    const ledger = this.peers.get(peer)
    if (ledger === undefined) return
    this.release(peer)
    for (let i = 0; i < this.pieceCount; i++) if (ledger.has.has(i)) this.availability[i]!--
    this.peers.delete(peer)
  }

  /** Records a peer's bitfield (replacing what we knew). */
  setBitfield(peer: string, has: Bitfield): void {
    const ledger = this.peers.get(peer)
    if (ledger === undefined) return
    for (let i = 0; i < this.pieceCount; i++) {
      const before = ledger.has.has(i)
      const after = has.has(i)
      if (before !== after) this.availability[i]! += after ? 1 : -1
    }
    ledger.has = has.copy()
  }

  /** Records a `have`; false when the index is out of range. */
  addHave(peer: string, index: number): boolean {
    const ledger = this.peers.get(peer)
    if (ledger === undefined || index < 0 || index >= this.pieceCount) return false
    if (ledger.has.add(index)) this.availability[index]!++
    return true
  }

  peerHas(peer: string): Bitfield | undefined {
    return this.peers.get(peer)?.has
  }

  /** Whether the peer has a piece we still want. */
  isInteresting(peer: string): boolean {
    const has = this.peers.get(peer)?.has
    if (has === undefined) return false
    // A byte at a time: spare bits past the last piece are zero in every bitfield.
    const theirs = has.bytes
    const wanted = this.wanted.bytes
    const ours = this.have.bytes
    for (let k = 0; k < theirs.length; k++) if ((theirs[k]! & wanted[k]! & ~ours[k]!) !== 0) return true
    return false
  }

  outstandingCount(peer: string): number {
    return this.peers.get(peer)?.outstanding.size ?? 0
  }

  /** Hands back every request the peer has outstanding (choke, drop). */
  release(peer: string): number {
    const ledger = this.peers.get(peer)
    if (ledger === undefined) return 0
    const count = ledger.outstanding.size
    for (const id of ledger.outstanding.keys()) this.unrequest(peer, id)
    ledger.outstanding.clear()
    return count
  }

  /** Hands back the peer's requests sent before `sentBefore` (ms); returns how many. */
  expire(peer: string, sentBefore: number): number {
    const ledger = this.peers.get(peer)
    if (ledger === undefined) return 0
    let count = 0
    // Requests are recorded in the order they are sent (an id is never re-recorded while
    // outstanding), so the scan stops at the first one young enough.
    for (const [id, sentAt] of ledger.outstanding) {
      if (sentAt >= sentBefore) break
      this.unrequest(peer, id)
      ledger.outstanding.delete(id)
      count++
    }
    return count
  }

  // --- picking --------------------------------------------------------------------------------

  /** Up to `max` new requests for this peer, recorded as outstanding at `now`. */
  pick(peer: string, max: number, now: number): Array<BlockRequest> {
    const ledger = this.peers.get(peer)
    const out: Array<BlockRequest> = []
    if (ledger === undefined || max <= 0) return out
    // 1. Blocks of started pieces first: finish what is begun.
    for (const piece of this.active.values()) {
      if (out.length >= max) return out
      if (piece.free > 0 && ledger.has.has(piece.index)) this.takeFree(peer, ledger, piece, out, max, now)
    }
    // 2. New pieces, rarest first (or in order), while any wanted piece is not yet started.
    while (out.length < max && this.remaining > this.active.size + this.verifying.size) {
      const index = this.choosePiece(ledger.has)
      if (index === undefined) break
      this.takeFree(peer, ledger, this.start(index), out, max, now)
    }
    // 3. Endgame: nothing unrequested is left that this peer has; duplicate others' requests.
    if (out.length < max) this.takeEndgame(peer, ledger, out, max, now)
    return out
  }

  private takeFree(peer: string, ledger: PeerLedger, piece: ActivePiece, out: Array<BlockRequest>, max: number, now: number) {
    for (let b = 0; b < piece.blockCount && out.length < max && piece.free > 0; b++) {
      if (piece.state[b] !== FREE) continue
      piece.state[b] = REQUESTED
      piece.free--
      this.request(peer, ledger, piece, b, out, now)
    }
  }

  private takeEndgame(peer: string, ledger: PeerLedger, out: Array<BlockRequest>, max: number, now: number) {
    for (const piece of this.active.values()) {
      if (out.length >= max) return
      if (!ledger.has.has(piece.index) || piece.received === piece.blockCount) continue
      for (let b = 0; b < piece.blockCount && out.length < max; b++) {
        if (piece.state[b] !== REQUESTED) continue
        const id = piece.index * this.blocksPerPiece + b
        if (ledger.outstanding.has(id)) continue
        this.request(peer, ledger, piece, b, out, now)
      }
    }
  }

  private request(peer: string, ledger: PeerLedger, piece: ActivePiece, b: number, out: Array<BlockRequest>, now: number) {
    const id = piece.index * this.blocksPerPiece + b
    ledger.outstanding.set(id, now)
    const who = this.requesters.get(id)
    if (who === undefined) this.requesters.set(id, [peer])
    else who.push(peer)
    const begin = b * blockSize
    out.push({ index: piece.index, begin, length: Math.min(blockSize, piece.length - begin) })
  }

  /** Removes one peer's claim on a block; the block is free again when nobody else asked for it. */
  private unrequest(peer: string, id: number) {
    const who = this.requesters.get(id)
    if (who === undefined) return
    const at = who.indexOf(peer)
    if (at >= 0) who.splice(at, 1)
    if (who.length > 0) return
    this.requesters.delete(id)
    const piece = this.active.get(Math.floor(id / this.blocksPerPiece))
    const b = id % this.blocksPerPiece
    if (piece !== undefined && piece.state[b] === REQUESTED) {
      piece.state[b] = FREE
      piece.free++
    }
  }

  private choosePiece(has: Bitfield): number | undefined {
    const n = this.pieceCount
    if (this.sequential) {
      for (let i = 0; i < n; i++) if (this.startable(i, has)) return i
      return undefined
    }
    // Rarest first; scanning from a random offset breaks ties at random.
    const offset = Math.floor(this.random() * n)
    let best: number | undefined
    let bestAvailability = Infinity
    for (let k = 0; k < n; k++) {
      const i = (offset + k) % n
      if (this.availability[i]! < bestAvailability && this.startable(i, has)) {
        best = i
        bestAvailability = this.availability[i]!
      }
    }
    return best
  }

  private startable(i: number, has: Bitfield): boolean {
    return has.has(i) && this.wanted.has(i) && !this.have.has(i) && !this.active.has(i) && !this.verifying.has(i)
  }

  private start(index: number): ActivePiece {
    const length = this.pieceSize(index)
    const blockCount = Math.ceil(length / blockSize)
    const piece: ActivePiece = {
      index,
      length,
      blockCount,
      data: length === this.pieceLength ? this.spare.pop() ?? new Uint8Array(length) : new Uint8Array(length),
      state: new Uint8Array(blockCount),
      free: blockCount,
      received: 0,
      contributors: new Set()
    }
    this.active.set(index, piece)
    return piece
  }

  // --- receiving ------------------------------------------------------------------------------

  /** Takes a block a peer sent; a piece whose blocks are all in is handed out for verification. */
  receive(peer: string, index: number, begin: number, block: Uint8Array): BlockOutcome {
    const piece = this.active.get(index)
    const b = begin / blockSize
    if (
      piece === undefined || !Number.isInteger(b) || b >= piece.blockCount ||
      block.length !== Math.min(blockSize, piece.length - begin) || piece.state[b] === RECEIVED
    ) {
      return { accepted: false, completed: undefined, cancels: [] }
    }
    const id = index * this.blocksPerPiece + b
    // Only blocks this peer was asked for and still owes: a block we never requested from it,
    // or one handed to others after a choke or a timeout, is not taken from it.
    if (this.peers.get(peer)?.outstanding.has(id) !== true) return { accepted: false, completed: undefined, cancels: [] }
    const cancels: Array<Cancel> = []
    for (const other of this.requesters.get(id) ?? []) {
      this.peers.get(other)?.outstanding.delete(id)
      if (other !== peer) cancels.push({ peer: other, index, begin, length: block.length })
    }
    this.requesters.delete(id)
    piece.state[b] = RECEIVED
    piece.received++
    piece.data.set(block, begin)
    piece.contributors.add(peer)
    if (piece.received < piece.blockCount) return { accepted: true, completed: undefined, cancels }
    this.active.delete(index)
    this.verifying.add(index)
    return { accepted: true, completed: { index, data: piece.data, contributors: piece.contributors }, cancels }
  }

  /** The piece passed its hash check and is on disk. */
  verified(index: number): void {
    this.verifying.delete(index)
    if (this.have.add(index) && this.wanted.has(index)) this.remaining--
  }

  /** The piece failed its hash check: it starts over. */
  failed(index: number): void {
    this.verifying.delete(index)
  }

  /** Gives back a completed piece's buffer once nothing reads it any more. */
  recycle(data: Uint8Array): void {
    if (data.length === this.pieceLength && this.spare.length < maxSpareBuffers) this.spare.push(data)
  }
}
