/**
 * `GET /api/v1/events`: the session's events as Server-Sent Events. A follower first gets a
 * `snapshot` (every torrent and the session's totals, sent once it is subscribed: nothing after
 * it is missed), then each event as `event: <tag>`, a `stats` event every so often, and a comment
 * line between them so that an idle connection stays open. Each follower has a bounded backlog: one
 * that reads too slowly loses its oldest events, the daemon's memory does not grow. The stream ends
 * when the follower goes (the server interrupts it) or when the session closes.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Duration, Effect, Ref, Schedule, Stream } from "effect"
import { sseComment, sseEvent } from "../../domain/RestApi.js"
import type { SessionEvent, SessionService } from "../Session.js"
import type { DaemonSettingsService } from "./DaemonSettings.js"
import { eventData, sessionView, torrentView } from "./RestViews.js"

export interface EventStreamOptions {
  readonly statsEvery: Duration.DurationInput
  readonly heartbeatEvery: Duration.DurationInput
  /** Frames kept for a follower that reads slower than they come. */
  readonly backlog: number
}

export const defaultEventStreamOptions: EventStreamOptions = { statsEvery: "1 second", heartbeatEvery: "15 seconds", backlog: 256 }

/** Every piece has one; Progress says the same at a pace a page can follow. */
const forwarded = (event: SessionEvent) => event._tag !== "PieceVerified"

const encoder = new TextEncoder()

const stats = (session: SessionService, settings: DaemonSettingsService) =>
  Effect.all([session.list, Ref.get(settings.downloadDirectory), Clock.currentTimeMillis]).pipe(
    Effect.map(([torrents, directory, now]) => ({ torrents, session: sessionView(torrents, settings, directory, session.port, now) }))
  )

/** The frames of one follower, from its subscription on. */
export const eventFrames = (
  session: SessionService,
  settings: DaemonSettingsService,
  options: EventStreamOptions = defaultEventStreamOptions
): Stream.Stream<string> =>
  Stream.unwrapScoped(Effect.map(session.subscribe, (events) => {
    const snapshot = Stream.fromEffect(Effect.map(stats(session, settings), (s) =>
      sseEvent("snapshot", { torrents: s.torrents.map(torrentView), session: s.session })))
    const sessionEvents = events.pipe(Stream.filter(forwarded), Stream.map((event) => sseEvent(event._tag, eventData(event))))
    const statsEvents = Stream.fromSchedule(Schedule.spaced(options.statsEvery)).pipe(
      Stream.mapEffect(() => Effect.map(stats(session, settings), (s) => sseEvent("stats", s.session))))
    const heartbeats = Stream.fromSchedule(Schedule.spaced(options.heartbeatEvery)).pipe(Stream.as(sseComment("heartbeat")))
    // The session's events end the stream (when it closes); the ticks never would.
    const live = Stream.merge(sessionEvents, Stream.merge(statsEvents, heartbeats), { haltStrategy: "left" })
    return Stream.concat(snapshot, live)
  })).pipe(Stream.buffer({ capacity: options.backlog, strategy: "sliding" }))

export const eventStreamResponse = (session: SessionService, settings: DaemonSettingsService, options?: EventStreamOptions) =>
  HttpServerResponse.stream(eventFrames(session, settings, options).pipe(Stream.map((frame) => encoder.encode(frame))), {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
  })
