/**
 * `GET /metrics`: the daemon in Prometheus's text format, from Effect's metrics. Counters follow
 * the session's events as they happen (pieces verified, errors); gauges are set from the
 * session's torrents and its DHT node when a scrape asks, so they are never stale.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Metric, MetricState, Option, type Scope, Stream } from "effect"
import type * as MetricPair from "effect/MetricPair"
import { contentType, type MetricSample, render } from "../../domain/PrometheusText.js"
import { Session, type SessionService, type TorrentStatus } from "../Session.js"

const piecesVerified = Metric.counter("bt_pieces_verified_total", { description: "Pieces verified and written since the daemon started", incremental: true })
const torrentErrors = Metric.counter("bt_torrent_errors_total", { description: "Torrents stopped by an error since the daemon started", incremental: true })
const stateFileErrors = Metric.counter("bt_state_file_errors_total", { description: "State files that could not be used", incremental: true })

const downloadRate = Metric.gauge("bt_download_rate_bytes", { description: "Payload bytes per second received, all torrents" })
const uploadRate = Metric.gauge("bt_upload_rate_bytes", { description: "Payload bytes per second sent, all torrents" })
const downloaded = Metric.gauge("bt_downloaded_bytes", { description: "Payload bytes received by the session's torrents" })
const uploaded = Metric.gauge("bt_uploaded_bytes", { description: "Payload bytes sent by the session's torrents" })
const wasted = Metric.gauge("bt_wasted_bytes", { description: "Bytes of pieces that failed their hash check" })
const verified = Metric.gauge("bt_verified_bytes", { description: "Bytes of verified pieces, all torrents" })
const peers = Metric.gauge("bt_peers", { description: "Connected peers, all torrents" })
const piecesDone = Metric.gauge("bt_pieces_done", { description: "Verified pieces, all torrents" })
const piecesTotal = Metric.gauge("bt_pieces", { description: "Pieces, all torrents whose metadata is known" })
const torrents = Metric.gauge("bt_torrents", { description: "Torrents in the session, by status" })
const dhtNodes = Metric.gauge("bt_dht_nodes", { description: "Nodes in the DHT routing table" })

const statuses: ReadonlyArray<TorrentStatus> = ["metadata", "queued", "checking", "downloading", "seeding", "paused", "finished", "error"]

/** Counts the session's events into the counters until the scope closes. */
export const countEvents = (session: SessionService): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const events = yield* session.subscribe
    yield* events.pipe(
      Stream.runForEach((event) => {
        switch (event._tag) {
          case "PieceVerified":
            return Metric.increment(piecesVerified)
          case "Error":
            return Metric.increment(torrentErrors)
          case "StateFileUnusable":
            return Metric.increment(stateFileErrors)
          default:
            return Effect.void
        }
      }),
      Effect.forkScoped
    )
  })

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

/** Sets every gauge from what the session says now. */
const setGauges = (session: SessionService) =>
  Effect.gen(function* () {
    const list = yield* session.list
    yield* Metric.set(downloadRate, sum(list.map((t) => t.downloadRate)))
    yield* Metric.set(uploadRate, sum(list.map((t) => t.uploadRate)))
    yield* Metric.set(downloaded, sum(list.map((t) => t.downloadedBytes)))
    yield* Metric.set(uploaded, sum(list.map((t) => t.uploadedBytes)))
    yield* Metric.set(wasted, sum(list.map((t) => t.wastedBytes)))
    yield* Metric.set(verified, sum(list.map((t) => t.verifiedBytes)))
    yield* Metric.set(peers, sum(list.map((t) => t.peers)))
    yield* Metric.set(piecesDone, sum(list.map((t) => t.piecesDone)))
    yield* Metric.set(piecesTotal, sum(list.map((t) => t.piecesTotal)))
    for (const status of statuses) {
      yield* Metric.set(Metric.tagged(torrents, "status", status), list.filter((t) => t.status === status).length)
    }
    if (session.dht !== undefined) yield* Metric.set(dhtNodes, (yield* session.dht.stats).nodes)
  })

/** Effect's counters and gauges as samples (its other kinds are not exported). */
const samplesOf = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): ReadonlyArray<MetricSample> =>
  pairs.flatMap((pair): ReadonlyArray<MetricSample> => {
    const { name, tags } = pair.metricKey
    const help = Option.getOrElse(pair.metricKey.description, () => name)
    const labels = tags.map((t) => [t.key, t.value] as const)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) return [{ name, help, type: "counter", labels, value: Number(state.count) }]
    if (MetricState.isGaugeState(state)) return [{ name, help, type: "gauge", labels, value: Number(state.value) }]
    return []
  }).sort((a, b) => a.name.localeCompare(b.name))

export const metricsRoutes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/metrics",
    Effect.gen(function* () {
      yield* setGauges(yield* Session)
      const text = render(samplesOf(yield* Metric.snapshot))
      return HttpServerResponse.text(text, { contentType })
    })
  )
)
