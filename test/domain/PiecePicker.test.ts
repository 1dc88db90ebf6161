import { describe, expect, it } from "@effect/vitest"
import { Bitfield } from "../../src/domain/Bitfield.js"
import { blockSize, PiecePicker } from "../../src/domain/PiecePicker.js"

// 5 pieces of 2 blocks; the last piece is 1.5 blocks long.
const pieceLength = 2 * blockSize
const totalLength = 4 * pieceLength + blockSize + 100
const make = (extra: Partial<ConstructorParameters<typeof PiecePicker>[0]> = {}) =>
  new PiecePicker({ pieceCount: 5, pieceLength, totalLength, random: () => 0, ...extra })

const bits = (...indexes: Array<number>) => {
  const b = Bitfield.empty(5)
  for (const i of indexes) b.add(i)
  return b
}

const block = (length: number, fill: number) => new Uint8Array(length).fill(fill)

describe("PiecePicker", () => {
  it("picks only pieces the peer has, rarest first, finishing a started piece before starting another", () => {
    const picker = make()
    picker.addPeer("a")
    picker.addPeer("b")
    picker.setBitfield("a", bits(0, 1, 2))
    picker.setBitfield("b", bits(0, 1))
    // Piece 2 is the rarest of a's pieces (1 holder).
    const first = picker.pick("a", 1, 0)
    expect(first).toEqual([{ index: 2, begin: 0, length: blockSize }])
    // The next request continues piece 2 before a new piece starts.
    expect(picker.pick("a", 1, 0)).toEqual([{ index: 2, begin: blockSize, length: blockSize }])
    const more = picker.pick("b", 10, 0)
    expect(new Set(more.map((r) => r.index))).toEqual(new Set([0, 1]))
    expect(more).toHaveLength(4)
  })

  it("sequential mode picks in index order", () => {
    const picker = make({ sequential: true })
    picker.addPeer("a")
    picker.setBitfield("a", bits(4, 3, 1))
    expect(picker.pick("a", 3, 0).map((r) => r.index)).toEqual([1, 1, 3])
  })

  it("gives the last block of the last piece its short length", () => {
    const picker = make()
    picker.addPeer("a")
    picker.setBitfield("a", bits(4))
    expect(picker.pick("a", 5, 0)).toEqual([
      { index: 4, begin: 0, length: blockSize },
      { index: 4, begin: blockSize, length: 100 }
    ])
  })

  it("completes a piece only when every block is in, and ignores unsolicited or malformed blocks", () => {
    const picker = make()
    picker.addPeer("a")
    picker.setBitfield("a", bits(0))
    picker.pick("a", 2, 0)
    expect(picker.receive("a", 3, 0, block(blockSize, 1)).accepted).toBe(false) // piece never requested
    expect(picker.receive("a", 0, 5, block(blockSize, 1)).accepted).toBe(false) // unaligned offset
    expect(picker.receive("a", 0, 0, block(blockSize + 1, 1)).accepted).toBe(false) // oversized
    picker.addPeer("b")
    expect(picker.receive("b", 0, 0, block(blockSize, 1)).accepted).toBe(false) // not asked of b
    const firstHalf = picker.receive("a", 0, 0, block(blockSize, 1))
    expect(firstHalf).toMatchObject({ accepted: true, completed: undefined })
    expect(picker.receive("a", 0, 0, block(blockSize, 9)).accepted).toBe(false) // duplicate
    const done = picker.receive("a", 0, blockSize, block(blockSize, 2)).completed!
    expect(done.index).toBe(0)
    expect(done.data[0]).toBe(1)
    expect(done.data[blockSize]).toBe(2)
    expect([...done.contributors]).toEqual(["a"])
    expect(picker.isComplete).toBe(false)
  })

  it("counts a piece as done only once verified; a failed piece is fetched again", () => {
    const picker = make({ wanted: bits(1) })
    picker.addPeer("a")
    picker.setBitfield("a", bits(0, 1))
    const requests = picker.pick("a", 10, 0)
    expect(requests.map((r) => r.index)).toEqual([1, 1])
    for (const r of requests) picker.receive("a", r.index, r.begin, block(r.length, 0))
    expect(picker.pick("a", 10, 0)).toEqual([]) // verifying: not picked again
    picker.failed(1)
    expect(picker.pick("a", 10, 0).map((r) => r.index)).toEqual([1, 1])
    expect(picker.isComplete).toBe(false)
    picker.verified(1)
    expect(picker.isComplete).toBe(true)
  })

  it("hands blocks back on choke, on timeout and when a peer leaves", () => {
    const picker = make()
    picker.addPeer("a")
    picker.addPeer("b")
    picker.setBitfield("a", bits(0))
    picker.setBitfield("b", bits(0))
    expect(picker.pick("a", 2, 100)).toHaveLength(2)
    // Piece 0 is fully requested by a; b can only duplicate (endgame).
    expect(picker.release("a")).toBe(2)
    expect(picker.outstandingCount("a")).toBe(0)
    expect(picker.pick("b", 1, 200)).toEqual([{ index: 0, begin: 0, length: blockSize }])
    expect(picker.expire("b", 150)).toBe(0)
    expect(picker.expire("b", 250)).toBe(1)
    expect(picker.pick("a", 2, 300)).toHaveLength(2)
    picker.removePeer("a")
    expect(picker.pick("b", 2, 400)).toHaveLength(2)
  })

  it("endgame: duplicates outstanding blocks to another peer and cancels the loser", () => {
    const picker = make({ wanted: bits(2) })
    picker.addPeer("a")
    picker.addPeer("b")
    picker.setBitfield("a", bits(2))
    picker.setBitfield("b", bits(2))
    expect(picker.pick("a", 2, 0)).toHaveLength(2)
    const dup = picker.pick("b", 5, 0)
    expect(dup).toHaveLength(2)
    const outcome = picker.receive("b", 2, 0, block(blockSize, 3))
    expect(outcome.cancels).toEqual([{ peer: "a", index: 2, begin: 0, length: blockSize }])
    expect(picker.outstandingCount("a")).toBe(1)
    // The late copy from a is ignored.
    expect(picker.receive("a", 2, 0, block(blockSize, 4)).accepted).toBe(false)
  })

  it("tracks availability through haves and departures, and interest", () => {
    const picker = make({ have: bits(0) })
    picker.addPeer("a")
    expect(picker.isInteresting("a")).toBe(false)
    expect(picker.addHave("a", 0)).toBe(true)
    expect(picker.isInteresting("a")).toBe(false) // we have piece 0 already
    expect(picker.addHave("a", 7)).toBe(false) // out of range
    picker.addHave("a", 3)
    expect(picker.isInteresting("a")).toBe(true)
    expect(picker.piecesLeft).toBe(4)
    expect(picker.bytesLeft).toBe(totalLength - pieceLength)
  })

  it("records the sender of every block", () => {
    const picker = make({ wanted: bits(0) })
    picker.addPeer("a")
    picker.addPeer("b")
    picker.setBitfield("a", bits(0))
    picker.setBitfield("b", bits(0))
    const [first] = picker.pick("a", 1, 0)
    const [second] = picker.pick("b", 1, 0)
    picker.receive("b", second!.index, second!.begin, block(second!.length, 2))
    const done = picker.receive("a", first!.index, first!.begin, block(first!.length, 1)).completed!
    expect(done.senders).toEqual(["a", "b"])
    expect(new Set(done.contributors)).toEqual(new Set(["a", "b"]))
  })

  it("reject hands back exactly the one block named, and nothing for a block not owed", () => {
    const picker = make()
    picker.addPeer("a")
    picker.setBitfield("a", bits(0))
    picker.pick("a", 2, 0)
    expect(picker.reject("a", 0, blockSize, blockSize - 1)).toBe(false) // wrong length
    expect(picker.reject("a", 1, 0, blockSize)).toBe(false) // never asked
    expect(picker.reject("a", 0, blockSize, blockSize)).toBe(true)
    expect(picker.reject("a", 0, blockSize, blockSize)).toBe(false) // already handed back
    expect(picker.outstandingCount("a")).toBe(1)
    expect(picker.pick("a", 2, 1)).toEqual([{ index: 0, begin: blockSize, length: blockSize }])
  })

  const failOnce = (picker: PiecePicker, peer: string, index: number) => {
    for (const r of picker.pick(peer, 10, 0)) picker.receive(peer, r.index, r.begin, block(r.length, 0))
    picker.failed(index)
  }

  it("a failed piece is on parole: fetched from the one peer that takes its first block, until it verifies", () => {
    const picker = make({ wanted: bits(0) })
    for (const p of ["a", "b", "c"]) {
      picker.addPeer(p)
      picker.setBitfield(p, bits(0))
    }
    failOnce(picker, "a", 0)
    expect(picker.isOnParole(0)).toBe(true)
    expect(picker.pick("b", 1, 1)).toEqual([{ index: 0, begin: 0, length: blockSize }])
    // Neither a fresh block nor an endgame duplicate goes to anyone else; the owner gets the rest.
    expect(picker.pick("c", 10, 1)).toEqual([])
    expect(picker.pick("a", 10, 1)).toEqual([])
    expect(picker.pick("b", 10, 1)).toEqual([{ index: 0, begin: blockSize, length: blockSize }])
    picker.receive("b", 0, 0, block(blockSize, 1))
    const done = picker.receive("b", 0, blockSize, block(blockSize, 1)).completed!
    expect(done.senders).toEqual(["b", "b"])
    picker.verified(0)
    expect(picker.isOnParole(0)).toBe(false)
  })

  it("a piece failed with parole off restarts open to every peer", () => {
    const picker = make({ wanted: bits(0) })
    for (const p of ["a", "b"]) {
      picker.addPeer(p)
      picker.setBitfield(p, bits(0))
    }
    for (const r of picker.pick("a", 10, 0)) picker.receive("a", r.index, r.begin, block(r.length, 0))
    picker.failed(0, { parole: false })
    expect(picker.isOnParole(0)).toBe(false)
    expect(picker.pick("a", 1, 1)).toHaveLength(1)
    expect(picker.pick("b", 1, 1)).toHaveLength(1)
  })

  it("a parole piece goes to a new owner when its owner chokes or leaves", () => {
    const picker = make({ wanted: bits(0) })
    for (const p of ["a", "b", "c"]) {
      picker.addPeer(p)
      picker.setBitfield(p, bits(0))
    }
    failOnce(picker, "a", 0)
    expect(picker.pick("b", 1, 1)).toHaveLength(1)
    picker.release("b")
    expect(picker.pick("c", 1, 2)).toHaveLength(1)
    expect(picker.pick("b", 10, 2)).toEqual([])
    picker.removePeer("c")
    expect(picker.pick("a", 10, 3)).toHaveLength(2)
  })

  it("a parole piece goes to a new owner once its owner has none of its blocks outstanding", () => {
    const picker = make({ wanted: bits(0) })
    for (const p of ["a", "b"]) {
      picker.addPeer(p)
      picker.setBitfield(p, bits(0))
    }
    failOnce(picker, "a", 0)
    const [r1, r2] = picker.pick("a", 2, 10)
    expect(picker.reject("a", r1!.index, r1!.begin, r1!.length)).toBe(true)
    expect(picker.pick("b", 10, 11)).toEqual([]) // a still owes a block of it
    expect(picker.expire("a", 11)).toBe(1)
    expect(picker.pick("b", 10, 12).map((r) => r.begin)).toEqual([r1!.begin, r2!.begin])
  })

  it("picks only allowed-fast pieces when given them", () => {
    const picker = make()
    picker.addPeer("a")
    picker.setBitfield("a", bits(0, 1, 2, 3))
    expect(picker.pick("a", 10, 0, new Set([3, 4, 9]))).toEqual([
      { index: 3, begin: 0, length: blockSize },
      { index: 3, begin: blockSize, length: blockSize }
    ])
    expect(picker.pick("a", 10, 0, new Set([3]))).toEqual([])
    expect(picker.pick("a", 1, 0).map((r) => r.index)).not.toContain(3)
  })

  it("starts a suggested piece first, the most recent suggestion first, and forgets old ones", () => {
    const picker = make({ sequential: true })
    picker.addPeer("a")
    picker.setBitfield("a", bits(0, 1, 2, 3, 4))
    picker.suggest("a", 2)
    picker.suggest("a", 3)
    expect(picker.pick("a", 2, 0).map((r) => r.index)).toEqual([3, 3])
    expect(picker.pick("a", 2, 0).map((r) => r.index)).toEqual([2, 2])
    expect(picker.pick("a", 2, 0).map((r) => r.index)).toEqual([0, 0])
    // Of five suggestions the last four are kept: the oldest, 7, waits for its turn in order.
    const bounded = new PiecePicker({ pieceCount: 8, pieceLength: blockSize, totalLength: 8 * blockSize, sequential: true })
    bounded.addPeer("a")
    bounded.setBitfield("a", Bitfield.full(8))
    for (const i of [7, 6, 5, 4, 3]) bounded.suggest("a", i)
    expect(bounded.pick("a", 100, 0).map((r) => r.index)).toEqual([3, 4, 5, 6, 0, 1, 2, 7])
  })
})
