/**
 * A small HTTP tracker (BEP 3, compact peers BEP 23, `peers6` BEP 7, scrape BEP 48) on
 * @effect/platform's HttpServer: enough for a local swarm, a demo or tests.
 *
 * Swarms live in memory, one per info hash, with peers keyed by `ip:port`. A peer that has not
 * announced for two intervals is dropped from answers at once and from memory by a sweep every
 * interval. Seeders are given only leechers (another seeder has nothing for them).
 *
 * The query is parsed by hand from the raw URL: `info_hash` and `peer_id` are percent-encoded
 * bytes, and URLSearchParams would decode them as UTF-8 and corrupt them.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Clock, Context, Data, Duration, Effect, Either, HashMap, Layer, Option, Random, Ref, Schedule, type Scope } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Bencode from "../domain/Bencode.js"
import { formatPeer } from "../domain/Peer.js"
import { describeOsError } from "../domain/OsError.js"
import { formatIpv6 } from "../domain/TrackerResponse.js"

// ---------------------------------------------------------------------------------------------
// Query parsing (pure)

/** A request the tracker answers with a bencoded `failure reason`; `detail` is that reason. */
export class TrackerRequestError extends Data.TaggedError("TrackerRequestError")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

const hexValue = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1

/** Percent-decodes to raw bytes (other characters stand for themselves); undefined on a broken escape. */
export const percentDecode = (text: string): Uint8Array | undefined => {
  const out = new Uint8Array(text.length)
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x25) {
      const hi = hexValue(text.charCodeAt(i + 1))
      const lo = hexValue(text.charCodeAt(i + 2))
      if (hi < 0 || lo < 0) return undefined
      out[n++] = (hi << 4) | lo
      i += 2
    } else if (c < 0x100) {
      out[n++] = c
    } else {
      return undefined
    }
  }
  return out.subarray(0, n)
}

/** The raw, still percent-encoded values of each parameter, in order of appearance. */
export const splitQuery = (query: string): ReadonlyMap<string, ReadonlyArray<string>> => {
  const params = new Map<string, Array<string>>()
  for (const pair of query.split("&")) {
    if (pair === "") continue
    const eq = pair.indexOf("=")
    const name = eq < 0 ? pair : pair.slice(0, eq)
    const value = eq < 0 ? "" : pair.slice(eq + 1)
    const values = params.get(name)
    if (values === undefined) params.set(name, [value])
    else values.push(value)
  }
  return params
}

export const defaultNumWant = 50
export const maxNumWant = 200

export interface AnnounceQuery {
  readonly infoHash: Uint8Array
  readonly peerId: Uint8Array
  readonly port: number
  /** Undefined when the client did not say; only `left=0` makes a seeder. */
  readonly left: number | undefined
  readonly event: "started" | "completed" | "stopped" | undefined
  readonly compact: boolean
  readonly numWant: number
  /** The `ip` parameter when it is an IP address literal. */
  readonly ip: string | undefined
}

const reject = (detail: string) => Either.left(new TrackerRequestError({ detail }))

const twentyBytes = (params: ReadonlyMap<string, ReadonlyArray<string>>, name: string) => {
  const raw = params.get(name)?.[0]
  if (raw === undefined) return reject(`missing ${name}`)
  const bytes = percentDecode(raw)
  return bytes?.length === 20 ? Either.right(bytes) : reject(`malformed ${name}: 20 percent-encoded bytes expected`)
}

const decimal = (raw: string | undefined): number | undefined =>
  raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined

const events = new Set(["started", "completed", "stopped"])

