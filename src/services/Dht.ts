/**
 * The DHT (BEP 5): a node of the mainline DHT on the shared UDP socket. It answers ping,
 * find_node, get_peers and announce_peer, and asks them in iterative lookups (α = 3 in flight,
 * each query bounded by a timeout, each lookup by a count of queries and a total time).
 *
 * Everything a remote node can make it keep is bounded: datagrams are handled as they arrive
 * (no queue), transactions in flight are capped, the routing table and the peer store have fixed
 * sizes, and a lookup keeps only its closest candidates. Tokens are a hash of the asker's address
 * and a secret rotated every 5 minutes (the previous one is still accepted). The routing table
 * is saved to a state file, and loaded from it at start, so a restart does not begin from nothing.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Context, Deferred, Duration, Effect, Either, Exit, FiberId, Layer, Option, Queue, type Scope, Schedule, Stream } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as path from "node:path"
import { equalBytes, toHex } from "../domain/Bytes.js"
import { type AnsweredNode, DhtLookup } from "../domain/DhtLookup.js"
import {
  decodeMessage,
  encodeMessage,
  KrpcErrorCode,
  type KrpcMessage,
  type KrpcQuery,
  type KrpcResponse,
  type NodeInfo
} from "../domain/Krpc.js"
import { type NodeId, randomIdAtDepth, randomNodeId, sameId } from "../domain/NodeId.js"
import { formatPeer, isOwnAddress, type PeerAddress } from "../domain/Peer.js"
import { PeerStore, type PeerStoreLimits } from "../domain/PeerStore.js"
import { decodeSavedTable, encodeSavedTable, RoutingTable } from "../domain/RoutingTable.js"
import { defaultStateDirectory } from "./StateStore.js"
import type { ListenError } from "./Transport.js"
import { type DatagramSocket, Udp } from "./Udp.js"

export interface DhtOptions {
  /** Where the UDP socket binds (the torrent's listen host and port; 0: any port). */
  readonly host: string
  readonly port: number
  /** Nodes to join the DHT through when the routing table is empty. */
  readonly bootstrap?: ReadonlyArray<PeerAddress>
  /** The saved routing table, loaded at start and written every few minutes and at the end. */
  readonly statePath?: string
  /** Our node id (default: the saved one, else random). */
  readonly id?: NodeId
  /** How long a query waits for its answer (default 2 s). */
  readonly queryTimeout?: Duration.DurationInput
  /** The longest one lookup runs (default 20 s). */
  readonly lookupTimeout?: Duration.DurationInput
  /** Queries one lookup may send (default 64). */
  readonly maxQueries?: number
  /** Transactions in flight at once; a query beyond them is not sent (default 256). */
  readonly maxPending?: number
  readonly store?: PeerStoreLimits
}

/** What a lookup found. */
export interface LookupResult {
  /** Peers found for the info hash (get_peers), without duplicates. */
  readonly peers: ReadonlyArray<PeerAddress>
  /** The closest nodes that answered. */
  readonly closest: ReadonlyArray<NodeInfo>
  readonly queries: number
  /** The longest chain of referrals from a node we knew to one that answered. */
  readonly hops: number
}

export interface DhtStats {
  readonly nodes: number
  readonly buckets: number
  readonly storedHashes: number
  readonly storedPeers: number
  readonly pendingQueries: number
  /** Datagrams that were not KRPC we take, or answers nobody waited for. */
  readonly rejected: number
}

export interface DhtNode {
  readonly id: NodeId
  readonly host: string
  readonly port: number
  /** Joins through the bootstrap nodes and a lookup of our own id (once: the first lookup waits for it too); gives the routing table's size. */
  readonly bootstrap: Effect.Effect<number>
  /** One iterative get_peers lookup. */
  readonly getPeers: (infoHash: Uint8Array) => Effect.Effect<LookupResult>
  /** A get_peers lookup, then announce_peer with `port` to the closest nodes that gave a token. */
  readonly announce: (infoHash: Uint8Array, port: number) => Effect.Effect<LookupResult & { readonly announcedTo: number }>
  /**
   * Peers for the info hash, found again every `interval` (default 5 minutes) for as long as the
   * stream is consumed; with `port`, each round also announces us (and our own address is left out).
   * It ends after a round in which no node answered.
   */
  readonly peers: (
    infoHash: Uint8Array,
    options?: { readonly port?: number; readonly interval?: Duration.DurationInput }
  ) => Stream.Stream<PeerAddress>
  readonly stats: Effect.Effect<DhtStats>
  /** Writes the routing table to the state file now (it is also written periodically and at the end). */
  readonly save: Effect.Effect<void>
}

