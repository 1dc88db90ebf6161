/**
 * The Tracker service: announces to HTTP trackers (BEP 3, 23), UDP trackers (BEP 15) and lists of
 * tiers of them (BEP 12). The wire formats are pure codecs in src/domain/TrackerResponse.ts.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import { Chunk, Clock, Context, Deferred, Duration, Effect, Either, Layer, Option, Queue, Random, Ref, Schedule } from "effect"
import * as Dgram from "node:dgram"
import * as Dns from "node:dns"
import * as Net from "node:net"
import {
  type AnnounceRequest,
  type AnnounceResponse,
  announceUrl,
  decodeUdpResponse,
  encodeUdpAnnounce,
  encodeUdpConnect,
  parseHttpResponse,
  parseUdpUrl,
  TrackerError,
  udpConnectionLifetimeMillis,
  type UdpResponse,
  type UdpTarget,
  udpTransactionId
} from "../domain/TrackerResponse.js"

export { type AnnounceRequest, type AnnounceResponse, TrackerError } from "../domain/TrackerResponse.js"

/** A torrent's trackers as BEP 12 tiers, with the order learnt from earlier announces. */
export interface TrackerTiers {
  readonly announce: (request: AnnounceRequest) => Effect.Effect<AnnounceResponse & { readonly url: string }, TrackerError>
}

export interface TrackerOptions {
  /**
   * When to retransmit an unanswered UDP request: each output of the schedule is one wait before
   * the next retransmission, and the request times out when the schedule ends.
   */
  readonly udpRetransmit?: Schedule.Schedule<unknown>
  /** The whole HTTP announce, request and body (default 15 s). */
  readonly httpTimeout?: Duration.DurationInput
}

/**
 * BEP 15 waits 15 * 2^n seconds, n = 0..8 (about 2 hours in all). We stop after n = 3 (225 s):
 * a tracker silent that long is better skipped for the next one in the tier.
 */
export const defaultUdpRetransmit: Schedule.Schedule<unknown> = Schedule.exponential("15 seconds", 2).pipe(
  Schedule.intersect(Schedule.recurs(4))
)

const defaultHttpTimeout: Duration.DurationInput = "15 seconds"

const randomU32 = Random.nextIntBetween(0, 0xffffffff)

/** A connected UDP socket: `receive` takes the next datagram, or fails once the socket reports an error. */
interface UdpSocket {
  readonly family: 4 | 6
  readonly send: (packet: Uint8Array) => Effect.Effect<void, TrackerError>
  readonly receive: Effect.Effect<Uint8Array, TrackerError>
}

const resolveHost = (url: string, host: string): Effect.Effect<{ readonly address: string; readonly family: 4 | 6 }, TrackerError> => {
  const literal = Net.isIP(host)
  if (literal !== 0) return Effect.succeed({ address: host, family: literal === 6 ? 6 : 4 })
  return Effect.async((resume) =>
    Dns.lookup(host, (cause, address, family) =>
      resume(
        cause
          ? Effect.fail(new TrackerError({ url, reason: "Unreachable", detail: `cannot resolve ${host} (${cause.code ?? cause.message})`, cause }))
          : Effect.succeed({ address, family: family === 6 ? 6 : 4 })
      )
    )
  )
}