/** Parses an announce's raw query string (the part after `?`). */
export const parseAnnounceQuery = (query: string): Either.Either<AnnounceQuery, TrackerRequestError> =>
  Either.gen(function* () {
    const params = splitQuery(query)
    const one = (name: string) => params.get(name)?.[0]
    const infoHash = yield* twentyBytes(params, "info_hash")
    const peerId = yield* twentyBytes(params, "peer_id")
    const port = decimal(one("port"))
    if (port === undefined || port < 1 || port > 65535) {
      return yield* reject(one("port") === undefined ? "missing port" : "malformed port: an integer from 1 to 65535 expected")
    }
    const leftText = one("left")
    const left = decimal(leftText)
    if (leftText !== undefined && left === undefined) return yield* reject("malformed left: a non-negative integer expected")
    const event = one("event")
    const numWant = decimal(one("numwant"))
    const ipBytes = one("ip") === undefined ? undefined : percentDecode(one("ip")!)
    const ip = ipBytes === undefined ? undefined : Bencode.bytesToKey(ipBytes)
    return {
      infoHash,
      peerId,
      port,
      left,
      event: event !== undefined && events.has(event) ? (event as AnnounceQuery["event"]) : undefined,
      compact: one("compact") !== "0",
      numWant: Math.min(numWant ?? defaultNumWant, maxNumWant),
      ip: ip !== undefined && Net.isIP(ip) !== 0 ? ip : undefined
    }
  })

/** The info hashes a scrape asks about (none: every torrent). */
export const parseScrapeQuery = (query: string): Either.Either<ReadonlyArray<Uint8Array>, TrackerRequestError> =>
  Either.gen(function* () {
    const hashes: Array<Uint8Array> = []
    for (const raw of splitQuery(query).get("info_hash") ?? []) {
      const bytes = percentDecode(raw)
      if (bytes?.length !== 20) return yield* reject("malformed info_hash: 20 percent-encoded bytes expected")
      hashes.push(bytes)
    }
    return hashes
  })

// ---------------------------------------------------------------------------------------------
// Addresses

/** The 16 bytes of a valid IPv6 literal (checked with `Net.isIP` first). */
const ipv6Bytes = (ip: string): Uint8Array => {
  const out = new Uint8Array(16)
  let text = ip.replace(/%.*$/, "") // zone id
  const lastColon = text.lastIndexOf(":")
  const dotted = text.indexOf(".", lastColon) >= 0 ? text.slice(lastColon + 1).split(".").map(Number) : undefined
  if (dotted !== undefined) text = `${text.slice(0, lastColon + 1)}0:0`
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)))
  const gap = text.indexOf("::")
  const head = groups(gap < 0 ? text : text.slice(0, gap))
  const tail = gap < 0 ? [] : groups(text.slice(gap + 2))
  const put = (group: number, value: number) => {
    out[group * 2] = value >> 8
    out[group * 2 + 1] = value & 0xff
  }
  head.forEach((value, i) => put(i, value))
  tail.forEach((value, i) => put(8 - tail.length + i, value))
  if (dotted !== undefined) out.set(dotted, 12)
  return out
}

/** Canonical text and compact bytes (address then big-endian port) of a peer; undefined when `host` is no IP literal. */
const peerAddress = (host: string, port: number): { readonly host: string; readonly compact: Uint8Array } | undefined => {
  const plain = host.startsWith("::ffff:") && Net.isIPv4(host.slice(7)) ? host.slice(7) : host
  const family = Net.isIP(plain)
  if (family === 0) return undefined
  const address = family === 4 ? new Uint8Array(plain.split(".").map(Number)) : ipv6Bytes(plain)
  const compact = new Uint8Array(address.length + 2)
  compact.set(address)
  compact[address.length] = port >> 8
  compact[address.length + 1] = port & 0xff
  return { host: family === 4 ? plain : formatIpv6(address), compact }
}

// ---------------------------------------------------------------------------------------------
// Swarms (pure state transitions)

interface PeerEntry {
  readonly peerId: Uint8Array
  /** The peer id as a latin1 string, to compare ids cheaply. */
  readonly idKey: string
  readonly host: string
  readonly port: number
  /** 6 bytes for IPv4, 18 for IPv6: computed once, copied into every compact answer. */
  readonly compact: Uint8Array
  readonly seeder: boolean
  readonly lastSeen: number
}