export class Dht extends Context.Tag("bt/Dht")<
  Dht,
  {
    /** Binds the socket and runs a DHT node until the scope closes. */
    readonly start: (options: DhtOptions) => Effect.Effect<DhtNode, ListenError, Scope.Scope>
  }
>() {
  /** On whatever `Udp` and `FileSystem` are provided: `Udp.Live`, or a host of `MemoryUdpNetwork` in tests. */
  static readonly layer: Layer.Layer<Dht, never, Udp | FileSystem.FileSystem> = Layer.effect(
    Dht,
    Effect.map(Effect.context<Udp | FileSystem.FileSystem>(), (context) => ({
      start: (options: DhtOptions) => Effect.provide(makeDht(options), context)
    }))
  )
}

/** The routers of the public DHT, for real users only (never in tests, demos or benchmarks). */
export const publicBootstrapNodes: ReadonlyArray<PeerAddress> = [
  { host: "router.bittorrent.com", port: 6881 },
  { host: "dht.transmissionbt.com", port: 6881 },
  { host: "router.utorrent.com", port: 6881 }
]

/** `$XDG_STATE_HOME/effect-bittorrent/dht.dat`, else `~/.local/state/effect-bittorrent/dht.dat`. */
export const defaultStatePath = (env: Readonly<Record<string, string | undefined>>, home: string): string =>
  path.join(defaultStateDirectory(env, home), "dht.dat")

/** KRPC messages are bencoded dictionaries: they start with "d" (uTP's packets never do). */
export const isKrpcDatagram = (bytes: Uint8Array): boolean => bytes[0] === 0x64

const k = 8
const tokenRotation = Duration.minutes(5)
const maintenanceInterval = Duration.minutes(1)
const saveInterval = Duration.minutes(5)
/** Values a get_peers answer lists: 50 compact peers keep it well inside one datagram. */
const valuesPerAnswer = 50
/** Nodes waiting to be pinged (newcomers that queried us, questionable ones of full buckets); more are dropped. */
const pingQueue = 16
const pingsAtOnce = 8
/** Saved nodes pinged when joining (with at most 16 bootstrap nodes: within the transactions in flight). */
const savedNodesPinged = 64

interface Pending {
  readonly to: PeerAddress
  readonly answer: Deferred.Deferred<KrpcResponse | undefined>
  /** When it counts as unanswered. */
  readonly deadline: number
}

/**
 * How often unanswered queries are expired. One sweep for all of them rather than a timer each:
 * a lookup sends dozens of queries, and a timer per query is what a simulation under TestClock
 * pays for most (a query's timeout is thus up to one sweep longer than asked).
 */
const sweepInterval = Duration.millis(250)

/** One running node's state; the functions below take it. */
interface NodeState {
  readonly id: NodeId
  readonly socket: DatagramSocket
  readonly table: RoutingTable
  readonly store: PeerStore
  readonly pending: Map<string, Pending>
  readonly toPing: Queue.Queue<NodeInfo>
  /** Set when a query is sent: the sweeper runs while any is pending. */
  readonly queriesSent: Queue.Queue<void>
  readonly now: () => number
  readonly queryTimeout: Duration.Duration
  readonly maxPending: number
  secrets: { current: Uint8Array; previous: Uint8Array }
  nextTransaction: number
  rejected: number
}

