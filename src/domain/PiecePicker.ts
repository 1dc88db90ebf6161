/**
 * Which blocks to ask which peer for: the bookkeeping core of the download engine, pure and
 * synchronous so that the engine's per-chunk work is one plain function call.
 *
 * - Pieces are picked by priority tier (file priorities), then rarest first (random tie-break)
 *   or in sequential order; a started piece is finished before a new one is started, so few
 *   piece buffers live at once. What is wanted, and at which tier, can change as it runs.
 * - Every outstanding request is recorded per peer with the time it was sent, so a choke, a
 *   dropped peer or a timeout hands the blocks back to the pool.
 * - Endgame: once nothing is left unrequested, a peer may request blocks that others have
 *   outstanding; the first copy to arrive wins and the others are cancelled.
 * - A piece is handed out for verification once all its blocks are in; only `verified` marks it
 *   done. A failed piece starts over on parole: it is fetched from one peer alone (its owner),
 *   so a second failure has a single suspect, until it verifies.
 * - BEP 6: a Reject Request hands back exactly one block; `pick` can be limited to a peer's
 *   allowed-fast pieces while it chokes us; a suggested piece is started first for that peer.
 * - Deadlines (streaming): wanted pieces listed by `setDeadlines` are fetched before anything
 *   else, in that order, above tiers, rarest first and the finishing of other started pieces;
 *   `releaseExcept` hands back a peer's requests for other pieces, to cancel when a stream seeks.
 */
import { Bitfield } from "./Bitfield.js"
import { candidateKey, PieceCandidates, tierOfKey } from "./PieceCandidates.js"
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
  /** Per block index, the peer whose copy was accepted. */
  readonly senders: ReadonlyArray<string>
}

export interface BlockOutcome {
  /** False for blocks we did not want: not requested from this peer, bad offset or length, already received. */
  readonly accepted: boolean
  readonly completed: CompletedPiece | undefined
  readonly cancels: ReadonlyArray<Cancel>
}

/** Spare piece buffers kept for reuse. */
const maxSpareBuffers = 64
/** Suggested pieces remembered per peer (the most recent ones). */
const maxSuggestions = 4

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
  readonly senders: Array<string>
  /** On parole, the one peer allowed to fetch it (set by the first block it takes). */
  owner: string | undefined
  readonly parole: boolean
}

interface PeerLedger {
  /** Outstanding requests: block id -> time sent (ms). */
  readonly outstanding: Map<number, number>
  has: Bitfield
  /** Pieces this peer suggested (BEP 6), oldest first. */
  readonly suggested: Array<number>
}

export interface PickerOptions {
  readonly pieceCount: number
  readonly pieceLength: number
  readonly totalLength: number
  /** Pieces to fetch; default all. */
  readonly wanted?: Bitfield
  /** Pieces already verified on disk (resume). */
  readonly have?: Bitfield
  /** Per piece, its priority tier: higher tiers are started first (default: all alike). */
  readonly tiers?: Uint8Array
  readonly sequential?: boolean
  /** Random source in [0, 1) for the rarest-first tie-break. */
  readonly random?: () => number
}

export class PiecePicker {
  readonly pieceCount: number
  readonly have: Bitfield
  readonly wanted: Bitfield
  private tiers: Uint8Array
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
  /** Failed pieces, fetched from one peer alone until they verify. */
  private readonly parole = new Set<number>()
  private remaining = 0
  private remainingBytes = 0
  private wantedBytes = 0
  /** Wanted pieces among the started ones (active or verifying). */
  private startedWanted = 0
  /** Full-size piece buffers handed back after their write, reused for new pieces (less GC churn). */
  private readonly spare: Array<Uint8Array> = []
  /** Pieces due first, most urgent first (streams' read-ahead windows). */
  private deadlines: ReadonlyArray<number> = []
  /** The (tier, availability) of every piece that could be started: where a scan may stop. */
  private readonly candidates = new PieceCandidates()