interface Swarm {
  readonly peers: HashMap.HashMap<string, PeerEntry>
  /** `event=completed` announces seen (the scrape's `downloaded`). */
  readonly downloaded: number
}

type Swarms = HashMap.HashMap<string, Swarm>

const emptySwarm: Swarm = { peers: HashMap.empty(), downloaded: 0 }

const applyAnnounce = (swarms: Swarms, key: string, peerKey: string, entry: PeerEntry, event: AnnounceQuery["event"]): Swarms => {
  const swarm = Option.getOrElse(HashMap.get(swarms, key), () => emptySwarm)
  const next: Swarm = {
    peers: event === "stopped" ? HashMap.remove(swarm.peers, peerKey) : HashMap.set(swarm.peers, peerKey, entry),
    downloaded: swarm.downloaded + (event === "completed" ? 1 : 0)
  }
  return HashMap.size(next.peers) === 0 && next.downloaded === 0 ? HashMap.remove(swarms, key) : HashMap.set(swarms, key, next)
}

/** Drops every peer last seen at or before `deadline`, and swarms left with nothing to report. */
const sweep = (swarms: Swarms, deadline: number): Swarms =>
  HashMap.filterMap(swarms, (swarm) => {
    const peers = HashMap.filter(swarm.peers, (p) => p.lastSeen > deadline)
    return HashMap.size(peers) === 0 && swarm.downloaded === 0 ? Option.none() : Option.some({ ...swarm, peers })
  })

const counts = (swarm: Swarm, deadline: number) => {
  let complete = 0
  let incomplete = 0
  for (const p of HashMap.values(swarm.peers)) {
    if (p.lastSeen <= deadline) continue
    if (p.seeder) complete++
    else incomplete++
  }
  return { complete, incomplete }
}

// ---------------------------------------------------------------------------------------------
// Response bodies

const failureBody = (reason: string): Uint8Array => Bencode.encode(Bencode.dict({ "failure reason": Bencode.text(reason) }))

const announceBody = (
  interval: number,
  complete: number,
  incomplete: number,
  peers: ReadonlyArray<PeerEntry>,
  compact: boolean
): Uint8Array => {
  if (!compact) {
    const list = peers.map((p) =>
      Bencode.dict({ ip: Bencode.text(p.host), "peer id": p.peerId, port: Bencode.int(p.port) })
    )
    return Bencode.encode(
      Bencode.dict({ complete: Bencode.int(complete), incomplete: Bencode.int(incomplete), interval: Bencode.int(interval), peers: list })
    )
  }
  let size4 = 0
  let size6 = 0
  for (const p of peers) {
    if (p.compact.length === 6) size4 += 6
    else size6 += 18
  }
  const peers4 = new Uint8Array(size4)
  const peers6 = new Uint8Array(size6)
  let at4 = 0
  let at6 = 0
  for (const p of peers) {
    if (p.compact.length === 6) {
      peers4.set(p.compact, at4)
      at4 += 6
    } else {
      peers6.set(p.compact, at6)
      at6 += 18
    }
  }
  return Bencode.encode(
    Bencode.dict({
      complete: Bencode.int(complete),
      incomplete: Bencode.int(incomplete),
      interval: Bencode.int(interval),
      peers: peers4,
      peers6: size6 > 0 ? peers6 : undefined
    })
  )
}

// ---------------------------------------------------------------------------------------------
// The server

export interface TrackerServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 0: any free port (see `port` in the result). */
  readonly port?: number
  /** Seconds between a client's announces (default 60); peers expire after twice that, or ten minutes if longer. */
  readonly interval?: number
}

export interface TrackerServerInfo {
  readonly host: string
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number
  /** `http://host:port/announce`, to put in torrents. */
  readonly url: string
  readonly scrapeUrl: string
}

export class TrackerServerError extends Data.TaggedError("TrackerServerError")<{
  readonly reason: "InvalidOption" | "Listen"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    return this.reason === "Listen" ? `cannot listen on ${this.detail}: ${describeOsError(this.cause)}` : `tracker: ${this.detail}`
  }
}