const makeDht = (options: DhtOptions): Effect.Effect<DhtNode, ListenError, Udp | FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* (yield* Udp).bind({ host: options.host, port: options.port })
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const fs = yield* FileSystem.FileSystem
    const saved = options.statePath === undefined ? undefined : yield* loadTable(fs, options.statePath)
    const id = options.id ?? saved?.id ?? randomNodeId(randomBytesOf)
    const state: NodeState = {
      id,
      socket,
      table: new RoutingTable(id, now()),
      store: new PeerStore(options.store),
      pending: new Map(),
      toPing: yield* Queue.dropping<NodeInfo>(pingQueue),
      queriesSent: yield* Queue.sliding<void>(1),
      now,
      queryTimeout: Duration.decode(options.queryTimeout ?? "2 seconds"),
      maxPending: options.maxPending ?? 256,
      secrets: { current: randomBytesOf(16), previous: randomBytesOf(16) },
      nextTransaction: 0,
      rejected: 0
    }
    yield* socket.subscribe(isKrpcDatagram, (datagram) => onDatagram(state, datagram.bytes, datagram.from))

    const lookupLimits = { lookupTimeout: Duration.decode(options.lookupTimeout ?? "20 seconds"), maxQueries: options.maxQueries ?? 64 }
    // Saved nodes are pinged with the bootstrap nodes: those still there answer and enter the table.
    const bootstrapNodes = [...(options.bootstrap ?? []).slice(0, 16), ...(saved?.nodes ?? []).slice(0, savedNodesPinged).map((n) => n.address)]
    const bootstrap = joinThrough(state, bootstrapNodes, lookupLimits)
    // The first lookup waits for one join through the bootstrap nodes (saved nodes may all be gone
    // by now); later ones join again only when the table has emptied.
    const joinedOnce = yield* Effect.cached(bootstrap)
    const lookup = (target: NodeId, method: "find_node" | "get_peers") =>
      Effect.zipRight(
        Effect.zipRight(joinedOnce, Effect.when(bootstrap, () => state.table.size === 0)),
        runLookup(state, target, method, lookupLimits)
      )
    const getPeers = (infoHash: Uint8Array) => Effect.map(lookup(infoHash, "get_peers"), (found) => found.result)
    const announce = (infoHash: Uint8Array, port: number) =>
      Effect.flatMap(lookup(infoHash, "get_peers"), (found) =>
        Effect.map(announceTo(state, infoHash, port, found.answered), (announcedTo) => ({ ...found.result, announcedTo })))
    const save = options.statePath === undefined ? Effect.void : saveTable(fs, state, options.statePath)

    yield* expireUnanswered(state).pipe(Effect.forever, Effect.forkScoped)
    yield* Stream.fromQueue(state.toPing).pipe(Stream.mapEffect((node) => ping(state, node), { concurrency: pingsAtOnce }), Stream.runDrain, Effect.forkScoped)
    yield* maintain(state, (target) => lookup(target, "find_node")).pipe(Effect.delay(maintenanceInterval), Effect.forever, Effect.forkScoped)
    yield* Effect.sleep(tokenRotation).pipe(Effect.zipRight(Effect.sync(() => rotateSecret(state))), Effect.forever, Effect.forkScoped)
    yield* save.pipe(Effect.delay(saveInterval), Effect.forever, Effect.forkScoped)
    yield* Effect.addFinalizer(() => save)

    return {
      id,
      host: socket.host,
      port: socket.port,
      bootstrap: Effect.map(joinedOnce, () => state.table.size),
      getPeers,
      announce,
      peers: (infoHash, peerOptions = {}) => peerRounds(infoHash, peerOptions, getPeers, announce),
      stats: Effect.sync(() => statsOf(state)),
      save
    }
  })

const randomBytesOf = (n: number): Uint8Array => new Uint8Array(randomBytes(n))

const statsOf = (state: NodeState): DhtStats => ({
  nodes: state.table.size,
  buckets: state.table.bucketCount,
  storedHashes: state.store.hashCount,
  storedPeers: state.store.peerCount,
  pendingQueries: state.pending.size,
  rejected: state.rejected
})

// ---------------------------------------------------------------------------------------------
// Receiving

