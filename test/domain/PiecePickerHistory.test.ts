/**
 * Property tests of the picker over random histories: peers come and go, announce pieces, are
 * asked for blocks, send them (honestly or not) in any order, choke, time out and reject; pieces
 * verify or fail. A model of what was asked of whom checks the picker's every answer.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { blockSize, type CompletedPiece, PiecePicker } from "../../src/domain/PiecePicker.js"

const peerNames = ["p0", "p1", "p2", "p3"]

interface Layout {
  readonly pieceCount: number
  readonly blocksPerPiece: number
  readonly lastLength: number
  readonly wanted: ReadonlyArray<boolean>
  readonly have: ReadonlyArray<boolean>
}

const layoutArb: fc.Arbitrary<Layout> = fc
  .record({ pieceCount: fc.integer({ min: 1, max: 6 }), blocksPerPiece: fc.integer({ min: 1, max: 4 }), lastFraction: fc.double({ min: 0.01, max: 1, noNaN: true }) })
  .chain(({ pieceCount, blocksPerPiece, lastFraction }) =>
    fc.record({
      pieceCount: fc.constant(pieceCount),
      blocksPerPiece: fc.constant(blocksPerPiece),
      lastLength: fc.constant(Math.max(1, Math.floor(lastFraction * blocksPerPiece * blockSize))),
      wanted: fc.array(fc.boolean(), { minLength: pieceCount, maxLength: pieceCount }).map((w) => w.map((x, i) => x || i % 2 === 0)),
      have: fc.array(fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < 0.15), { minLength: pieceCount, maxLength: pieceCount })
    })
  )

const peerArb = fc.constantFrom(...peerNames)
/** Mostly pieces held: peers that have little make for short histories. */
const bitsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x < 0.7), { minLength: 6, maxLength: 6 })
const actionArb = fc.oneof(
  { arbitrary: fc.record({ _tag: fc.constant("AddPeer" as const), peer: peerArb }), weight: 1 },
  { arbitrary: fc.record({ _tag: fc.constant("RemovePeer" as const), peer: peerArb }), weight: 1 },
  { arbitrary: fc.record({ _tag: fc.constant("Bitfield" as const), peer: peerArb, bits: bitsArb }), weight: 1 },
  { arbitrary: fc.record({ _tag: fc.constant("Have" as const), peer: peerArb, index: fc.integer({ min: -1, max: 6 }) }), weight: 2 },
  {
    arbitrary: fc.record({
      _tag: fc.constant("Pick" as const),
      peer: peerArb,
      max: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 6 })),
      only: fc.option(fc.uniqueArray(fc.nat(6), { maxLength: 3 }), { nil: undefined })
    }),
    weight: 6
  },
  { arbitrary: fc.record({ _tag: fc.constant("Receive" as const), k: fc.nat(), lie: fc.boolean(), fromOther: fc.boolean() }), weight: 8 },
  { arbitrary: fc.record({ _tag: fc.constant("Release" as const), peer: peerArb }), weight: 1 },
  { arbitrary: fc.record({ _tag: fc.constant("Expire" as const), peer: peerArb, age: fc.nat(10) }), weight: 1 },
  { arbitrary: fc.record({ _tag: fc.constant("Reject" as const), k: fc.nat(), valid: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ _tag: fc.constant("Suggest" as const), peer: peerArb, index: fc.nat(6) }), weight: 1 },
  { arbitrary: fc.record({ _tag: fc.constant("Check" as const), k: fc.nat() }), weight: 3 }
)
type Action = typeof actionArb extends fc.Arbitrary<infer A> ? A : never

const trueByte = (index: number, b: number) => (index * 31 + b * 7 + 1) & 0xff