const openUdpSocket = (url: string, target: UdpTarget) =>
  Effect.gen(function* () {
    const { address, family } = yield* resolveHost(url, target.host)
    // Sliding: a flood of stray datagrams cannot grow memory; the answer we wait for is the latest one.
    const inbox = yield* Queue.sliding<Uint8Array>(16)
    const failed = yield* Deferred.make<never, TrackerError>()
    const unreachable = (cause: Error & { code?: string }) =>
      new TrackerError({ url, reason: "Unreachable", detail: `${address}:${target.port}: ${cause.code ?? cause.message}`, cause })
    const socket = yield* Effect.acquireRelease(
      Effect.async<Dgram.Socket, TrackerError>((resume) => {
        const socket = Dgram.createSocket(family === 6 ? "udp6" : "udp4")
        socket.on("error", (cause) => Deferred.unsafeDone(failed, Effect.fail(unreachable(cause))))
        socket.on("message", (message) => Queue.unsafeOffer(inbox, new Uint8Array(message.buffer, message.byteOffset, message.byteLength)))
        // Connecting filters out datagrams from other hosts, and makes the kernel report ICMP port-unreachable.
        socket.connect(target.port, address, (cause?: Error) => {
          if (cause === undefined || cause === null) return resume(Effect.succeed(socket))
          socket.close()
          resume(Effect.fail(unreachable(cause)))
        })
      }),
      (socket) => Effect.sync(() => socket.close())
    )
    const udp: UdpSocket = {
      family,
      send: (packet) =>
        Effect.async<void, TrackerError>((resume) =>
          socket.send(packet, (cause) => resume(cause ? Effect.fail(unreachable(cause)) : Effect.void))
        ),
      receive: Effect.raceFirst(Queue.take(inbox), Deferred.await(failed))
    }
    return udp
  })

/** The UDP side's state, kept for the service's lifetime. */
interface UdpState {
  readonly retransmit: Schedule.Schedule<unknown>
  /** BEP 15 `key`: one per client session, so a tracker can tell us apart behind a changing address. */
  readonly key: number
  /** UDP connection ids per `host:port`. */
  readonly connections: Ref.Ref<UdpConnections>
}

/** Connection ids with the time they stop being valid (Clock millis). */
type UdpConnections = ReadonlyMap<string, { readonly id: bigint; readonly expires: number }>

type Announce = Context.Tag.Service<Tracker>["announce"]

const fail = (url: string, reason: TrackerError["reason"], detail: string, cause?: unknown) =>
  Effect.fail(new TrackerError({ url, reason, detail, ...(cause !== undefined ? { cause } : {}) }))

const httpAnnounce = (
  http: HttpClient.HttpClient,
  httpTimeout: Duration.DurationInput,
  url: string,
  request: AnnounceRequest
): Effect.Effect<AnnounceResponse, TrackerError> =>
  Effect.gen(function* () {
    const response = yield* http.get(announceUrl(url, request))
    const body = new Uint8Array(yield* response.arrayBuffer)
    const parsed = parseHttpResponse(body)
    if (response.status < 200 || response.status >= 300) {
      const said = Either.isLeft(parsed) && parsed.left.reason === "Failure" ? `: ${parsed.left.detail}` : ""
      return yield* fail(url, "HttpStatus", `HTTP ${response.status}${said}`)
    }
    if (Either.isLeft(parsed)) return yield* fail(url, parsed.left.reason, parsed.left.detail)
    return parsed.right
  }).pipe(
    Effect.catchTags({
      RequestError: (e) => fail(url, "Unreachable", e.cause instanceof Error ? describeCause(e.cause) : e.message, e),
      ResponseError: (e) => fail(url, "Unreachable", `reading the response: ${e.message}`, e)
    }),
    Effect.timeoutFail({
      duration: httpTimeout,
      onTimeout: () => new TrackerError({ url, reason: "Timeout", detail: `no answer within ${Duration.format(httpTimeout)}` })
    })
  )

/** Waits for the reply to `transactionId`, ignoring datagrams of other transactions. */
const awaitReply = (url: string, socket: UdpSocket, transactionId: number): Effect.Effect<UdpResponse, TrackerError> =>
  Effect.gen(function* () {
    while (true) {
      const packet = yield* socket.receive
      if (udpTransactionId(packet) !== transactionId) continue
      const decoded = decodeUdpResponse(packet, socket.family)
      if (Either.isLeft(decoded)) return yield* fail(url, "Malformed", decoded.left.detail)
      if (decoded.right._tag === "Error") return yield* fail(url, "Failure", decoded.right.message)
      return decoded.right
    }
  })