/** The swarms and the timing their answers follow. */
interface SwarmTable {
  readonly swarms: Ref.Ref<Swarms>
  /** Seconds between a client's announces. */
  readonly interval: number
  /** A peer not seen for this long is expired. */
  readonly expiryMillis: number
}

/**
 * How long a silent peer stays listed: two intervals, but never under ten minutes, since clients
 * clamp the interval they are given (libtorrent announces at most every five minutes), and a peer
 * that left properly said `stopped`.
 */
const expiryMillis = (interval: number) => Math.max(2 * interval, 600) * 1000

const checkOptions = (interval: number, requestedPort: number): Effect.Effect<void, TrackerServerError> => {
  if (!Number.isInteger(interval) || interval < 1 || interval > 86400) {
    return Effect.fail(new TrackerServerError({ reason: "InvalidOption", detail: `interval ${interval} is not a whole number of seconds from 1 to 86400` }))
  }
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
    return Effect.fail(new TrackerServerError({ reason: "InvalidOption", detail: `port ${requestedPort} is not from 0 to 65535` }))
  }
  return Effect.void
}

/**
 * The live peers of `swarm` an announcer may be given. The announcer is left out by address and
 * by id (it may announce from several ports); a seeder gets no seeders.
 */
const candidatesFor = (swarm: Swarm, peerKey: string, idKey: string, seeder: boolean, deadline: number): Array<PeerEntry> => {
  const candidates: Array<PeerEntry> = []
  for (const [k, p] of swarm.peers) {
    if (k === peerKey || p.idKey === idKey || p.lastSeen <= deadline || (seeder && p.seeder)) continue
    candidates.push(p)
  }
  return candidates
}

/** `wanted` candidates from `start` on, wrapping round: different announcers see different peers, at O(1) randomness. */
const peerWindow = (candidates: Array<PeerEntry>, wanted: number, start: number): Array<PeerEntry> => {
  const chosen = candidates.slice(start, start + wanted)
  return chosen.length < wanted ? chosen.concat(candidates.slice(0, wanted - chosen.length)) : chosen
}

const announce = (table: SwarmTable, query: string, remote: Option.Option<string>) =>
  Effect.gen(function* () {
    const parsed = parseAnnounceQuery(query)
    if (Either.isLeft(parsed)) return failureBody(parsed.left.detail)
    const q = parsed.right
    const address = peerAddress(q.ip ?? Option.getOrElse(remote, () => ""), q.port)
    if (address === undefined) return failureBody("cannot tell the peer's IP address")
    const now = yield* Clock.currentTimeMillis
    const deadline = now - table.expiryMillis
    const seeder = q.left === 0
    const key = Bencode.bytesToKey(q.infoHash)
    const peerKey = formatPeer({ host: address.host, port: q.port })
    const idKey = Bencode.bytesToKey(q.peerId)
    const entry: PeerEntry = { peerId: q.peerId, idKey, host: address.host, port: q.port, compact: address.compact, seeder, lastSeen: now }
    const swarm = yield* Ref.modify(table.swarms, (s) => {
      const next = applyAnnounce(s, key, peerKey, entry, q.event)
      return [Option.getOrElse(HashMap.get(next, key), () => emptySwarm), next]
    })
    const { complete, incomplete } = counts(swarm, deadline)
    const wanted = q.event === "stopped" ? 0 : q.numWant
    const candidates = wanted > 0 ? candidatesFor(swarm, peerKey, idKey, seeder, deadline) : []
    const chosen = candidates.length > wanted
      ? peerWindow(candidates, wanted, yield* Random.nextIntBetween(0, candidates.length))
      : candidates
    return announceBody(table.interval, complete, incomplete, chosen, q.compact)
  })

