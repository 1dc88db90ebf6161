/**
 * The verify-and-write stage: a completed piece is hashed, and only a piece that matches its
 * hash is written and counts. A failed piece is fetched again from one peer alone (parole), and
 * when a copy verifies, the senders of the blocks that differed in the failed copy are banned:
 * a peer is only ever banned on evidence against its own blocks, never on shared blame.
 */
import { Deferred, Effect } from "effect"
import { BadPieceAttribution } from "../../domain/BadPieceAttribution.js"
import { hasPadding, paddingIsZero } from "../../domain/Padding.js"
import type { CompletedPiece } from "../../domain/PiecePicker.js"
import { Message } from "../../domain/Wire.js"
import type { Hasher } from "../../services/Hasher.js"
import type { StorageError } from "../../services/Storage.js"
import { pieceVerified } from "./Streaming.js"
import type { PieceSink } from "./Torrent.js"
import { TorrentEvent } from "./TorrentEvent.js"
import { endSession, type TorrentState } from "./TorrentState.js"

export interface Verifier {
  readonly verify: (piece: CompletedPiece) => Effect.Effect<void, StorageError>
}

export const makeVerifier = (state: TorrentState, hasher: Hasher["Type"], sink: PieceSink): Verifier => {
  const attribution = new BadPieceAttribution()
  // BEP 47: padding is stored as nothing and served as zeros, so only zeros may be accepted for it.
  const padded = hasPadding(state.info)

  const ban = (peer: string) =>
    Effect.suspend(() => {
      if (state.banned.has(peer)) return Effect.void
      state.banned.add(peer)
      const s = state.sessions.get(peer)
      if (s !== undefined) {
        state.banned.add(s.identity)
        endSession(s, "banned: it sent data that failed the hash check", false)
      }
      return state.emit(TorrentEvent.PeerBanned({ peer }))
    })

  const rejected = (piece: CompletedPiece) =>
    Effect.gen(function* () {
      const { picker } = state
      const convicted = attribution.failed(piece)
      picker.failed(piece.index)
      picker.recycle(piece.data)
      state.counters.wasted += piece.data.length
      yield* state.emit(TorrentEvent.PieceRejected({ index: piece.index, peers: [...piece.contributors], bytes: piece.data.length }))
      yield* Effect.forEach(convicted, ban, { discard: true })
    })

  const completeIfDone = Effect.suspend(() => (state.picker.isComplete ? Deferred.succeed(state.completed, undefined) : Effect.void))
  /** After a verified piece's event: the bans it proves, then the end once every wanted piece is in. */
  const settle = (convicted: ReadonlySet<string>) =>
    convicted.size === 0 ? completeIfDone : Effect.zipRight(Effect.forEach(convicted, ban, { discard: true }), completeIfDone)

  // Plain flatMaps, not a generator, and no forEach over nobody: it runs for every piece (about
  // half of the verify stage's Effect steps went to the generator and empty forEach calls).
  const accepted = (piece: CompletedPiece) => {
    const convicted = attribution.convict(piece.index, piece.data)
    return Effect.flatMap(sink.writePiece(piece.index, piece.data), () => {
      const { picker, counters } = state
      picker.verified(piece.index)
      pieceVerified(state.streaming, piece.index)
      picker.recycle(piece.data)
      counters.verifiedBytes += piece.data.length
      counters.lastVerifiedAt = state.now()
      // Have suppression: a peer that has the piece does not need to hear of ours.
      if (state.uploader.have.has(piece.index)) {
        for (const s of state.sessions.values()) {
          if (picker.peerHas(s.key)?.has(piece.index) !== true) s.outbox.push(Message.have(piece.index))
        }
      }
      return Effect.zipRight(state.emit(TorrentEvent.PieceVerified({ index: piece.index })), settle(convicted))
    })
  }

  return {
    verify: (piece) =>
      Effect.flatMap(hasher.verifyPiece(state.info, piece.index, piece.data), (ok) =>
        ok && (!padded || paddingIsZero(state.info, piece.index, piece.data)) ? accepted(piece) : rejected(piece))
  }
}
