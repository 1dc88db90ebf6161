import { NodeFileSystem } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Layer, type Scope, Stream, TestClock } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { decodeMessage, encodeMessage, type KrpcMessage } from "../../src/domain/Krpc.js"
import { type NodeId, randomNodeId } from "../../src/domain/NodeId.js"
import { bucketSize } from "../../src/domain/RoutingTable.js"
import { seededRandom } from "../../src/domain/SeededRandom.js"
import { defaultStatePath, Dht, type DhtNode, type DhtOptions, isKrpcDatagram } from "../../src/services/Dht.js"
import { makeMemoryUdpNetwork, type MemoryUdpNetwork } from "../../src/services/MemoryUdpNetwork.js"
import { type Datagram, type DatagramSocket, Udp } from "../../src/services/Udp.js"

const bytesFrom = (seed: number) => {
  const random = seededRandom(seed)
  return (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256))
}
const idFor = (i: number): NodeId => randomNodeId(bytesFrom(1000 + i))
const hostFor = (i: number) => `127.1.${i >> 8}.${i & 0xff}`
const dhtPort = 6881

/** Runs `effect` while moving the TestClock on in steps, up to `limitMillis` of virtual time. */
const virtually = <A, E, R>(effect: Effect.Effect<A, E, R>, limitMillis = 600_000, stepMillis = 10) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    for (let t = 0; t < limitMillis; t += stepMillis) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") break
      yield* TestClock.adjust(stepMillis)
    }
    return yield* Fiber.join(fiber)
  })

const startNode = (network: MemoryUdpNetwork, i: number, options: Partial<DhtOptions> = {}, fs = FileSystem.layerNoop({}), fixedId = true) =>
  Effect.flatMap(Dht, (dht) => dht.start({ host: hostFor(i), port: dhtPort, ...(fixedId ? { id: idFor(i) } : {}), ...options })).pipe(
    Effect.provide(Dht.layer.pipe(Layer.provide(Layer.succeed(Udp, network.host(hostFor(i)))), Layer.provide(fs)))
  )

/** `count` nodes; node 0 is everyone's bootstrap; they join 20 at a time. */
const swarm = (network: MemoryUdpNetwork, count: number): Effect.Effect<ReadonlyArray<DhtNode>, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const nodes: Array<DhtNode> = []
    for (let i = 0; i < count; i++) nodes.push(yield* startNode(network, i, { bootstrap: i === 0 ? [] : [{ host: hostFor(0), port: dhtPort }] }))
    for (let i = 1; i < count; i += 20) {
      yield* virtually(Effect.forEach(nodes.slice(i, i + 20), (n) => n.bootstrap, { concurrency: "unbounded" }))
    }
    return nodes
  })

const infoHash = randomNodeId(bytesFrom(42))

/** A raw socket on the network, to speak KRPC (or garbage) by hand. */
const rawSocket = (network: MemoryUdpNetwork, host: string) =>
  Effect.gen(function* () {
    const socket = yield* network.host(host).bind({ host, port: 0 })
    const got: Array<Datagram> = []
    yield* socket.subscribe(() => true, (d) => got.push(d))
    return { socket, got }
  })

const sendKrpc = (socket: DatagramSocket, message: KrpcMessage, to: { host: string; port: number }) => socket.send(encodeMessage(message), to)

