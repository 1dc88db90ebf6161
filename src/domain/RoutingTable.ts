/**
 * The DHT routing table (BEP 5): k-buckets of at most 8 nodes over the id space. Bucket `i` holds
 * the nodes sharing exactly `i` leading bits with our id; the last bucket holds every node closer
 * than that, and it is the only one that splits when full (it is the one whose range holds our id).
 *
 * A node is good while it answered us in the last 15 minutes, questionable after that (or until
 * it first answers), bad once it fails twice in a row, or once while questionable. A full bucket
 * takes a newcomer in place of a bad node; otherwise the newcomer waits in the bucket's bounded
 * replacement cache and the table names its least recently seen questionable node to ping.
 */
import { Either } from "effect"
import * as Bencode from "./Bencode.js"
import { decodeNodes, encodeNodes, type NodeInfo } from "./Krpc.js"
import { commonPrefixBits, compareDistance, isNodeId, type NodeId, nodeIdBits, sameId } from "./NodeId.js"
import { formatPeer } from "./Peer.js"

export const bucketSize = 8
/** Newcomers kept per full bucket, newest first. */
export const replacementsPerBucket = 8
export const questionableAfterMillis = 15 * 60 * 1000
const maxFailures = 2

export type NodeStatus = "good" | "questionable" | "bad"

export interface TableNode extends NodeInfo {
  /** When it last answered one of our queries (undefined: never). */
  readonly lastAnswered: number | undefined
  /** When we last heard from it at all. */
  readonly lastSeen: number
  /** Queries in a row it did not answer. */
  readonly failures: number
}

export type Observation = "answered" | "queried"

/** What inserting a node did; `ping` is the questionable node to ping when the bucket was full. */
export type InsertResult =
  | { readonly _tag: "Added" | "Updated" | "Replaced" | "Ignored" }
  | { readonly _tag: "Cached"; readonly ping: TableNode | undefined }

interface Bucket {
  nodes: Array<TableNode>
  replacements: Array<TableNode>
  /** When a node of it last answered, joined or left: buckets idle for 15 minutes are refreshed. */
  changedAt: number
}

export const nodeStatus = (node: TableNode, now: number): NodeStatus => {
  if (node.failures >= maxFailures) return "bad"
  const fresh = node.lastAnswered !== undefined && now - node.lastAnswered <= questionableAfterMillis
  if (fresh) return "good"
  return node.failures > 0 ? "bad" : "questionable"
}

export class RoutingTable {
  private readonly buckets: Array<Bucket>

  constructor(readonly self: NodeId, now: number) {
    this.buckets = [{ nodes: [], replacements: [], changedAt: now }]
  }

  get bucketCount(): number {
    return this.buckets.length
  }

  get size(): number {
    return this.buckets.reduce((n, b) => n + b.nodes.length, 0)
  }

  /** Every node, bucket by bucket (for inspection and persistence). */
  nodes(): ReadonlyArray<TableNode> {
    return this.buckets.flatMap((b) => b.nodes)
  }

  /** The nodes of each bucket, by depth (for tests and diagnostics). */
  bucketSizes(): ReadonlyArray<number> {
    return this.buckets.map((b) => b.nodes.length)
  }

  private indexOf(id: NodeId): number {
    return Math.min(commonPrefixBits(this.self, id), this.buckets.length - 1)
  }

  get(id: NodeId): TableNode | undefined {
    return this.buckets[this.indexOf(id)]!.nodes.find((n) => sameId(n.id, id))
  }

  /** Records that `node` answered us or queried us, adding it if there is room for it. */
  insert(node: NodeInfo, how: Observation, now: number): InsertResult {
    if (!isNodeId(node.id) || sameId(node.id, this.self)) return { _tag: "Ignored" }
    for (;;) {
      const index = this.indexOf(node.id)
      const bucket = this.buckets[index]!
      const at = bucket.nodes.findIndex((n) => sameId(n.id, node.id))
      if (at >= 0) return this.update(bucket, at, node, how, now)
      // One node per address: another id at a known address is a liar or a restart; keep the known one.
      if (this.nodes().some((n) => formatPeer(n.address) === formatPeer(node.address))) return { _tag: "Ignored" }
      const fresh = freshNode(node, how, now)
      if (bucket.nodes.length < bucketSize) {
        bucket.nodes.push(fresh)
        bucket.changedAt = now
        return { _tag: "Added" }
      }
      if (index === this.buckets.length - 1 && this.buckets.length < nodeIdBits) {
        this.split()
        continue
      }
      const badAt = bucket.nodes.findIndex((n) => nodeStatus(n, now) === "bad")
      if (badAt >= 0) {
        bucket.nodes[badAt] = fresh
        bucket.changedAt = now
        return { _tag: "Replaced" }
      }
      cacheReplacement(bucket, fresh)
      return { _tag: "Cached", ping: leastRecentlySeenQuestionable(bucket, now) }
    }
  }

