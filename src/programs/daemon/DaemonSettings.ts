/**
 * What the daemon's front ends read and change beside the session itself: the folder new torrents
 * go to, the session-wide speed limits (shared by every torrent), facts about the daemon, and
 * whether it was asked to shut down.
 */
import { Context, Deferred, Effect, Ref } from "effect"
import { makeRateLimits, type RateLimits } from "../torrent/RateLimiter.js"

export interface DaemonSettingsService {
  /** Where a torrent goes when it is added without a folder of its own. */
  readonly downloadDirectory: Ref.Ref<string>
  /** Every torrent's bytes count against these (`RateLimiter.set` changes them as torrents run). */
  readonly limits: RateLimits
  readonly startedAtMs: number
  readonly version: string
  /** What the session was started with, for front ends that show it. */
  readonly session: DaemonSessionFacts
  /** Done when a front end asks the daemon to shut down (Transmission's `session-close`). */
  readonly closeRequested: Deferred.Deferred<void>
}

export interface DaemonSessionFacts {
  readonly maxConnections: number
  readonly maxPeersPerTorrent: number
  readonly dht: boolean
  readonly encryption: string
}

export class DaemonSettings extends Context.Tag("bt/DaemonSettings")<DaemonSettings, DaemonSettingsService>() {}

export const makeDaemonSettings = (initial: {
  readonly downloadDirectory: string
  readonly downloadRate?: number | undefined
  readonly uploadRate?: number | undefined
  readonly version: string
  readonly session: DaemonSessionFacts
}): Effect.Effect<DaemonSettingsService> =>
  Effect.gen(function* () {
    return {
      downloadDirectory: yield* Ref.make(initial.downloadDirectory),
      limits: yield* makeRateLimits({ download: initial.downloadRate, upload: initial.uploadRate }),
      startedAtMs: yield* Effect.clockWith((clock) => clock.currentTimeMillis),
      version: initial.version,
      session: initial.session,
      closeRequested: yield* Deferred.make<void>()
    }
  })