describe("Dht on MemoryUdpNetwork (TestClock)", () => {
  it.scoped("200 nodes: one announces a peer, a lookup from another finds it within bounded rounds and queries", () =>
    Effect.gen(function* () {
      // No latency: under TestClock every timer costs real time (the swarm would take minutes).
      const network = yield* makeMemoryUdpNetwork()
      const nodes = yield* swarm(network, 200)
      expect(Math.min(...(yield* Effect.forEach(nodes, (n) => n.stats)).map((s) => s.nodes))).toBeGreaterThan(0)
      const announced = yield* virtually(nodes[17]!.announce(infoHash, 7000))
      expect(announced.announcedTo).toBeGreaterThan(0)
      const found = yield* virtually(nodes[150]!.getPeers(infoHash))
      expect(found.peers).toContainEqual({ host: hostFor(17), port: 7000 })
      expect(found.queries).toBeLessThanOrEqual(64)
      expect(found.hops).toBeLessThanOrEqual(8)
    }), { timeout: 120_000 })

  it.scoped("peers() finds again every interval while consumed: a peer announced after a round comes in the next", () =>
    Effect.gen(function* () {
      const network = yield* makeMemoryUdpNetwork()
      const nodes = yield* swarm(network, 30)
      yield* virtually(nodes[20]!.announce(infoHash, 7001))
      const clock = yield* Effect.clock
      const firstRound = yield* Deferred.make<void>()
      const startedAt = clock.unsafeCurrentTimeMillis()
      const seen = yield* nodes[5]!.peers(infoHash, { interval: "1 minute" }).pipe(
        Stream.map((p) => ({ port: p.port, at: clock.unsafeCurrentTimeMillis() })),
        Stream.tap(() => Deferred.succeed(firstRound, undefined)),
        Stream.take(2),
        Stream.runCollect,
        Effect.fork
      )
      yield* virtually(Deferred.await(firstRound))
      yield* virtually(nodes[21]!.announce(infoHash, 7002))
      const [first, second] = Chunk.toArray(yield* virtually(Fiber.join(seen), 300_000, 100))
      expect(first!.port).toBe(7001)
      expect(second!.port).toBe(7002)
      expect(second!.at - startedAt).toBeGreaterThanOrEqual(60_000)
    }), { timeout: 60_000 })

  it.scoped("a flood of bogus queries, nodes and announces stays bounded, and the node still answers", () =>
    Effect.gen(function* () {
      const network = yield* makeMemoryUdpNetwork()
      const target = yield* startNode(network, 0, { maxPending: 64, store: { maxHashes: 20, maxPeersPerHash: 10 } })
      const to = { host: hostFor(0), port: dhtPort }
      const random = bytesFrom(7)
      for (let i = 0; i < 40; i++) {
        const { socket } = yield* rawSocket(network, `127.9.${i}.1`)
        for (let j = 0; j < 100; j++) {
          const id = random(20)
          sendKrpc(socket, { _tag: "Query", transaction: random(2), query: { method: "find_node", id, target: random(20) } }, to)
          sendKrpc(socket, { _tag: "Query", transaction: random(2), query: { method: "announce_peer", id, infoHash: random(20), port: 1, token: random(8), impliedPort: false } }, to)
          sendKrpc(socket, { _tag: "Response", transaction: random(2), response: { id, nodes: [{ id: random(20), address: { host: "10.0.0.1", port: j + 1 } }] } }, to)
          socket.send(random(j * 40), to)
        }
        yield* TestClock.adjust(5)
      }
      yield* TestClock.adjust(1000)
      const stats = yield* target.stats
      expect(stats.nodes).toBeLessThanOrEqual(160 * bucketSize)
      expect(stats.storedPeers).toBe(0)
      expect(stats.pendingQueries).toBeLessThanOrEqual(64)
      expect(stats.rejected).toBeGreaterThan(0)
      const { socket, got } = yield* rawSocket(network, "127.8.0.1")
      sendKrpc(socket, { _tag: "Query", transaction: Uint8Array.of(9, 9), query: { method: "ping", id: random(20) } }, to)
      yield* TestClock.adjust(10)
      const replyTo = (transaction: number) =>
        got.map((d) => decodeMessage(d.bytes)).find((m) => m._tag === "Right" && m.right._tag === "Response" && m.right.transaction[1] === transaction)
      expect(replyTo(9)).toBeDefined()
      // The flooders only queried it: none of them is passed on to others.
      sendKrpc(socket, { _tag: "Query", transaction: Uint8Array.of(9, 8), query: { method: "find_node", id: random(20), target: random(20) } }, to)
      yield* TestClock.adjust(10)
      const nodes = replyTo(8)
      expect(nodes?._tag === "Right" && nodes.right._tag === "Response" && nodes.right.response.nodes).toEqual([])
    }))

  it.scoped("a liar naming ever more bogus closer nodes, and nodes that never answer, do not stall a lookup past its bounds", () =>
    Effect.gen(function* () {
      const network = yield* makeMemoryUdpNetwork({ link: { latency: "10 millis" } })
      const liarHost = "127.7.0.1"
      const { socket: liar } = yield* rawSocket(network, liarHost)
      let bogus = 0
      yield* liar.subscribe(() => true, (d) => {
        const m = decodeMessage(d.bytes)
        if (m._tag !== "Right" || m.right._tag !== "Query") return
        const nodes = Array.from({ length: 8 }, () => ({ id: randomNodeId(bytesFrom(++bogus)), address: { host: `127.6.0.${bogus % 250}`, port: 1000 + bogus } }))
        sendKrpc(liar, { _tag: "Response", transaction: m.right.transaction, response: { id: randomNodeId(bytesFrom(99)), nodes, token: Uint8Array.of(1) } }, d.from)
      })
      const dead = Array.from({ length: 8 }, (_, i) => ({ host: `127.5.0.${i + 1}`, port: 6881 }))
      const node = yield* startNode(network, 0, { bootstrap: [{ host: liarHost, port: liar.port }, ...dead], lookupTimeout: "20 seconds", maxQueries: 64 })
      const clock = yield* Effect.clock
      const before = clock.unsafeCurrentTimeMillis()
      const found = yield* virtually(node.getPeers(infoHash))
      const elapsed = clock.unsafeCurrentTimeMillis() - before
      expect(found.peers).toEqual([])
      expect(found.queries).toBeLessThanOrEqual(64)
      // Bootstrap (one query round, then one lookup) and the lookup itself, each bounded by 20 s.
      expect(elapsed).toBeLessThanOrEqual(2 * 20_000 + 2_000 + 100)
      expect((yield* node.stats).pendingQueries).toBe(0)
    }))

  it.scoped("malformed packets get an error reply or nothing, and the node goes on answering", () =>
    Effect.gen(function* () {
      const network = yield* makeMemoryUdpNetwork()
      yield* startNode(network, 0)
      const to = { host: hostFor(0), port: dhtPort }
      const { socket, got } = yield* rawSocket(network, "127.8.0.2")
      const text = (s: string) => new TextEncoder().encode(s)
      for (const junk of ["d", "de", "d1:t2:aa1:y1:qe", "d1:ad2:id3:abce1:q4:ping1:t2:ab1:y1:qe", `d1:ad2:id20:${"x".repeat(20)}e1:q3:foo1:t2:ac1:y1:qe`, "i1e"]) {
        socket.send(text(junk), to)
      }
      socket.send(new Uint8Array(70_000).fill(0x64), to)
      yield* TestClock.adjust(10)
      const replies = got.map((d) => decodeMessage(d.bytes))
      expect(replies.map((r) => r._tag === "Right" && r.right._tag === "Error" && [new TextDecoder().decode(r.right.transaction), r.right.code])).toEqual([
        ["aa", 203],
        ["ab", 203],
        ["ac", 204]
      ])
      sendKrpc(socket, { _tag: "Query", transaction: text("zz"), query: { method: "ping", id: idFor(5) } }, to)
      yield* TestClock.adjust(10)
      const pong = got.map((d) => decodeMessage(d.bytes)).find((m) => m._tag === "Right" && m.right._tag === "Response")
      expect(pong?._tag === "Right" && new TextDecoder().decode(pong.right.transaction)).toBe("zz")
    }))

  it.scoped("announce_peer needs a token from get_peers: the current and the previous secret's, not older ones", () =>
    Effect.gen(function* () {
      const network = yield* makeMemoryUdpNetwork()
      const node = yield* startNode(network, 0)
      const to = { host: hostFor(0), port: dhtPort }
      const { socket, got } = yield* rawSocket(network, "127.8.0.3")
      const ask = (message: KrpcMessage) =>
        Effect.gen(function* () {
          const before = got.length
          sendKrpc(socket, message, to)
          yield* TestClock.adjust(1)
          const reply = decodeMessage(got[before]!.bytes)
          if (reply._tag !== "Right") throw new Error("no reply")
          return reply.right
        })
      const id = idFor(9)
      const tokenReply = yield* ask({ _tag: "Query", transaction: Uint8Array.of(1), query: { method: "get_peers", id, infoHash } })
      const token = tokenReply._tag === "Response" ? tokenReply.response.token! : new Uint8Array()
      const announce = (t: Uint8Array, port: number) => ask({ _tag: "Query", transaction: Uint8Array.of(2), query: { method: "announce_peer", id, infoHash, port, token: t, impliedPort: false } })
      expect((yield* announce(Uint8Array.of(1, 2, 3), 5000))._tag).toBe("Error")
      yield* TestClock.adjust("5 minutes")
      expect((yield* announce(token, 5001))._tag).toBe("Response")
      yield* TestClock.adjust("5 minutes")
      expect((yield* announce(token, 5002))._tag).toBe("Error")
      const peers = yield* ask({ _tag: "Query", transaction: Uint8Array.of(3), query: { method: "get_peers", id, infoHash } })
      expect(peers._tag === "Response" && peers.response.values).toEqual([{ host: "127.8.0.3", port: 5001 }])
      expect((yield* node.stats).storedPeers).toBe(1)
    }))
})

