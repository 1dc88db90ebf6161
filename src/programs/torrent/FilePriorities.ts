/**
 * A running torrent's file selection changed (issue 13's `torrent-set files-wanted`, a library
 * user): newly wanted files are created first, then the picker fetches the new set of pieces at
 * the new tiers. A torrent whose wanted pieces are now all verified completes.
 */
import { Deferred, Effect } from "effect"
import { checkPriorities, type FilePriority, type FileSelectionError, piecePlan, wantedFiles } from "../../domain/FileSelection.js"
import type { StorageError, TorrentStorage } from "../../services/Storage.js"
import type { TorrentState } from "./TorrentState.js"

export const applyFilePriorities = (
  state: TorrentState,
  storage: Partial<Pick<TorrentStorage, "setWanted">>,
  priorities: ReadonlyArray<FilePriority>
): Effect.Effect<void, FileSelectionError | StorageError> =>
  Effect.gen(function* () {
    const { info, picker } = state
    const checked = yield* checkPriorities(info, priorities)
    if (storage.setWanted !== undefined) yield* storage.setWanted(wantedFiles(info, checked))
    const plan = piecePlan(info, checked)
    picker.setWanted(plan.wanted, plan.tiers)
    state.counters.verifiedBytes = picker.bytesWanted - picker.bytesLeft
    if (picker.isComplete) yield* Deferred.succeed(state.completed, undefined)
  })