const scrape = (table: SwarmTable, query: string) =>
  Effect.gen(function* () {
    const parsed = parseScrapeQuery(query)
    if (Either.isLeft(parsed)) return failureBody(parsed.left.detail)
    const deadline = (yield* Clock.currentTimeMillis) - table.expiryMillis
    const all = yield* Ref.get(table.swarms)
    const keys = parsed.right.length > 0 ? parsed.right.map(Bencode.bytesToKey) : [...HashMap.keys(all)]
    const files = new Map<string, Bencode.Bencode>()
    for (const key of keys) {
      const swarm = Option.getOrElse(HashMap.get(all, key), () => emptySwarm)
      const { complete, incomplete } = counts(swarm, deadline)
      files.set(
        key,
        Bencode.dict({ complete: Bencode.int(complete), downloaded: Bencode.int(swarm.downloaded), incomplete: Bencode.int(incomplete) })
      )
    }
    return Bencode.encode(Bencode.dict({ files }))
  })

/** The HTTP app: announce at /announce, scrape at /scrape, 404 elsewhere. */
const routes = (table: SwarmTable) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    // A proxy-style request carries the absolute URL: keep only the path and query.
    const target = request.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "")
    const q = target.indexOf("?")
    const path = q < 0 ? target : target.slice(0, q)
    const query = q < 0 ? "" : target.slice(q + 1)
    const body = path === "/announce"
      ? yield* announce(table, query, request.remoteAddress)
      : path === "/scrape"
      ? yield* scrape(table, query)
      : undefined
    return body === undefined
      ? HttpServerResponse.text("not found: announce at /announce, scrape at /scrape\n", { status: 404 })
      : HttpServerResponse.uint8Array(body, { contentType: "text/plain" })
  })

/** Serves `app` on `host:requestedPort` for the scope; gives the bound port. */
const listen = (host: string, requestedPort: number, app: HttpApp.Default) =>
  Effect.gen(function* () {
    const nodeServer = Http.createServer()
    const server = yield* NodeHttpServer.make(() => nodeServer, { host, port: requestedPort }).pipe(
      Effect.mapError((e) => {
        return new TrackerServerError({
          reason: "Listen",
          detail: formatPeer({ host, port: requestedPort }),
          cause: e.cause
        })
      })
    )
    // server.close() waits for open keep-alive connections; without this, stopping could hang.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
    yield* server.serve(app)
    return server.address._tag === "TcpAddress" ? server.address.port : requestedPort
  })

/** Drops expired peers every interval, for the scope's lifetime. */
const sweepEvery = (table: SwarmTable) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(table.swarms, (s) => sweep(s, now - table.expiryMillis))).pipe(
    Effect.schedule(Schedule.spaced(Duration.seconds(table.interval)))
  )

/**
 * Starts a tracker; it stops when the scope closes. Announce at `url`, scrape at `scrapeUrl`.
 * Requests are answered with HTTP 200 and bencode, failures included (`failure reason`).
 */
export const makeTrackerServer = (
  options: TrackerServerOptions = {}
): Effect.Effect<TrackerServerInfo, TrackerServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const interval = options.interval ?? 60
    const requestedPort = options.port ?? 0
    yield* checkOptions(interval, requestedPort)
    const table: SwarmTable = { swarms: yield* Ref.make<Swarms>(HashMap.empty()), interval, expiryMillis: expiryMillis(interval) }
    const port = yield* listen(host, requestedPort, routes(table))
    yield* Effect.forkScoped(sweepEvery(table))
    const base = `http://${Net.isIPv6(host) ? `[${host}]` : host}:${port}`
    return { host, port, url: `${base}/announce`, scrapeUrl: `${base}/scrape` }
  })

/** The tracker as a service, for programs that embed one (the demo). */
export class TrackerServer extends Context.Tag("bt/TrackerServer")<TrackerServer, TrackerServerInfo>() {
  static layer = (options: TrackerServerOptions = {}): Layer.Layer<TrackerServer, TrackerServerError> =>
    Layer.scoped(TrackerServer, makeTrackerServer(options))
}