/** The picker and a model of what it should know, checked after every step. */
class World {
  readonly picker: PiecePicker
  readonly pieceLength: number
  readonly totalLength: number
  readonly peers = new Map<string, Set<number>>()
  /** Per peer: outstanding block ids (index * blocksPerPiece + b) -> time sent. */
  readonly outstanding = new Map<string, Map<number, number>>()
  /** Blocks in, per active piece: block -> [sender, lied]. */
  readonly received = new Map<number, Map<number, readonly [string, boolean]>>()
  readonly verifying = new Map<number, { readonly piece: CompletedPiece; readonly lied: boolean }>()
  readonly verified = new Set<number>()
  now = 0

  constructor(readonly layout: Layout) {
    this.pieceLength = layout.blocksPerPiece * blockSize
    this.totalLength = (layout.pieceCount - 1) * this.pieceLength + layout.lastLength
    const bits = (flags: ReadonlyArray<boolean>) => {
      const b = Bitfield.empty(layout.pieceCount)
      flags.forEach((f, i) => f && b.add(i))
      return b
    }
    this.picker = new PiecePicker({
      pieceCount: layout.pieceCount,
      pieceLength: this.pieceLength,
      totalLength: this.totalLength,
      wanted: bits(layout.wanted),
      have: bits(layout.have),
      random: () => 0.5
    })
  }

  size(index: number) {
    return index === this.layout.pieceCount - 1 ? this.layout.lastLength : this.pieceLength
  }
  blockLength(id: number) {
    const [index, b] = this.split(id)
    return Math.min(blockSize, this.size(index) - b * blockSize)
  }
  split(id: number): readonly [number, number] {
    return [Math.floor(id / this.layout.blocksPerPiece), id % this.layout.blocksPerPiece]
  }
  missing(index: number) {
    return this.layout.wanted[index]! && !this.layout.have[index]! && !this.verified.has(index)
  }
  allOutstanding(): Array<readonly [string, number]> {
    return [...this.outstanding].flatMap(([peer, ids]) => [...ids.keys()].map((id) => [peer, id] as const))
  }
  holders(id: number) {
    return [...this.outstanding].filter(([, ids]) => ids.has(id)).map(([peer]) => peer)
  }

  run(a: Action) {
    this.now++
    switch (a._tag) {
      case "AddPeer":
        if (this.peers.has(a.peer)) return
        this.picker.addPeer(a.peer)
        this.peers.set(a.peer, new Set())
        this.outstanding.set(a.peer, new Map())
        return
      case "RemovePeer":
        this.picker.removePeer(a.peer)
        this.peers.delete(a.peer)
        this.outstanding.delete(a.peer)
        return
      case "Bitfield": {
        if (!this.peers.has(a.peer)) return
        const bits = Bitfield.empty(this.layout.pieceCount)
        for (let i = 0; i < this.layout.pieceCount; i++) if (a.bits[i]) bits.add(i)
        this.picker.setBitfield(a.peer, bits)
        this.peers.set(a.peer, new Set([...Array(this.layout.pieceCount).keys()].filter((i) => a.bits[i])))
        return
      }
      case "Have": {
        const inRange = a.index >= 0 && a.index < this.layout.pieceCount
        expect(this.picker.addHave(a.peer, a.index)).toBe(inRange && this.peers.has(a.peer))
        if (inRange) this.peers.get(a.peer)?.add(a.index)
        return
      }
      case "Pick":
        return this.pick(a.peer, a.max, a.only === undefined ? undefined : new Set(a.only))
      case "Receive":
        return this.receive(a.k, a.lie, a.fromOther)
      case "Release": {
        const owed = this.outstanding.get(a.peer)
        expect(this.picker.release(a.peer)).toBe(owed?.size ?? 0)
        owed?.clear()
        return
      }
      case "Expire": {
        const owed = this.outstanding.get(a.peer)
        const before = this.now - a.age
        const old = [...(owed ?? [])].filter(([, at]) => at < before)
        expect(this.picker.expire(a.peer, before)).toBe(old.length)
        for (const [id] of old) owed!.delete(id)
        return
      }
      case "Reject":
        return this.reject(a.k, a.valid)
      case "Suggest":
        return this.picker.suggest(a.peer, a.index)
      case "Check":
        return this.check(a.k)
    }
  }

