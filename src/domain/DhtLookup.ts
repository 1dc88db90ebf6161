/**
 * One iterative DHT lookup (BEP 5), as pure bookkeeping: the candidates closest to a target, which
 * of them are in flight, answered or failed, and the peers and tokens found. The service sends the
 * queries it names (α at a time) and reports back; the lookup ends when the k closest candidates
 * have all answered or failed, or after `maxQueries` queries.
 *
 * Bounded whatever the answers: at most `maxCandidates` candidates are kept (the closest), and at
 * most `maxPeers` peers.
 */
import type { NodeInfo } from "./Krpc.js"
import { compareDistance, type NodeId, sameId } from "./NodeId.js"
import { formatPeer, type PeerAddress } from "./Peer.js"

export interface LookupLimits {
  /** How many closest nodes the lookup wants answers from (k, default 8). */
  readonly k?: number
  /** Queries in flight at once (α, default 3). */
  readonly alpha?: number
  /** Queries in all (default 64). */
  readonly maxQueries?: number
  /** Peers kept (default 500). */
  readonly maxPeers?: number
  /** Our own id: never a candidate. */
  readonly self?: NodeId
}

type CandidateState = "new" | "inFlight" | "answered" | "failed"

interface Candidate {
  readonly node: NodeInfo
  state: CandidateState
  /** Hops from where the lookup started (0: a node we knew). */
  readonly hops: number
  token: Uint8Array | undefined
}

/** A node that answered, with the token it gave for announcing to it. */
export interface AnsweredNode {
  readonly node: NodeInfo
  readonly token: Uint8Array | undefined
}

export class DhtLookup {
  readonly k: number
  readonly alpha: number
  readonly maxQueries: number
  readonly maxPeers: number
  readonly maxCandidates: number
  private candidates: Array<Candidate> = []
  private readonly peerMap = new Map<string, PeerAddress>()
  private readonly self: NodeId | undefined
  /** Queries sent so far. */
  queries = 0
  /** The most hops from a known node to one that answered. */
  hops = 0

  constructor(readonly target: NodeId, limits: LookupLimits = {}) {
    this.k = limits.k ?? 8
    this.alpha = limits.alpha ?? 3
    this.maxQueries = limits.maxQueries ?? 64
    this.maxPeers = limits.maxPeers ?? 500
    this.maxCandidates = this.k * 8
    this.self = limits.self
  }

  /** Adds nodes to ask, `hops` away from where we started; farther ones than the kept candidates are dropped. */
  add(nodes: ReadonlyArray<NodeInfo>, hops = 0): void {
    for (const node of nodes) {
      if (this.self !== undefined && sameId(node.id, this.self)) continue
      if (this.candidates.some((c) => sameId(c.node.id, node.id) || formatPeer(c.node.address) === formatPeer(node.address))) continue
      this.candidates.push({ node, state: "new", hops, token: undefined })
    }
    this.candidates.sort((a, b) => compareDistance(this.target, a.node.id, b.node.id))
    if (this.candidates.length > this.maxCandidates) {
      // Drop the farthest that are not in flight (their answers would find no entry, harmlessly).
      this.candidates = this.candidates.filter((c, i) => i < this.maxCandidates || c.state === "inFlight")
    }
  }

  get inFlight(): number {
    return this.candidates.filter((c) => c.state === "inFlight").length
  }

  /** The k closest candidates that have not failed. */
  private closestLive(): Array<Candidate> {
    return this.candidates.filter((c) => c.state !== "failed").slice(0, this.k)
  }

  get done(): boolean {
    if (this.inFlight > 0) return false
    return this.queries >= this.maxQueries || this.closestLive().every((c) => c.state === "answered")
  }

  /** The nodes to query now (marked in flight): the closest new ones among the k closest live, up to α in flight. */
  next(): ReadonlyArray<NodeInfo> {
    const out: Array<NodeInfo> = []
    let inFlight = this.inFlight
    for (const c of this.closestLive()) {
      if (inFlight >= this.alpha || this.queries >= this.maxQueries) break
      if (c.state !== "new") continue
      c.state = "inFlight"
      inFlight++
      this.queries++
      out.push(c.node)
    }
    return out
  }

  private find(id: NodeId): Candidate | undefined {
    return this.candidates.find((c) => sameId(c.node.id, id))
  }

  /** `id` answered, naming closer nodes and maybe peers and a token. */
  answered(id: NodeId, answer: { readonly nodes?: ReadonlyArray<NodeInfo>; readonly values?: ReadonlyArray<PeerAddress>; readonly token?: Uint8Array | undefined }): void {
    const c = this.find(id)
    if (c === undefined || c.state !== "inFlight") return
    c.state = "answered"
    c.token = answer.token
    this.hops = Math.max(this.hops, c.hops)
    for (const p of answer.values ?? []) {
      if (this.peerMap.size >= this.maxPeers) break
      this.peerMap.set(formatPeer(p), p)
    }
    this.add(answer.nodes ?? [], c.hops + 1)
  }

  failed(id: NodeId): void {
    const c = this.find(id)
    if (c !== undefined && c.state === "inFlight") c.state = "failed"
  }

  get peers(): ReadonlyArray<PeerAddress> {
    return [...this.peerMap.values()]
  }

  /** The k closest nodes that answered, with their tokens (where announce_peer goes). */
  closestAnswered(): ReadonlyArray<AnsweredNode> {
    return this.candidates
      .filter((c) => c.state === "answered")
      .slice(0, this.k)
      .map((c) => ({ node: c.node, token: c.token }))
  }
}