  constructor(options: PickerOptions) {
    this.pieceCount = options.pieceCount
    this.pieceLength = options.pieceLength
    this.totalLength = options.totalLength
    this.blocksPerPiece = Math.ceil(options.pieceLength / blockSize)
    this.sequential = options.sequential ?? false
    this.random = options.random ?? Math.random
    this.wanted = Bitfield.empty(options.pieceCount)
    this.tiers = new Uint8Array(options.pieceCount)
    this.have = options.have?.copy() ?? Bitfield.empty(options.pieceCount)
    this.availability = new Uint16Array(options.pieceCount)
    this.setWanted(options.wanted ?? Bitfield.full(options.pieceCount), options.tiers)
  }

  /**
   * Changes what to fetch and at which tiers (file priorities changed). Started pieces that are no
   * longer wanted are still finished; verified ones are kept.
   */
  setWanted(wanted: Bitfield, tiers?: Uint8Array): void {
    this.wanted.bytes.set(wanted.bytes)
    this.tiers = tiers?.slice() ?? new Uint8Array(this.pieceCount).fill(1)
    let remaining = 0
    let remainingBytes = 0
    let wantedBytes = 0
    for (let i = 0; i < this.pieceCount; i++) {
      if (!this.wanted.has(i)) continue
      wantedBytes += this.pieceSize(i)
      if (this.have.has(i)) continue
      remaining++
      remainingBytes += this.pieceSize(i)
    }
    this.remaining = remaining
    this.remainingBytes = remainingBytes
    this.wantedBytes = wantedBytes
    this.startedWanted = 0
    for (const i of this.active.keys()) if (this.wanted.has(i)) this.startedWanted++
    for (const i of this.verifying) if (this.wanted.has(i)) this.startedWanted++
    this.candidates.clear()
    for (let i = 0; i < this.pieceCount; i++) this.count(i)
  }

  /**
   * The pieces to fetch before any other, most urgent first (replacing the last list). Only wanted
   * pieces are fetched: a deadline does not change what is wanted, nor the counts of what is left.
   */
  setDeadlines(order: ReadonlyArray<number>): void {
    this.deadlines = order.filter((i) => Number.isInteger(i) && i >= 0 && i < this.pieceCount)
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
    return this.remainingBytes
  }

  /** Bytes of all wanted pieces. */
  get bytesWanted(): number {
    return this.wantedBytes
  }

  /** Whether the piece failed its hash check and has not verified since. */
  isOnParole(index: number): boolean {
    return this.parole.has(index)
  }

  // --- peers ----------------------------------------------------------------------------------

  addPeer(peer: string): void {
    this.peers.set(peer, { outstanding: new Map(), has: Bitfield.empty(this.pieceCount), suggested: [] })
  }

  removePeer(peer: string): void {
    const ledger = this.peers.get(peer)
    if (ledger === undefined) return
    this.release(peer)
    for (let i = 0; i < this.pieceCount; i++) if (ledger.has.has(i)) this.changeAvailability(i, -1)
    this.peers.delete(peer)
  }

  /** Records a peer's bitfield (replacing what we knew). */
  setBitfield(peer: string, has: Bitfield): void {
    const ledger = this.peers.get(peer)
    if (ledger === undefined) return
    for (let i = 0; i < this.pieceCount; i++) {
      const before = ledger.has.has(i)
      const after = has.has(i)
      if (before !== after) this.changeAvailability(i, after ? 1 : -1)
    }
    ledger.has = has.copy()
  }

  /** Records a `have`; false when the index is out of range. */
  addHave(peer: string, index: number): boolean {
    const ledger = this.peers.get(peer)
    if (ledger === undefined || index < 0 || index >= this.pieceCount) return false
    if (ledger.has.add(index)) this.changeAvailability(index, 1)
    return true
  }

  private changeAvailability(index: number, by: number) {
    this.uncount(index)
    this.availability[index]! += by
    this.count(index)
  }

