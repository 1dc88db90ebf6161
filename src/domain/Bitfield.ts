/**
 * A fixed-size set of piece indexes, stored as the wire format's bitfield (BEP 3: the high bit of
 * the first byte is piece 0; spare bits at the end are zero).
 */
export class Bitfield {
  readonly bytes: Uint8Array
  private count: number

  private constructor(readonly size: number, bytes: Uint8Array) {
    this.bytes = bytes
    let n = 0
    for (let i = 0; i < size; i++) if (this.has(i)) n++
    this.count = n
  }

  static empty(size: number): Bitfield {
    return new Bitfield(size, new Uint8Array(Math.ceil(size / 8)))
  }

  static full(size: number): Bitfield {
    const b = Bitfield.empty(size)
    for (let i = 0; i < size; i++) b.add(i)
    return b
  }

  /** Reads a peer's bitfield; undefined when its length is wrong or spare bits are set. */
  static fromWire(bytes: Uint8Array, size: number): Bitfield | undefined {
    if (bytes.length !== Math.ceil(size / 8)) return undefined
    const spare = bytes.length * 8 - size
    if (spare > 0 && (bytes[bytes.length - 1]! & ((1 << spare) - 1)) !== 0) return undefined
    return new Bitfield(size, Uint8Array.from(bytes))
  }

  has(index: number): boolean {
    return index >= 0 && index < this.size && (this.bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0
  }

  /** Adds a piece; returns false when it was already there or out of range. */
  add(index: number): boolean {
    if (index < 0 || index >= this.size || this.has(index)) return false
    this.bytes[index >> 3]! |= 0x80 >> (index & 7)
    this.count++
    return true
  }

  remove(index: number): boolean {
    if (!this.has(index)) return false
    this.bytes[index >> 3]! &= ~(0x80 >> (index & 7)) & 0xff
    this.count--
    return true
  }

  get cardinality(): number {
    return this.count
  }

  get isComplete(): boolean {
    return this.count === this.size
  }

  get isEmpty(): boolean {
    return this.count === 0
  }

  copy(): Bitfield {
    return new Bitfield(this.size, Uint8Array.from(this.bytes))
  }
}
