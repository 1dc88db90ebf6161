/** Pickers of one-block pieces for the picker's tests, and the order a lone peer fetches pieces in. */
import { Bitfield } from "../../src/domain/Bitfield.js"
import { blockSize, PiecePicker } from "../../src/domain/PiecePicker.js"

/** `count` pieces of `pieceLength` (one block by default), tie-breaks not random. */
export const makePicker = (count: number, extra: Partial<ConstructorParameters<typeof PiecePicker>[0]> = {}, pieceLength = blockSize) =>
  new PiecePicker({ pieceCount: count, pieceLength, totalLength: count * pieceLength, random: () => 0, ...extra })

export const bits = (count: number, indexes: Iterable<number>) => {
  const b = Bitfield.empty(count)
  for (const i of indexes) b.add(i)
  return b
}

/** Takes one new (one-block) piece at a time for `peer` until none is left; gives the order. */
export const pickOrder = (picker: PiecePicker, peer: string) => {
  const order: Array<number> = []
  for (;;) {
    const [request] = picker.pick(peer, 1, 0)
    if (request === undefined) return order
    order.push(request.index)
    picker.receive(peer, request.index, 0, new Uint8Array(blockSize))
    picker.verified(request.index)
  }
}