const onDatagram = (state: NodeState, bytes: Uint8Array, from: PeerAddress): void => {
  const decoded = decodeMessage(bytes)
  if (Either.isLeft(decoded)) {
    state.rejected++
    const e = decoded.left
    // A query we cannot take gets an error naming its transaction; errors are never answered, so no ping-pong.
    if (e.transaction !== undefined) {
      const code = e.reason === "UnknownMethod" ? KrpcErrorCode.MethodUnknown : KrpcErrorCode.Protocol
      send(state, { _tag: "Error", transaction: e.transaction, code, text: e.detail.slice(0, 100) }, from)
    }
    return
  }
  const message = decoded.right
  switch (message._tag) {
    case "Query":
      return answerQuery(state, message.transaction, message.query, from)
    case "Response":
      return settle(state, message.transaction, from, message.response)
    case "Error":
      return settle(state, message.transaction, from, undefined)
  }
}

const send = (state: NodeState, message: KrpcMessage, to: PeerAddress) => state.socket.send(encodeMessage(message), to)

/** Hands an answer to the query waiting for it, if it came from where the query went. */
const settle = (state: NodeState, transaction: Uint8Array, from: PeerAddress, response: KrpcResponse | undefined): void => {
  const key = toHex(transaction)
  const pending = state.pending.get(key)
  if (pending === undefined || formatPeer(pending.to) !== formatPeer(from)) return void state.rejected++
  state.pending.delete(key)
  if (response !== undefined) observe(state, { id: response.id, address: from }, "answered")
  Deferred.unsafeDone(pending.answer, Exit.succeed(response))
}

/**
 * Puts a node we heard from in the table. A newcomer that only queried us is pinged, so that it
 * is passed on to others only once it answered; a full bucket names a questionable node to ping.
 */
const observe = (state: NodeState, node: NodeInfo, how: "answered" | "queried"): void => {
  const result = state.table.insert(node, how, state.now())
  if (result._tag === "Cached" && result.ping !== undefined) Queue.unsafeOffer(state.toPing, result.ping)
  else if (result._tag === "Added" && how === "queried") Queue.unsafeOffer(state.toPing, node)
}

const answerQuery = (state: NodeState, transaction: Uint8Array, query: KrpcQuery, from: PeerAddress): void => {
  observe(state, { id: query.id, address: from }, "queried")
  const now = state.now()
  const reply = (response: Omit<KrpcResponse, "id">) => send(state, { _tag: "Response", transaction, response: { id: state.id, ...response } }, from)
  switch (query.method) {
    case "ping":
      return reply({})
    case "find_node":
      return reply({ nodes: state.table.closest(query.target, k, now, true) })
    case "get_peers": {
      const values = state.store.get(query.infoHash, now, valuesPerAnswer)
      return reply({ nodes: state.table.closest(query.infoHash, k, now, true), token: tokenFor(state.secrets.current, from.host), ...(values.length > 0 ? { values } : {}) })
    }
    case "announce_peer": {
      const { current, previous } = state.secrets
      if (!equalBytes(query.token, tokenFor(current, from.host)) && !equalBytes(query.token, tokenFor(previous, from.host))) {
        return send(state, { _tag: "Error", transaction, code: KrpcErrorCode.Protocol, text: "bad token" }, from)
      }
      state.store.add(query.infoHash, { host: from.host, port: query.impliedPort ? from.port : query.port }, now)
      return reply({})
    }
  }
}

/** A token proves the asker's address: announce_peer is taken only from the address get_peers went to. */
const tokenFor = (secret: Uint8Array, host: string): Uint8Array =>
  new Uint8Array(createHash("sha1").update(secret).update(host).digest()).subarray(0, 8)

const rotateSecret = (state: NodeState): void => {
  state.secrets = { current: randomBytesOf(16), previous: state.secrets.current }
}

// ---------------------------------------------------------------------------------------------
// Asking

