import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { ByteQueue } from "../../src/domain/ByteQueue.js"
import { concatBytes } from "../../src/domain/Bytes.js"

type Op =
  | { readonly _tag: "Push"; readonly bytes: Uint8Array }
  | { readonly _tag: "Take"; readonly n: number }
  | { readonly _tag: "Chunk" }
  | { readonly _tag: "Copy"; readonly n: number; readonly offset: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ _tag: fc.constant("Push" as const), bytes: fc.uint8Array({ maxLength: 50 }) }),
  fc.record({ _tag: fc.constant("Take" as const), n: fc.integer({ min: 0, max: 120 }) }),
  fc.constant({ _tag: "Chunk" as const }),
  fc.record({ _tag: fc.constant("Copy" as const), n: fc.integer({ min: 0, max: 120 }), offset: fc.integer({ min: 0, max: 10 }) })
)

describe("ByteQueue", () => {
  it("gives back the bytes pushed, in order, whatever the sizes taken", () =>
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 2000 }), (ops) => {
        const queue = new ByteQueue()
        let model: Uint8Array = new Uint8Array(0)
        for (const op of ops) {
          if (op._tag === "Push") {
            queue.push(op.bytes)
            model = concatBytes([model, op.bytes])
          } else if (op._tag === "Take") {
            const n = Math.min(op.n, model.length)
            expect([...queue.take(n)]).toEqual([...model.subarray(0, n)])
            model = model.subarray(n)
          } else if (op._tag === "Chunk") {
            const chunk = queue.takeChunk()
            if (model.length === 0) expect(chunk).toBeUndefined()
            else {
              expect(chunk!.length).toBeGreaterThan(0)
              expect([...chunk!]).toEqual([...model.subarray(0, chunk!.length)])
              model = model.subarray(chunk!.length)
            }
          } else {
            const n = Math.min(op.n, model.length)
            const out = new Uint8Array(n + op.offset)
            queue.copyInto(out, op.offset, n)
            expect([...out.subarray(op.offset)]).toEqual([...model.subarray(0, n)])
            model = model.subarray(n)
          }
          expect(queue.length).toBe(model.length)
        }
      }),
      { numRuns: 60 }
    ))

  it("empties on clear", () => {
    const queue = new ByteQueue()
    queue.push(Uint8Array.of(1, 2, 3))
    queue.clear()
    expect(queue.length).toBe(0)
    expect(queue.takeChunk()).toBeUndefined()
  })
})