/** One UDP request/response, retransmitted on the `retransmit` schedule (BEP 15). */
const transact = <Tag extends UdpResponse["_tag"]>(
  retransmit: Schedule.Schedule<unknown>,
  url: string,
  socket: UdpSocket,
  expected: Tag,
  packet: (transactionId: number) => Effect.Effect<Uint8Array, TrackerError>
): Effect.Effect<Extract<UdpResponse, { _tag: Tag }>, TrackerError> =>
  Effect.gen(function* () {
    const transactionId = yield* randomU32
    const driver = yield* Schedule.driver(retransmit)
    for (let attempt = 1; ; attempt++) {
      yield* socket.send(yield* packet(transactionId))
      const reply = yield* Effect.raceFirst(
        Effect.map(awaitReply(url, socket, transactionId), Option.some),
        driver.next(undefined).pipe(
          Effect.as(Option.none<UdpResponse>()),
          Effect.catchAll(() => fail(url, "Timeout", `no ${expected.toLowerCase()} response after ${attempt} attempt(s)`))
        )
      )
      if (Option.isNone(reply)) continue
      if (reply.value._tag !== expected) return yield* fail(url, "Malformed", `a ${reply.value._tag} response to a ${expected} request`)
      return reply.value as Extract<UdpResponse, { _tag: Tag }>
    }
  })

const connectionId = (udp: UdpState, url: string, socket: UdpSocket, peer: string): Effect.Effect<bigint, TrackerError> =>
  Effect.gen(function* () {
    const cached = (yield* Ref.get(udp.connections)).get(peer)
    if (cached !== undefined && cached.expires > (yield* Clock.currentTimeMillis)) return cached.id
    const reply = yield* transact(udp.retransmit, url, socket, "Connect", (transactionId) => Effect.succeed(encodeUdpConnect(transactionId)))
    const expires = (yield* Clock.currentTimeMillis) + udpConnectionLifetimeMillis
    yield* Ref.update(udp.connections, (m) => new Map(m).set(peer, { id: reply.connectionId, expires }))
    return reply.connectionId
  })

const forget = (udp: UdpState, peer: string) =>
  Ref.update(udp.connections, (m) => {
    const next = new Map(m)
    next.delete(peer)
    return next
  })

const udpAnnounce = (udp: UdpState, url: string, target: UdpTarget, request: AnnounceRequest): Effect.Effect<AnnounceResponse, TrackerError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const socket = yield* openUdpSocket(url, target)
      const peer = `${target.host}:${target.port}`
      // The connection id is looked up at every (re)transmission: one that expires meanwhile is renewed.
      const reply = yield* transact(udp.retransmit, url, socket, "Announce", (transactionId) =>
        Effect.map(connectionId(udp, url, socket, peer), (id) =>
          encodeUdpAnnounce({ connectionId: id, transactionId, key: udp.key, request, urlData: target.urlData })
        )
      ).pipe(
        // A tracker error often means it no longer knows our connection id: start afresh next time.
        Effect.tapError((e) => (e.reason === "Failure" ? forget(udp, peer) : Effect.void))
      )
      return reply.response
    })
  )

/** Announces by the URL's scheme; a tracker's warning is logged. */
const announceAt = (
  http: HttpClient.HttpClient,
  httpTimeout: Duration.DurationInput,
  udp: UdpState,
  url: string,
  request: AnnounceRequest
): Effect.Effect<AnnounceResponse, TrackerError> =>
  Effect.gen(function* () {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
    let response: AnnounceResponse
    if (scheme === "http" || scheme === "https") {
      response = yield* httpAnnounce(http, httpTimeout, url, request)
    } else if (scheme === "udp") {
      const target = parseUdpUrl(url)
      if (target === undefined) return yield* fail(url, "Unsupported", "not a udp://host:port URL")
      response = yield* udpAnnounce(udp, url, target, request)
    } else {
      return yield* fail(url, "Unsupported", `unknown scheme ${scheme === undefined ? "(none)" : `'${scheme}'`}`)
    }
    if (response.warning !== undefined) yield* Effect.logWarning(`tracker ${url} warns: ${response.warning}`)
    return response
  })

