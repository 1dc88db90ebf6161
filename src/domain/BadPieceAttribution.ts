/**
 * Who sent the bad block of a piece that failed its hash check, found without ever blaming an
 * honest peer: a failed copy is remembered as one SHA-1 per block with its sender; once a later
 * copy of the piece verifies, the senders of the blocks that differ from the good copy are the
 * liars. A sender of every block of a failed piece is a liar at once. Shared blame alone never
 * convicts anyone.
 */
import { createHash } from "node:crypto"
import { blockSize } from "./Wire.js"

/** A failed copy of a piece, as the picker completed it. */
export interface FailedCopy {
  readonly index: number
  readonly data: Uint8Array
  /** Per block index, the peer that sent it. */
  readonly senders: ReadonlyArray<string>
}

interface FailedRecord {
  readonly index: number
  readonly senders: ReadonlyArray<string>
  /** 20 bytes per block. */
  readonly digests: Uint8Array
}

const digestSize = 20

/** Failed copies remembered, over all pieces; the oldest goes first. */
export const defaultMaxRecords = 64

const blockDigests = (data: Uint8Array): Uint8Array => {
  const count = Math.ceil(data.length / blockSize)
  const digests = new Uint8Array(count * digestSize)
  for (let b = 0; b < count; b++) {
    const hash = createHash("sha1").update(data.subarray(b * blockSize, (b + 1) * blockSize)).digest()
    digests.set(hash, b * digestSize)
  }
  return digests
}

const sameDigest = (a: Uint8Array, b: Uint8Array, block: number): boolean => {
  for (let k = block * digestSize; k < (block + 1) * digestSize; k++) if (a[k] !== b[k]) return false
  return true
}

export class BadPieceAttribution {
  private records: Array<FailedRecord> = []

  constructor(private readonly maxRecords: number = defaultMaxRecords) {}

  /** Failed copies remembered. */
  get size(): number {
    return this.records.length
  }

  /**
   * Records a copy that failed its hash check (call before its buffer is reused). Returns the
   * peers convicted at once: the sender of every block, when there is only one.
   */
  failed(copy: FailedCopy): ReadonlySet<string> {
    const senders = new Set(copy.senders)
    if (senders.size === 1) return senders
    this.records.push({ index: copy.index, senders: [...copy.senders], digests: blockDigests(copy.data) })
    if (this.records.length > this.maxRecords) this.records.shift()
    return new Set()
  }

  /**
   * A copy of the piece verified: the senders of blocks of its failed copies that differ from
   * `goodData` are convicted, and those copies are forgotten.
   */
  convict(index: number, goodData: Uint8Array): ReadonlySet<string> {
    const liars = new Set<string>()
    const mine = this.records.filter((r) => r.index === index)
    if (mine.length === 0) return liars
    this.records = this.records.filter((r) => r.index !== index)
    const good = blockDigests(goodData)
    for (const record of mine) {
      // A record of another length (cannot happen for one torrent) says nothing trustworthy.
      if (record.digests.length !== good.length) continue
      record.senders.forEach((sender, b) => {
        if (!sameDigest(record.digests, good, b)) liars.add(sender)
      })
    }
    return liars
  }
}