  pick(peer: string, max: number, only: ReadonlySet<number> | undefined) {
    const requests = this.picker.pick(peer, max, this.now, only)
    const has = this.peers.get(peer)
    expect(requests.length).toBeLessThanOrEqual(max)
    if (has === undefined) return expect(requests).toEqual([])
    let duplicated = false
    for (const r of requests) {
      const b = r.begin / blockSize
      const id = r.index * this.layout.blocksPerPiece + b
      expect(has.has(r.index) && this.missing(r.index) && (only === undefined || only.has(r.index))).toBe(true)
      expect(Number.isInteger(b) && r.length === this.blockLength(id)).toBe(true)
      expect(this.received.get(r.index)?.has(b) ?? false).toBe(false)
      expect(this.verifying.has(r.index)).toBe(false)
      const holders = this.holders(id)
      expect(holders).not.toContain(peer)
      if (holders.length > 0) {
        duplicated = true
        expect(this.picker.isOnParole(r.index)).toBe(false) // a parole piece is never duplicated
      }
      this.outstanding.get(peer)!.set(id, this.now)
    }
    // Endgame only: a duplicate means nothing this peer has is left to start or unrequested.
    if (duplicated) this.everyBlock(has, only, (id) => this.holders(id).length > 0)
    // Fewer than asked: nothing this peer has is left to ask it for, not even a duplicate.
    if (requests.length < max) this.everyBlock(has, only, (id) => this.outstanding.get(peer)!.has(id))
  }

  /** Every block not yet in of the pieces a peer has (parole pieces aside) is `requested`. */
  everyBlock(has: ReadonlySet<number>, only: ReadonlySet<number> | undefined, requested: (id: number) => boolean) {
    for (const index of has) {
      if (!this.missing(index) || this.verifying.has(index) || this.picker.isOnParole(index)) continue
      if (only !== undefined && !only.has(index)) continue
      for (let b = 0; b * blockSize < this.size(index); b++) {
        const id = index * this.layout.blocksPerPiece + b
        expect(this.received.get(index)?.has(b) === true || requested(id)).toBe(true)
      }
    }
  }

  receive(k: number, lie: boolean, fromOther: boolean) {
    const all = this.allOutstanding()
    if (all.length === 0) return
    const [holder, id] = all[k % all.length]!
    const peer = fromOther ? peerNames.find((p) => !this.holders(id).includes(p))! : holder
    const [index, b] = this.split(id)
    const block = new Uint8Array(this.blockLength(id)).fill(lie ? 0 : trueByte(index, b))
    const outcome = this.picker.receive(peer, index, b * blockSize, block)
    const owed = this.holders(id).includes(peer)
    expect(outcome.accepted).toBe(owed)
    if (!owed) return
    const others = this.holders(id).filter((p) => p !== peer)
    expect(outcome.cancels.map((c) => c.peer).sort()).toEqual(others.sort())
    for (const ids of this.outstanding.values()) ids.delete(id)
    const blocks = this.received.get(index) ?? new Map()
    blocks.set(b, [peer, lie] as const)
    this.received.set(index, blocks)
    const count = Math.ceil(this.size(index) / blockSize)
    if (blocks.size < count) return expect(outcome.completed).toBeUndefined()
    const piece = outcome.completed!
    expect(piece.index).toBe(index)
    expect(piece.senders).toEqual([...Array(count).keys()].map((bb) => blocks.get(bb)![0]))
    expect(new Set(piece.contributors)).toEqual(new Set(piece.senders))
    this.verifying.set(index, { piece, lied: [...blocks.values()].some(([, l]) => l) })
    this.received.delete(index)
  }

