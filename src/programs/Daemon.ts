/**
 * The daemon: a session of many torrents that persists in a state folder, driven over HTTP
 * (`daemon/DaemonRoutes.ts` lists the front ends) until its scope closes; the session saves its
 * torrents as they change, so a kill loses at most what a write had not finished.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Deferred, Effect, Layer, type Scope } from "effect"
import type { StateStoreService } from "../services/StateStore.js"
import { type DaemonAddress, type DaemonHttpOptions, type DaemonListenError, serve } from "./daemon/DaemonServer.js"
import { DaemonSettings, makeDaemonSettings } from "./daemon/DaemonSettings.js"
import { daemonRoutes } from "./daemon/DaemonRoutes.js"
import { countEvents } from "./daemon/Metrics.js"
import { make as makeSession, Session, sessionDefaults, type SessionOptions, type SessionService, type SessionServices } from "./Session.js"
import type { ListenError } from "../services/Transport.js"

export interface DaemonOptions {
  readonly http: DaemonHttpOptions
  /** The session's options; its torrents' speed limits are the daemon's (changed over RPC). */
  readonly session: Omit<SessionOptions, "stateStore">
  readonly stateStore: StateStoreService
  /** Session-wide limits at start, bytes per second. */
  readonly downloadRate?: number
  readonly uploadRate?: number
  readonly version: string
}

export interface RunningDaemon {
  readonly address: DaemonAddress
  readonly session: SessionService
  /** Waits until a front end asks the daemon to shut down, and its answer has had time to leave. */
  readonly closeRequested: Effect.Effect<void>
}

/** How long the answer to `session-close` gets before the daemon's scope closes its connections. */
const closeGrace = "250 millis"

/** Starts the session and serves its API in the current scope; closing the scope stops both. */
export const start = (options: DaemonOptions): Effect.Effect<RunningDaemon, DaemonListenError | ListenError, SessionServices | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const settings = yield* makeDaemonSettings({
      downloadDirectory: options.session.downloadDirectory,
      downloadRate: options.downloadRate,
      uploadRate: options.uploadRate,
      version: options.version,
      session: {
        maxConnections: options.session.maxConnections ?? sessionDefaults.maxConnections,
        maxPeersPerTorrent: options.session.maxPeersPerTorrent ?? sessionDefaults.maxPeersPerTorrent,
        dht: options.session.dht !== undefined,
        encryption: options.session.encryption ?? "allow"
      }
    })
    const session = yield* makeSession({
      ...options.session,
      stateStore: options.stateStore,
      torrent: { ...options.session.torrent, rateLimits: [...(options.session.torrent?.rateLimits ?? []), settings.limits] }
    })
    yield* countEvents(session)
    const address = yield* serve(daemonRoutes, options.http).pipe(
      Effect.provide(Layer.mergeAll(Layer.succeed(Session, session), Layer.succeed(DaemonSettings, settings)))
    )
    return { address, session, closeRequested: Effect.delay(Deferred.await(settings.closeRequested), closeGrace) }
  })
