/**
 * Fetching the piece layers a magnet's v2 info dict lacks (BEP 52): the `hash request`s to send,
 * a few at a time, and each answer checked against its file's `pieces root` before it is kept.
 * A peer whose answer does not prove out, or that refuses, is done with: another may be asked.
 */
import { Data, Either } from "effect"
import * as Bencode from "./Bencode.js"
import { toHex } from "./Bytes.js"
import { type HashRange, type HashReject, type Hashes } from "./HashRequest.js"
import { pieceLayerRequests, treeHeight, verifyAnswer } from "./MerkleProof.js"
import type { FileLayer } from "./PieceLayers.js"

export class LayerFetchError extends Data.TaggedError("LayerFetchError")<{
  /** `Rejected`: a hash reject; `BadHashes`: an answer that does not hash up to the file's root. */
  readonly reason: "Rejected" | "BadHashes"
  readonly detail: string
}> {
  override get message() {
    return this.detail
  }
}

interface Pending {
  readonly range: HashRange
  readonly file: FileLayer
  readonly chunks: Array<ReadonlyArray<Uint8Array>>
  readonly position: number
}

const keyOf = (r: HashRange): string => `${Bencode.bytesToKey(r.piecesRoot)}/${r.baseLayer}/${r.index}/${r.length}/${r.proofLayers}`

const describe = (r: HashRange): string => `hashes ${r.index}+${r.length} of ${toHex(r.piecesRoot)}`

export class LayerFetch {
  private readonly queue: Array<Pending> = []
  private readonly inFlight = new Map<string, Pending>()
  private readonly layers: Array<{ readonly file: FileLayer; readonly chunks: Array<ReadonlyArray<Uint8Array>> }> = []

  constructor(missing: ReadonlyArray<FileLayer>, pieceLength: number) {
    for (const file of missing) {
      const chunks: Array<ReadonlyArray<Uint8Array>> = []
      this.layers.push({ file, chunks })
      pieceLayerRequests(file.piecesRoot, file.length, pieceLength).forEach((range, position) => this.queue.push({ range, file, chunks, position }))
    }
  }

  /** Requests to send now, keeping at most `window` unanswered. */
  take(window: number): ReadonlyArray<HashRange> {
    const out: Array<HashRange> = []
    while (this.inFlight.size < window && this.queue.length > 0) {
      const next = this.queue.shift()!
      this.inFlight.set(keyOf(next.range), next)
      out.push(next.range)
    }
    return out
  }

  get isComplete(): boolean {
    return this.queue.length === 0 && this.inFlight.size === 0
  }

  /** Takes an answer; one to nothing we asked (or asked already) is ignored. */
  receive(m: Hashes | HashReject): Either.Either<void, LayerFetchError> {
    const pending = this.inFlight.get(keyOf(m))
    if (pending === undefined) return Either.void
    if (m._tag === "HashReject") return Either.left(new LayerFetchError({ reason: "Rejected", detail: `refused ${describe(m)}` }))
    const verified = verifyAnswer(pending.range, m.hashes, treeHeight(pending.file.length))
    if (Either.isLeft(verified)) return Either.left(new LayerFetchError({ reason: "BadHashes", detail: `sent ${describe(m)}, but ${verified.left}` }))
    // Copies: the answer is a view into a received chunk.
    pending.chunks[pending.position] = verified.right.map((h) => new Uint8Array(h))
    this.inFlight.delete(keyOf(m))
    return Either.void
  }

  /** Once complete: each file's piece layer, by pieces root (`Bencode.bytesToKey`). */
  result(): ReadonlyMap<string, ReadonlyArray<Uint8Array>> {
    return new Map(this.layers.map(({ chunks, file }) => [Bencode.bytesToKey(file.piecesRoot), chunks.flat().slice(0, file.hashes.length)]))
  }
}