  private update(bucket: Bucket, at: number, node: NodeInfo, how: Observation, now: number): InsertResult {
    const known = bucket.nodes[at]!
    // A known id from another address is not trusted with the entry.
    if (formatPeer(known.address) !== formatPeer(node.address)) return { _tag: "Ignored" }
    bucket.nodes[at] = how === "answered"
      ? { ...known, lastAnswered: now, lastSeen: now, failures: 0 }
      : { ...known, lastSeen: now }
    if (how === "answered") bucket.changedAt = now
    return { _tag: "Updated" }
  }

  /** A query to `id` went unanswered; a node that turns bad gives way to the newest replacement. */
  failed(id: NodeId, now: number): void {
    const bucket = this.buckets[this.indexOf(id)]!
    const at = bucket.nodes.findIndex((n) => sameId(n.id, id))
    if (at < 0) {
      bucket.replacements = bucket.replacements.filter((n) => !sameId(n.id, id))
      return
    }
    const node = { ...bucket.nodes[at]!, failures: bucket.nodes[at]!.failures + 1 }
    bucket.nodes[at] = node
    if (nodeStatus(node, now) !== "bad") return
    const replacement = bucket.replacements.shift()
    if (replacement !== undefined) {
      bucket.nodes[at] = replacement
      bucket.changedAt = now
    }
  }

  /**
   * Up to `count` nodes that are not bad, closest to `target` first; with `answeredOnly`, only
   * nodes that have answered us (what we tell others: a node that only queried us may be made up).
   */
  closest(target: NodeId, count: number, now: number, answeredOnly = false): ReadonlyArray<TableNode> {
    return this.nodes()
      .filter((n) => nodeStatus(n, now) !== "bad" && (!answeredOnly || n.lastAnswered !== undefined))
      .sort((a, b) => compareDistance(target, a.id, b.id))
      .slice(0, count)
  }

  /** Depths of the buckets unchanged for 15 minutes, to refresh with a lookup of an id inside them. */
  staleBuckets(now: number): ReadonlyArray<number> {
    return this.buckets.flatMap((b, i) => (now - b.changedAt >= questionableAfterMillis ? [i] : []))
  }

  /** Marks a bucket refreshed (its lookup was sent). */
  touch(depth: number, now: number): void {
    const bucket = this.buckets[depth]
    if (bucket !== undefined) bucket.changedAt = now
  }

  /** Splits the last bucket: nodes sharing exactly its depth stay, closer ones go to a new last bucket. */
  private split(): void {
    const depth = this.buckets.length - 1
    const last = this.buckets[depth]!
    const deeper = (n: TableNode) => commonPrefixBits(this.self, n.id) > depth
    const next: Bucket = {
      nodes: last.nodes.filter(deeper),
      replacements: last.replacements.filter(deeper),
      changedAt: last.changedAt
    }
    last.nodes = last.nodes.filter((n) => !deeper(n))
    last.replacements = last.replacements.filter((n) => !deeper(n))
    this.buckets.push(next)
  }
}

const freshNode = (node: NodeInfo, how: Observation, now: number): TableNode => ({
  id: node.id,
  address: node.address,
  lastAnswered: how === "answered" ? now : undefined,
  lastSeen: now,
  failures: 0
})

const cacheReplacement = (bucket: Bucket, node: TableNode): void => {
  bucket.replacements = [node, ...bucket.replacements.filter((n) => !sameId(n.id, node.id))]
    .slice(0, replacementsPerBucket)
}

const leastRecentlySeenQuestionable = (bucket: Bucket, now: number): TableNode | undefined =>
  bucket.nodes
    .filter((n) => nodeStatus(n, now) === "questionable")
    .reduce<TableNode | undefined>((oldest, n) => (oldest === undefined || n.lastSeen < oldest.lastSeen ? n : oldest), undefined)

// ---------------------------------------------------------------------------------------------
// Persistence: `d2:id20:<our id>5:nodes<26 bytes a node>e`

/** Nodes a saved table may hold. */
export const maxSavedNodes = 1024

export interface SavedTable {
  readonly id: NodeId
  readonly nodes: ReadonlyArray<NodeInfo>
}

export const encodeSavedTable = (saved: SavedTable): Uint8Array =>
  Bencode.encode(Bencode.dict({ id: saved.id, nodes: encodeNodes(saved.nodes.slice(0, maxSavedNodes)) }))

/** A saved table, or undefined when the bytes are not one (a damaged file starts afresh). */
export const decodeSavedTable = (bytes: Uint8Array): SavedTable | undefined => {
  const decoded = Bencode.decode(bytes)
  if (Either.isLeft(decoded) || !Bencode.isDict(decoded.right)) return undefined
  const id = Bencode.get(decoded.right, "id")
  const nodes = Bencode.get(decoded.right, "nodes")
  if (!Bencode.isBytes(id) || !isNodeId(id) || !Bencode.isBytes(nodes)) return undefined
  const list = decodeNodes(nodes, maxSavedNodes)
  return Either.isRight(list) ? { id: id.slice(), nodes: list.right } : undefined
}