  /** Whether the piece could be started by a peer that has it. */
  private isCandidate(i: number): boolean {
    return this.wanted.has(i) && !this.have.has(i) && !this.active.has(i) && !this.verifying.has(i)
  }

  /** Counts the piece among the candidates if it is one; call after a change that may make it one. */
  private count(i: number) {
    if (this.isCandidate(i)) this.candidates.add(candidateKey(this.tiers[i]!, this.availability[i]!))
  }

  /** Takes the piece out of the candidates if it is one; call before a change that may end that. */
  private uncount(i: number) {
    if (this.isCandidate(i)) this.candidates.remove(candidateKey(this.tiers[i]!, this.availability[i]!))
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

  /**
   * Hands back every request the peer has outstanding (choke, drop); a parole piece it owned
   * goes to the next peer that picks it.
   */
  release(peer: string): number {
    const ledger = this.peers.get(peer)
    if (ledger === undefined) return 0
    const count = ledger.outstanding.size
    for (const id of ledger.outstanding.keys()) this.unrequest(peer, id)
    ledger.outstanding.clear()
    for (const piece of this.active.values()) if (piece.owner === peer) piece.owner = undefined
    return count
  }

  /**
   * Hands back the peer's outstanding requests for pieces not in `keep`, and gives them (to cancel
   * with the peer): a stream that opens or seeks must not wait behind requests the peer has queued.
   */
  releaseExcept(peer: string, keep: ReadonlySet<number>): Array<BlockRequest> {
    const ledger = this.peers.get(peer)
    const released: Array<BlockRequest> = []
    if (ledger === undefined) return released
    for (const id of ledger.outstanding.keys()) {
      const index = Math.floor(id / this.blocksPerPiece)
      if (keep.has(index)) continue
      const begin = (id % this.blocksPerPiece) * blockSize
      ledger.outstanding.delete(id)
      this.unrequest(peer, id)
      this.disownIfIdle(peer, ledger, id)
      released.push({ index, begin, length: Math.min(blockSize, this.pieceSize(index) - begin) })
    }
    return released
  }

  /**
   * BEP 6 Reject Request: hands back that one outstanding block of that peer. False when the
   * peer does not owe that block (never asked, already in, bad offset or length).
   * A peer that chokes with the fast extension rejects what it will not serve: calling this per
   * reject instead of `release` keeps its allowed-fast requests outstanding.
   */
  reject(peer: string, index: number, begin: number, length: number): boolean {
    const ledger = this.peers.get(peer)
    const piece = this.active.get(index)
    const b = begin / blockSize
    if (ledger === undefined || piece === undefined || !Number.isInteger(b) || b < 0 || b >= piece.blockCount) return false
    if (length !== Math.min(blockSize, piece.length - begin)) return false
    const id = index * this.blocksPerPiece + b
    if (!ledger.outstanding.delete(id)) return false
    this.unrequest(peer, id)
    this.disownIfIdle(peer, ledger, id)
    return true
  }

  /**
   * After a block of a parole piece came back unserved (rejected, timed out), the piece goes to
   * the next peer that picks it once its owner has none of its blocks outstanding: never two owners.
   */
  private disownIfIdle(peer: string, ledger: PeerLedger, id: number) {
    const piece = this.active.get(Math.floor(id / this.blocksPerPiece))
    if (piece === undefined || piece.owner !== peer) return
    const first = piece.index * this.blocksPerPiece
    for (let b = 0; b < piece.blockCount; b++) if (ledger.outstanding.has(first + b)) return
    piece.owner = undefined
  }

  /** BEP 6 Suggest Piece: start this piece first the next time a new piece is started for the peer. */
  suggest(peer: string, index: number): void {
    const suggested = this.peers.get(peer)?.suggested
    if (suggested === undefined || index < 0 || index >= this.pieceCount || suggested.includes(index)) return
    if (suggested.push(index) > maxSuggestions) suggested.shift()
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
      this.disownIfIdle(peer, ledger, id)
      count++
    }
    return count
  }