/** Sends a query and waits for its answer, at most the query timeout; none when unanswered or refused. */
const ask = (state: NodeState, to: PeerAddress, query: KrpcQuery, expected?: NodeId): Effect.Effect<Option.Option<KrpcResponse>> =>
  Effect.suspend(() => {
    if (state.pending.size >= state.maxPending) return Effect.succeed(Option.none())
    let key: string
    let transaction: Uint8Array
    do {
      state.nextTransaction = (state.nextTransaction + 1) & 0xffff
      transaction = Uint8Array.of(state.nextTransaction >> 8, state.nextTransaction & 0xff)
      key = toHex(transaction)
    } while (state.pending.has(key))
    const answer = Deferred.unsafeMake<KrpcResponse | undefined>(FiberId.none)
    state.pending.set(key, { to, answer, deadline: state.now() + Duration.toMillis(state.queryTimeout) })
    Queue.unsafeOffer(state.queriesSent, undefined)
    send(state, { _tag: "Query", transaction, query }, to)
    return Deferred.await(answer).pipe(
      Effect.map(Option.fromNullable),
      Effect.tap((response) => {
        if (Option.isNone(response) && expected !== undefined) state.table.failed(expected, state.now())
      }),
      Effect.ensuring(Effect.sync(() => state.pending.delete(key)))
    )
  })

/** While queries are pending: every sweep, those past their deadline are answered with nothing. */
const expireUnanswered = (state: NodeState): Effect.Effect<void> =>
  Effect.zipRight(
    Queue.take(state.queriesSent),
    Effect.whileLoop({
      while: () => state.pending.size > 0,
      body: () => Effect.sleep(sweepInterval),
      step: () => {
        const now = state.now()
        for (const [key, pending] of state.pending) {
          if (pending.deadline > now) continue
          state.pending.delete(key)
          Deferred.unsafeDone(pending.answer, Exit.succeed(undefined))
        }
      }
    })
  )

const queryFor = (state: NodeState, target: NodeId, method: "find_node" | "get_peers"): KrpcQuery =>
  method === "find_node" ? { method, id: state.id, target } : { method, id: state.id, infoHash: target }

interface LookupBounds {
  readonly lookupTimeout: Duration.Duration
  readonly maxQueries: number
}

interface Found {
  readonly result: LookupResult
  /** The closest nodes that answered, with the tokens they gave. */
  readonly answered: ReadonlyArray<AnsweredNode>
}

/** An iterative lookup: α queries in flight to the closest candidates, until the k closest answered or a bound is hit. */
const runLookup = (state: NodeState, target: NodeId, method: "find_node" | "get_peers", bounds: LookupBounds): Effect.Effect<Found> =>
  Effect.scoped(
    Effect.gen(function* () {
      const lookup = new DhtLookup(target, { k, maxQueries: bounds.maxQueries, self: state.id })
      lookup.add(state.table.closest(target, lookup.maxCandidates, state.now()))
      const answers = yield* Queue.unbounded<{ readonly node: NodeInfo; readonly response: Option.Option<KrpcResponse> }>()
      const query = queryFor(state, target, method)
      const steps = Effect.gen(function* () {
        while (true) {
          for (const node of lookup.next()) {
            yield* ask(state, node.address, query, node.id).pipe(
              Effect.flatMap((response) => Queue.offer(answers, { node, response })),
              Effect.forkScoped
            )
          }
          if (lookup.inFlight === 0) return
          const { node, response } = yield* Queue.take(answers)
          if (Option.isSome(response) && sameId(response.value.id, node.id)) lookup.answered(node.id, response.value)
          else lookup.failed(node.id)
        }
      })
      yield* Effect.timeoutOption(steps, bounds.lookupTimeout)
      const peers = method === "get_peers" ? mergePeers(lookup.peers, state.store.get(target, state.now())) : []
      const answered = lookup.closestAnswered()
      const closest = answered.map(({ node }) => ({ id: node.id, address: node.address }))
      return { result: { peers, closest, queries: lookup.queries, hops: lookup.hops }, answered }
    })
  )

const mergePeers = (a: ReadonlyArray<PeerAddress>, b: ReadonlyArray<PeerAddress>): ReadonlyArray<PeerAddress> => {
  const all = new Map<string, PeerAddress>()
  for (const p of [...a, ...b]) all.set(formatPeer(p), p)
  return [...all.values()]
}

