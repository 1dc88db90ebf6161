/** A FIFO of byte chunks: bytes go in as they come and are taken off the front in any sizes, copying only across chunks. */
export class ByteQueue {
  private readonly chunks: Array<Uint8Array> = []
  private head = 0
  length = 0

  push(bytes: Uint8Array) {
    if (bytes.length === 0) return
    this.chunks.push(bytes)
    this.length += bytes.length
  }

  clear() {
    this.chunks.length = 0
    this.head = 0
    this.length = 0
  }

  /** The first chunk's bytes, whole: the cheapest read. Undefined when empty. */
  takeChunk(): Uint8Array | undefined {
    if (this.length === 0) return undefined
    const chunk = this.chunks[this.head]!
    this.advance()
    this.length -= chunk.length
    return chunk
  }

  /** Exactly `n` bytes (n <= length) off the front. */
  take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0)
    const first = this.chunks[this.head]!
    if (first.length === n) return this.takeChunk()!
    if (first.length > n) {
      this.chunks[this.head] = first.subarray(n)
      this.length -= n
      return first.subarray(0, n)
    }
    const out = new Uint8Array(n)
    this.copyInto(out, 0, n)
    return out
  }

  /** Moves `n` bytes (n <= length) off the front into `out` at `offset`. */
  copyInto(out: Uint8Array, offset: number, n: number) {
    this.length -= n
    for (let at = 0; at < n;) {
      const chunk = this.chunks[this.head]!
      const k = Math.min(chunk.length, n - at)
      out.set(k === chunk.length ? chunk : chunk.subarray(0, k), offset + at)
      at += k
      if (k === chunk.length) this.advance()
      else this.chunks[this.head] = chunk.subarray(k)
    }
  }

  private advance() {
    this.head++
    // compact now and then, not per take: shift() on a long array is linear
    if (this.head === this.chunks.length) {
      this.chunks.length = 0
      this.head = 0
    } else if (this.head > 1024) {
      this.chunks.splice(0, this.head)
      this.head = 0
    }
  }
}