  reject(k: number, valid: boolean) {
    const all = this.allOutstanding()
    if (all.length === 0) return
    const [peer, id] = all[k % all.length]!
    const [index, b] = this.split(id)
    const before = this.picker.outstandingCount(peer)
    // An invalid reject names a block with the wrong length: nothing is released.
    const ok = this.picker.reject(peer, index, b * blockSize, this.blockLength(id) + (valid ? 0 : 1))
    expect(ok).toBe(valid)
    expect(this.picker.outstandingCount(peer)).toBe(before - (valid ? 1 : 0))
    if (valid) this.outstanding.get(peer)!.delete(id)
  }

  check(k: number) {
    const waiting = [...this.verifying.values()]
    if (waiting.length === 0) return
    const { piece, lied } = waiting[k % waiting.length]!
    this.verifying.delete(piece.index)
    if (lied) {
      this.picker.failed(piece.index)
      expect(this.picker.isOnParole(piece.index)).toBe(true)
    } else {
      for (let i = 0; i < piece.data.length; i++) if (piece.data[i] !== trueByte(piece.index, Math.floor(i / blockSize))) expect.fail(`byte ${i} of piece ${piece.index}`)
      this.picker.verified(piece.index)
      this.verified.add(piece.index)
      expect(this.picker.isOnParole(piece.index)).toBe(false)
    }
    this.picker.recycle(piece.data)
  }

  /** What holds after every step. */
  invariants() {
    for (const [peer, ids] of this.outstanding) expect(this.picker.outstandingCount(peer)).toBe(ids.size)
    let left = 0
    let wanted = 0
    for (let i = 0; i < this.layout.pieceCount; i++) {
      if (this.layout.wanted[i]) wanted += this.size(i)
      if (this.missing(i)) left += this.size(i)
    }
    expect(this.picker.bytesWanted).toBe(wanted)
    expect(this.picker.bytesLeft).toBe(left)
    // A parole piece has at most one peer with blocks of it outstanding: never two owners.
    for (let index = 0; index < this.layout.pieceCount; index++) {
      if (!this.picker.isOnParole(index)) continue
      const askers = new Set(this.allOutstanding().filter(([, id]) => this.split(id)[0] === index).map(([p]) => p))
      expect(askers.size).toBeLessThanOrEqual(1)
    }
  }

  /** Every peer chokes; a seed that has everything then serves honestly until nothing is left. */
  drain() {
    for (const peer of this.peers.keys()) this.run({ _tag: "Release", peer })
    for (const entry of [...this.verifying.values()]) this.check([...this.verifying.values()].indexOf(entry))
    this.run({ _tag: "RemovePeer", peer: "seed" })
    this.run({ _tag: "AddPeer", peer: "seed" })
    this.run({ _tag: "Bitfield", peer: "seed", bits: Array(6).fill(true) })
    for (let round = 0; round < 4 * this.layout.pieceCount + 4 && !this.picker.isComplete; round++) {
      this.pick("seed", 1000, undefined)
      while (this.outstanding.get("seed")!.size > 0) this.receive(0, false, false)
      while (this.verifying.size > 0) this.check(0)
      this.invariants()
    }
    expect(this.picker.isComplete).toBe(true)
  }
}

/** Every peer starts connected with a bitfield; then anything happens. */
const historyArb = fc.tuple(
  layoutArb,
  fc.array(bitsArb, { minLength: peerNames.length, maxLength: peerNames.length }),
  fc.array(actionArb, { minLength: 60, maxLength: 200 })
)

describe("PiecePicker over random histories", () => {
  it.prop("agrees with the model at every step, and a seed can always finish the download", [historyArb], ([[layout, bitfields, actions]]) => {
    const world = new World(layout)
    const start = peerNames.flatMap((peer, k): Array<Action> => [{ _tag: "AddPeer", peer }, { _tag: "Bitfield", peer, bits: bitfields[k]! }])
    for (const a of [...start, ...actions]) {
      world.run(a)
      world.invariants()
    }
    world.drain()
  }, { fastCheck: { numRuns: 200 } })
})
