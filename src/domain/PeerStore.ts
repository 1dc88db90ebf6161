/**
 * The peers other nodes announced to us (BEP 5 announce_peer), per info hash: bounded in hashes
 * and in peers a hash, and expired when not announced again in time. A flood of announces costs
 * at most `maxHashes * maxPeersPerHash` entries: the least recently announced hash, or the oldest
 * peer of a hash, gives way.
 */
import { toHex } from "./Bytes.js"
import { formatPeer, type PeerAddress } from "./Peer.js"

export interface PeerStoreLimits {
  readonly maxHashes?: number
  readonly maxPeersPerHash?: number
  /** How long an announce holds (default 30 minutes). */
  readonly ttlMillis?: number
}

interface Entry {
  readonly peer: PeerAddress
  readonly at: number
}

export class PeerStore {
  readonly maxHashes: number
  readonly maxPeersPerHash: number
  readonly ttlMillis: number
  /** Maps keep insertion order: re-inserting moves a key last, so the first is the least recent. */
  private readonly hashes = new Map<string, Map<string, Entry>>()

  constructor(limits: PeerStoreLimits = {}) {
    this.maxHashes = limits.maxHashes ?? 500
    this.maxPeersPerHash = limits.maxPeersPerHash ?? 100
    this.ttlMillis = limits.ttlMillis ?? 30 * 60 * 1000
  }

  add(infoHash: Uint8Array, peer: PeerAddress, now: number): void {
    const key = toHex(infoHash)
    const peers = this.hashes.get(key) ?? new Map<string, Entry>()
    this.hashes.delete(key)
    this.hashes.set(key, peers)
    const peerKey = formatPeer(peer)
    peers.delete(peerKey)
    peers.set(peerKey, { peer, at: now })
    if (peers.size > this.maxPeersPerHash) peers.delete(peers.keys().next().value!)
    if (this.hashes.size > this.maxHashes) this.hashes.delete(this.hashes.keys().next().value!)
  }

  /** Up to `max` peers announced for the hash and not expired, the most recent first. */
  get(infoHash: Uint8Array, now: number, max = this.maxPeersPerHash): ReadonlyArray<PeerAddress> {
    const peers = this.hashes.get(toHex(infoHash))
    if (peers === undefined) return []
    const live = [...peers.values()].filter((e) => now - e.at < this.ttlMillis)
    return live.reverse().slice(0, max).map((e) => e.peer)
  }

  /** Drops expired peers and hashes left without any. */
  expire(now: number): void {
    for (const [key, peers] of this.hashes) {
      for (const [peerKey, e] of peers) if (now - e.at >= this.ttlMillis) peers.delete(peerKey)
      if (peers.size === 0) this.hashes.delete(key)
    }
  }

  get hashCount(): number {
    return this.hashes.size
  }

  get peerCount(): number {
    let n = 0
    for (const peers of this.hashes.values()) n += peers.size
    return n
  }
}