/** announce_peer to each node that gave a token; gives how many took it. */
const announceTo = (state: NodeState, infoHash: Uint8Array, port: number, nodes: ReadonlyArray<AnsweredNode>): Effect.Effect<number> =>
  Effect.map(
    Effect.forEach(
      nodes.filter((n) => n.token !== undefined),
      ({ node, token }) =>
        ask(state, node.address, { method: "announce_peer", id: state.id, infoHash, port, token: token!, impliedPort: false }, node.id),
      { concurrency: k }
    ),
    (answers) => answers.filter(Option.isSome).length
  )

/**
 * Pings the bootstrap (and saved) nodes: their ids come with their answers, which puts them in
 * the table; then looks our own id up from them. Only nodes that answered us enter the table.
 */
const joinThrough = (state: NodeState, bootstrap: ReadonlyArray<PeerAddress>, bounds: LookupBounds): Effect.Effect<void> =>
  Effect.zipRight(
    // All at once: one query timeout in all, however many are gone.
    Effect.forEach(bootstrap, (address) => ask(state, address, { method: "ping", id: state.id }), { concurrency: "unbounded", discard: true }),
    runLookup(state, state.id, "find_node", bounds)
  )

/** Pings a node to see whether it answers; no answer makes a questionable one bad (a newcomer may take its place). */
const ping = (state: NodeState, node: NodeInfo): Effect.Effect<void> => Effect.asVoid(ask(state, node.address, { method: "ping", id: state.id }, node.id))

/** Once a minute: expire stored peers, refresh a stale bucket (or rejoin when the table emptied). */
const maintain = (state: NodeState, findNode: (target: NodeId) => Effect.Effect<unknown>): Effect.Effect<void> =>
  Effect.gen(function* () {
    const now = state.now()
    state.store.expire(now)
    const stale = state.table.staleBuckets(now)[0]
    if (stale === undefined) return
    state.table.touch(stale, now)
    yield* findNode(randomIdAtDepth(state.id, stale, randomBytesOf))
  })

/** Rounds of get_peers (with `port`: and announce_peer), `interval` apart, as a stream of the peers found. */
const peerRounds = (
  infoHash: Uint8Array,
  options: { readonly port?: number; readonly interval?: Duration.DurationInput },
  getPeers: (infoHash: Uint8Array) => Effect.Effect<LookupResult>,
  announce: (infoHash: Uint8Array, port: number) => Effect.Effect<LookupResult>
): Stream.Stream<PeerAddress> => {
  const { port } = options
  const round = port === undefined ? getPeers(infoHash) : announce(infoHash, port)
  return Stream.fromEffect(round).pipe(
    Stream.repeat(Schedule.spaced(options.interval ?? Duration.minutes(5))),
    // A round no node answered means the DHT is out of reach: the stream ends (a torrent may then give up).
    Stream.takeWhile((found) => found.closest.length > 0),
    Stream.flatMap((found) => Stream.fromIterable(port === undefined ? found.peers : found.peers.filter((p) => !isOwnAddress(p, port))))
  )
}

// ---------------------------------------------------------------------------------------------
// The state file

const loadTable = (fs: FileSystem.FileSystem, statePath: string) =>
  fs.readFile(statePath).pipe(
    Effect.map((bytes) => decodeSavedTable(new Uint8Array(bytes))),
    Effect.catchAll(() => Effect.succeed(undefined))
  )

/** Written beside and renamed into place, so a crash mid-write leaves the previous file. */
const saveTable = (fs: FileSystem.FileSystem, state: NodeState, statePath: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    const bytes = encodeSavedTable({ id: state.id, nodes: state.table.nodes() })
    yield* fs.makeDirectory(path.dirname(statePath), { recursive: true })
    yield* fs.writeFile(`${statePath}.tmp`, bytes)
    yield* fs.rename(`${statePath}.tmp`, statePath)
  }).pipe(Effect.catchAll((e) => Effect.logDebug(`DHT state not saved to ${statePath}: ${e.message}`)))
