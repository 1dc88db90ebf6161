/** Streaming windows: the deadline order of the union of open streams' read-ahead windows. */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { deadlineOrder, type PieceWindow, readAheadWindow, StreamWindows } from "../../src/domain/StreamWindows.js"

const windowArb = fc.tuple(fc.nat(60), fc.nat(12)).map(([first, span]): PieceWindow => ({ first, last: first + span }))

/** A stream's life as the session drives it: opened, moved on (a read or a seek), closed. */
type Step =
  | { readonly op: "open"; readonly window: PieceWindow }
  | { readonly op: "move"; readonly stream: number; readonly window: PieceWindow }
  | { readonly op: "close"; readonly stream: number }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  windowArb.map((window) => ({ op: "open" as const, window })),
  fc.tuple(fc.nat(10), windowArb).map(([stream, window]) => ({ op: "move" as const, stream, window })),
  fc.nat(10).map((stream) => ({ op: "close" as const, stream }))
)

describe("StreamWindows", () => {
  it("interleaves windows by distance from their heads, the older stream first on a tie", () => {
    expect(deadlineOrder([{ first: 10, last: 13 }, { first: 50, last: 51 }])).toEqual([10, 50, 11, 51, 12, 13])
    // Overlapping windows: a piece is listed once, at its earliest deadline.
    expect(deadlineOrder([{ first: 0, last: 3 }, { first: 2, last: 4 }])).toEqual([0, 2, 1, 3, 4])
    expect(deadlineOrder([])).toEqual([])
  })

  it("a read's window starts at the piece under the head and stops at the range's end", () => {
    expect(readAheadWindow(100, 250, 10_000, 1000)).toEqual({ first: 2, last: 12 })
    expect(readAheadWindow(100, 250, 420, 1000)).toEqual({ first: 2, last: 4 })
    // The last byte of the range is read: its piece is in the window.
    expect(readAheadWindow(100, 420, 420, 1000)).toEqual({ first: 4, last: 4 })
  })

  it.prop("the order holds each window's pieces once, heads first, by earliest deadline", [fc.array(windowArb, { maxLength: 6 })], ([windows]) => {
    const order = deadlineOrder(windows)
    const union = new Set(windows.flatMap((w) => Array.from({ length: w.last - w.first + 1 }, (_, k) => w.first + k)))
    expect(new Set(order)).toEqual(union)
    expect(order.length).toBe(union.size)
    const heads = new Set(windows.map((w) => w.first))
    expect(new Set(order.slice(0, heads.size))).toEqual(heads)
    // A piece's deadline: its distance from the nearest head behind it among the windows holding it.
    const deadline = (p: number) => Math.min(...windows.filter((w) => p >= w.first && p <= w.last).map((w) => p - w.first))
    for (let k = 1; k < order.length; k++) expect(deadline(order[k]!)).toBeGreaterThanOrEqual(deadline(order[k - 1]!))
    if (windows.length === 1) expect(order).toEqual([...order].sort((a, b) => a - b))
  })

  it.prop("over any history of opens, moves and closes, the order is that of the windows still open", [fc.array(stepArb, { maxLength: 40 })], ([steps]) => {
    const windows = new StreamWindows()
    // The model: the live streams and their windows, in the order they were opened.
    const model = new Map<number, PieceWindow>()
    const ids: Array<number> = []
    for (const step of steps) {
      if (step.op === "open") {
        const id = windows.open(step.window)
        ids.push(id)
        model.set(id, step.window)
      } else {
        const id = ids[step.stream]
        if (id === undefined) continue
        if (step.op === "move") {
          windows.move(id, step.window)
          if (model.has(id)) model.set(id, step.window)
        } else {
          windows.close(id)
          model.delete(id)
        }
      }
      expect(windows.order).toEqual(deadlineOrder([...model.values()]))
      expect(windows.size).toBe(model.size)
    }
    for (const id of ids) windows.close(id)
    expect(windows.order).toEqual([])
  })
})