  // --- picking --------------------------------------------------------------------------------

  /**
   * Up to `max` new requests for this peer, recorded as outstanding at `now`. With `only`, just
   * blocks of those pieces (BEP 6: a choking peer's allowed-fast set).
   */
  pick(peer: string, max: number, now: number, only?: ReadonlySet<number>): Array<BlockRequest> {
    const ledger = this.peers.get(peer)
    const out: Array<BlockRequest> = []
    if (ledger === undefined || max <= 0) return out
    // 0. Pieces with a deadline, in deadline order, started or not.
    if (this.deadlines.length > 0) this.takeDeadlines(peer, ledger, out, max, now, only)
    // 1. Blocks of started pieces first: finish what is begun.
    for (const piece of this.active.values()) {
      if (out.length >= max) return out
      if (piece.free > 0 && ledger.has.has(piece.index) && (only === undefined || only.has(piece.index))) {
        this.takeFree(peer, ledger, piece, out, max, now)
      }
    }
    // 2. New pieces, suggested, then rarest first (or in order), while any wanted piece is not yet started.
    while (out.length < max && this.remaining > this.startedWanted) {
      const index = this.takeSuggested(ledger, only) ?? this.choosePiece(ledger.has, only)
      if (index === undefined) break
      this.takeFree(peer, ledger, this.start(index), out, max, now)
    }
    // 3. Endgame: nothing unrequested is left that this peer has; duplicate others' requests.
    if (out.length < max) this.takeEndgame(peer, ledger, out, max, now, only)
    return out
  }

  private takeDeadlines(peer: string, ledger: PeerLedger, out: Array<BlockRequest>, max: number, now: number, only: ReadonlySet<number> | undefined) {
    for (const i of this.deadlines) {
      if (out.length >= max) return
      if (!ledger.has.has(i) || (only !== undefined && !only.has(i))) continue
      const piece = this.active.get(i)
      if (piece !== undefined) {
        if (piece.free > 0) this.takeFree(peer, ledger, piece, out, max, now)
      } else if (this.startable(i, ledger.has)) {
        this.takeFree(peer, ledger, this.start(i), out, max, now)
      }
    }
  }

  private takeFree(peer: string, ledger: PeerLedger, piece: ActivePiece, out: Array<BlockRequest>, max: number, now: number) {
    if (piece.parole) {
      if (piece.owner === undefined) piece.owner = peer
      else if (piece.owner !== peer) return
    }
    for (let b = 0; b < piece.blockCount && out.length < max && piece.free > 0; b++) {
      if (piece.state[b] !== FREE) continue
      piece.state[b] = REQUESTED
      piece.free--
      this.request(peer, ledger, piece, b, out, now)
    }
  }