describe("Dht state file", () => {
  it.scoped("the routing table is saved at the end and loaded at the next start, with the same id", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const statePath = `${dir}/state/dht.dat`
      const network = yield* makeMemoryUdpNetwork({ link: { latency: "5 millis" } })
      const others = yield* Effect.forEach([1, 2, 3], (i) => startNode(network, i))
      const bootstrap = others.map((_, i) => ({ host: hostFor(i + 1), port: dhtPort }))
      const fsLayer = NodeFileSystem.layer
      const first = yield* Effect.scoped(
        Effect.gen(function* () {
          const node = yield* startNode(network, 10, { bootstrap, statePath }, fsLayer, false)
          expect(yield* virtually(node.bootstrap)).toBe(3)
          return node.id
        })
      )
      // No bootstrap node this time: the saved nodes are where it joins.
      const again = yield* startNode(network, 10, { statePath }, fsLayer, false)
      expect(again.id).toEqual(first)
      expect(yield* virtually(again.bootstrap)).toBe(3)
      const damaged = yield* Effect.scoped(Effect.gen(function* () {
        yield* fs.writeFile(statePath, Bencode.text("garbage"))
        return yield* startNode(network, 11, { statePath }, fsLayer, false)
      }).pipe(Effect.exit))
      expect(Exit.isSuccess(damaged)).toBe(true)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("Dht helpers", () => {
  it("the state file is under $XDG_STATE_HOME, else ~/.local/state", () => {
    expect(defaultStatePath({ XDG_STATE_HOME: "/s" }, "/home/u")).toBe("/s/effect-bittorrent/dht.dat")
    expect(defaultStatePath({ XDG_STATE_HOME: "" }, "/home/u")).toBe("/home/u/.local/state/effect-bittorrent/dht.dat")
    expect(defaultStatePath({}, "/home/u")).toBe("/home/u/.local/state/effect-bittorrent/dht.dat")
  })

  it("takes KRPC datagrams (bencoded dictionaries) and leaves uTP's to others", () => {
    expect(isKrpcDatagram(new TextEncoder().encode("d1:y1:qe"))).toBe(true)
    for (const first of [0x01, 0x11, 0x21, 0x31, 0x41]) expect(isKrpcDatagram(Uint8Array.of(first, 0))).toBe(false)
  })
})