/** Tiers of tracker URLs, in the order to try them. */
type TierOrder = ReadonlyArray<ReadonlyArray<string>>

/** Moves the tracker that answered to the front of its tier (BEP 12). */
const promote = (order: Ref.Ref<TierOrder>, url: string) =>
  Ref.update(order, (tiers) => tiers.map((tier) => (tier.includes(url) ? [url, ...tier.filter((u) => u !== url)] : tier)))

/** Tries the trackers in tier order until one answers. */
const announceTiers = (announce: Announce, order: Ref.Ref<TierOrder>, request: AnnounceRequest) =>
  Effect.gen(function* () {
    const urls = (yield* Ref.get(order)).flat()
    let last = new TrackerError({ url: "", reason: "Unsupported", detail: "no tracker to announce to" })
    for (const [i, url] of urls.entries()) {
      const result = yield* Effect.either(announce(url, request))
      if (Either.isRight(result)) {
        yield* promote(order, url)
        return { ...result.right, url }
      }
      last = result.left
      // The last failure is the error itself; the ones before it would otherwise go unseen.
      if (i < urls.length - 1) yield* Effect.logWarning(`${last.message}; trying the next tracker`)
    }
    return yield* last
  })

const tiers = (announce: Announce, list: ReadonlyArray<ReadonlyArray<string>>): Effect.Effect<TrackerTiers> =>
  Effect.gen(function* () {
    // BEP 12: shuffle each tier once; afterwards the order only changes by moving a tracker that answered to the front.
    const shuffled = yield* Effect.forEach(
      list.filter((tier) => tier.length > 0),
      (tier) => Effect.map(Random.shuffle(tier), Chunk.toReadonlyArray)
    )
    const order = yield* Ref.make<TierOrder>(shuffled)
    return { announce: (request: AnnounceRequest) => announceTiers(announce, order, request) }
  })

const make = (options: TrackerOptions) =>
  Effect.gen(function* () {
    const http = yield* HttpClient.HttpClient
    const httpTimeout = options.httpTimeout ?? defaultHttpTimeout
    const udp: UdpState = {
      retransmit: options.udpRetransmit ?? defaultUdpRetransmit,
      key: yield* randomU32,
      connections: yield* Ref.make<UdpConnections>(new Map())
    }
    const announce = Effect.fn("Tracker.announce")((url: string, request: AnnounceRequest) =>
      announceAt(http, httpTimeout, udp, url, request)
    )
    return Tracker.of({ announce, tiers: (list) => tiers(announce, list) })
  })

const describeCause = (cause: Error): string => {
  // undici's "fetch failed" hides the socket error (ECONNREFUSED, ENOTFOUND, ...) in its own cause.
  const inner = (cause as { cause?: unknown }).cause
  const code = inner instanceof Error ? (inner as { code?: string }).code ?? inner.message : undefined
  return code === undefined ? cause.message : `${cause.message} (${code})`
}

export class Tracker extends Context.Tag("bt/Tracker")<
  Tracker,
  {
    readonly announce: (url: string, request: AnnounceRequest) => Effect.Effect<AnnounceResponse, TrackerError>
    readonly tiers: (tiers: ReadonlyArray<ReadonlyArray<string>>) => Effect.Effect<TrackerTiers>
  }
>() {
  static layer = (options: TrackerOptions = {}): Layer.Layer<Tracker, never, HttpClient.HttpClient> =>
    Layer.effect(Tracker, make(options))

  static Live: Layer.Layer<Tracker, never, HttpClient.HttpClient> = Tracker.layer()
}