  private takeEndgame(
    peer: string,
    ledger: PeerLedger,
    out: Array<BlockRequest>,
    max: number,
    now: number,
    only: ReadonlySet<number> | undefined
  ) {
    for (const piece of this.active.values()) {
      if (out.length >= max) return
      // A parole piece is never duplicated: its owner alone fetches it.
      if (!ledger.has.has(piece.index) || piece.received === piece.blockCount || piece.parole) continue
      if (only !== undefined && !only.has(piece.index)) continue
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

  /** The peer's most recent suggestion that can be started now; suggestions of pieces we have are dropped. */
  private takeSuggested(ledger: PeerLedger, only: ReadonlySet<number> | undefined): number | undefined {
    const suggested = ledger.suggested
    for (let k = suggested.length - 1; k >= 0; k--) {
      const i = suggested[k]!
      if (this.have.has(i) || !this.wanted.has(i)) suggested.splice(k, 1)
      else if (this.startable(i, ledger.has) && (only === undefined || only.has(i))) {
        suggested.splice(k, 1)
        return i
      }
    }
    return undefined
  }

  private choosePiece(has: Bitfield, only: ReadonlySet<number> | undefined): number | undefined {
    if (only !== undefined) return this.rarestOf(only, has)
    // No piece can beat the best candidate: the scan stops at the first piece that reaches it.
    const bestKey = this.candidates.best()
    if (bestKey === undefined) return undefined
    const n = this.pieceCount
    const tiers = this.tiers
    let best: number | undefined
    let bestTier = -1
    if (this.sequential) {
      // The first startable piece of the highest tier.
      const topTier = tierOfKey(bestKey)
      for (let i = 0; i < n && bestTier < topTier; i++) {
        if (tiers[i]! > bestTier && this.startable(i, has)) {
          best = i
          bestTier = tiers[i]!
        }
      }
      return best
    }
    // Highest tier, then rarest first; scanning from a random offset breaks ties at random.
    const offset = Math.floor(this.random() * n)
    let bestAvailability = Infinity
    for (let k = 0; k < n; k++) {
      const i = (offset + k) % n
      const tier = tiers[i]!
      if ((tier > bestTier || (tier === bestTier && this.availability[i]! < bestAvailability)) && this.startable(i, has)) {
        best = i
        bestTier = tier
        bestAvailability = this.availability[i]!
        if (candidateKey(tier, bestAvailability) === bestKey) break
      }
    }
    return best
  }

  /** The rarest startable piece of a small set of the highest tier (in order when sequential). */
  private rarestOf(candidates: ReadonlySet<number>, has: Bitfield): number | undefined {
    let best: number | undefined
    for (const i of candidates) {
      if (!Number.isInteger(i) || i < 0 || i >= this.pieceCount || !this.startable(i, has)) continue
      if (best === undefined || this.tiers[i]! > this.tiers[best]!) best = i
      else if (this.tiers[i] === this.tiers[best] && (this.sequential ? i < best : this.availability[i]! < this.availability[best]!)) best = i
    }
    return best
  }

  private startable(i: number, has: Bitfield): boolean {
    return has.has(i) && this.isCandidate(i)
  }

  private start(index: number): ActivePiece {
    this.uncount(index)
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
      contributors: new Set(),
      senders: new Array<string>(blockCount),
      owner: undefined,
      parole: this.parole.has(index)
    }
    this.active.set(index, piece)
    if (this.wanted.has(index)) this.startedWanted++
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
    piece.senders[b] = peer
    if (piece.received < piece.blockCount) return { accepted: true, completed: undefined, cancels }
    this.active.delete(index)
    this.verifying.add(index)
    const completed = { index, data: piece.data, contributors: piece.contributors, senders: piece.senders }
    return { accepted: true, completed, cancels }
  }

  /** The piece passed its hash check and is on disk; its parole, if any, ends. */
  verified(index: number): void {
    this.uncount(index)
    if (this.verifying.delete(index) && this.wanted.has(index)) this.startedWanted--
    this.parole.delete(index)
    if (this.have.add(index) && this.wanted.has(index)) {
      this.remaining--
      this.remainingBytes -= this.pieceSize(index)
    }
  }

  /**
   * The piece failed its hash check: it starts over on parole, from one peer alone, so that a
   * second failure has a lone sender. `parole: false` restarts it open to every peer (for an
   * engine that blames by shared strikes, where a liar owning the piece would fetch it forever).
   */
  failed(index: number, options?: { readonly parole?: boolean }): void {
    if (!this.verifying.delete(index)) return
    if (this.wanted.has(index)) this.startedWanted--
    if (options?.parole !== false) this.parole.add(index)
    this.count(index)
  }

  /** Gives back a completed piece's buffer once nothing reads it any more. */
  recycle(data: Uint8Array): void {
    if (data.length === this.pieceLength && this.spare.length < maxSpareBuffers) this.spare.push(data)
  }
}
