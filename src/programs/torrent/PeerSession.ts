/**
 * One peer session of a torrent: what we send first (extension handshake, what we have, the
 * pieces they may fetch while choked) and the one message switch every chunk of their messages
 * goes through. The switch is plain synchronous bookkeeping, run once per TCP read's worth of
 * messages; it returns the pieces those messages completed, for the verify stage.
 */
import { Deferred, Either, FiberId } from "effect"
import { Bitfield } from "../../domain/Bitfield.js"
import { toHex } from "../../domain/Bytes.js"
import {
  compactIp,
  decodeExtendedHandshake,
  encodeExtendedHandshake,
  extensionHandshakeId,
  ourUtMetadataId,
  ourUtPexId,
  utMetadataName,
  utPexName
} from "../../domain/Extension.js"
import { allowedFastSet } from "../../domain/FastExtension.js"
import type { CompletedPiece } from "../../domain/PiecePicker.js"
import type { HashRequest } from "../../domain/HashRequest.js"
import { merkleHashLength } from "../../domain/Merkle.js"
import { Message, type Piece, supportsExtensions, supportsFast } from "../../domain/Wire.js"
import { type PeerConnection, PeerError } from "../../services/PeerWire.js"
import { fill, initialDepth } from "./RequestScheduler.js"
import { endSession, flush, type PeerSession, type SessionEnd, type TorrentState } from "./TorrentState.js"

/**
 * What we assume of a peer that names no `reqq` (aria2 names none): as many as libtorrent queues
 * at such a peer, the deepest our pipeline goes (see RequestScheduler.ts).
 */
const defaultPeerQueue = 500
/** Allowed Fast pieces we grant each Fast peer (BEP 6 suggests 10), and the most we keep of theirs. */
const allowedFastCount = 10
const maxAllowedFastKept = 64
export const clientVersion = "effect-bittorrent 0.1"

const noPieces: ReadonlyArray<CompletedPiece> = []

export const clientName = (peerId: Uint8Array): string => {
  const tag = Buffer.from(peerId.subarray(0, 8)).toString("latin1")
  return /^-[A-Za-z0-9]{2}[0-9A-Za-z]{4}-$/.test(tag) ? tag.slice(1, 7) : "unknown"
}

/** The session of a handshaken connection; `ourReserved` are the bits we sent. */
export const makeSession = (
  state: TorrentState,
  conn: PeerConnection,
  key: string,
  inbound: boolean,
  ourReserved: Uint8Array
): PeerSession => {
  const now = state.now()
  return {
    key,
    conn,
    inbound,
    identity: `${conn.address.host}/${toHex(conn.remote.peerId)}`,
    fast: supportsFast(ourReserved) && supportsFast(conn.remote.reserved),
    extensions: supportsExtensions(ourReserved) && supportsExtensions(conn.remote.reserved),
    choked: true,
    interested: false,
    depth: initialDepth,
    maxRequests: defaultPeerQueue,
    bytesSinceTick: 0,
    rate: 0,
    delivered: 0,
    allowedFast: new Set(),
    outbox: [],
    up: state.uploader.add(key, conn, supportsFast(ourReserved) && supportsFast(conn.remote.reserved)),
    connectedAt: now,
    lastReceivedAt: now,
    lastSentAt: now,
    uselessSince: undefined,
    hashesLeft: state.hashes?.budget ?? 0,
    ended: false,
    end: Deferred.unsafeMake<never, SessionEnd>(FiberId.none)
  }
}

/** Our first messages: the extension handshake, then what we have, then their Allowed Fast pieces. */
export const greet = (state: TorrentState, s: PeerSession): void => {
  const { info } = state
  if (s.extensions) s.outbox.push(Message.extended(extensionHandshakeId, extensionHandshake(state, s)))
  // What we serve, not what we have: a torrent whose sink cannot read back advertises nothing.
  const have = state.uploader.have
  if (s.fast) s.outbox.push(have.isComplete ? Message.haveAll : have.isEmpty ? Message.haveNone : Message.bitfield(have.bytes))
  else if (!have.isEmpty) s.outbox.push(Message.bitfield(have.bytes))
  if (s.fast) {
    for (const index of allowedFastSet(info.infoHash, s.conn.address.host, info.pieceCount, allowedFastCount)) {
      s.up.allowedFast.add(index)
      s.outbox.push(Message.allowedFast(index))
    }
  }
  flush(s, state.now())
}

const extensionHandshake = (state: TorrentState, s: PeerSession): Uint8Array => {
  // A hand-made Info may lack the info dict's bytes: then there is no metadata to offer.
  const metadata = state.info.raw.length > 0 ? state.info.raw : undefined
  const yourip = compactIp(s.conn.address.host)
  return encodeExtendedHandshake({
    m: new Map([
      ...(metadata === undefined ? [] : [[utMetadataName, ourUtMetadataId] as const]),
      ...(state.pex === undefined ? [] : [[utPexName, ourUtPexId] as const])
    ]),
    ...(metadata === undefined ? {} : { metadataSize: metadata.length }),
    v: clientVersion,
    ...(state.listening ? { p: state.port } : {}),
    // As many as the upload side queues: Transmission never keeps more requests with a peer than
    // its `reqq`, so a small one caps what it can fetch from us per round trip.
    reqq: state.uploader.maxQueuedRequests,
    ...(yourip === undefined ? {} : { yourip })
  })
}

/** Their extension handshake: where to send ut_metadata answers and ut_pex, and how many requests they queue. */
const takeExtensionHandshake = (state: TorrentState, s: PeerSession, payload: Uint8Array): void => {
  // `m` is additive (BEP 10): a later handshake changes only the ids it names, 0 disables. One that
  // does not decode changes nothing: the session does not depend on it.
  const decoded = decodeExtendedHandshake(payload)
  if (Either.isLeft(decoded)) return
  const id = decoded.right.m.get(utMetadataName)
  if (id !== undefined) s.up.utMetadata = id === 0 ? undefined : id
  if (decoded.right.reqq !== undefined && decoded.right.reqq > 0) s.maxRequests = decoded.right.reqq
  state.pex?.takeHandshake(s, decoded.right, state.now())
}

/**
 * A hash request (BEP 52), answered from our piece layers while the peer's budget lasts; what we
 * cannot answer (another layer, a v1 torrent, a flood) is refused with a hash reject.
 */
const answerHashRequest = (state: TorrentState, s: PeerSession, m: HashRequest): void => {
  const hashes = state.hashes === undefined ? undefined : Either.getOrUndefined(state.hashes.serve(m))
  if (hashes === undefined || hashes.length / merkleHashLength > s.hashesLeft) {
    s.outbox.push(Message.hashReject(m))
    return
  }
  s.hashesLeft -= hashes.length / merkleHashLength
  s.outbox.push(Message.hashes(m, hashes))
}

const violation = (s: PeerSession, rule: string): ReadonlyArray<CompletedPiece> => {
  endSession(s, new PeerError({ peer: s.key, reason: "Protocol", detail: rule }).message, false)
  return noPieces
}

/** A block they sent, counted when the picker wanted it; its duplicates asked of other peers are cancelled. Returns the piece it completed. */
const takeBlock = (state: TorrentState, s: PeerSession, m: Piece): CompletedPiece | undefined => {
  const outcome = state.picker.receive(s.key, m.index, m.begin, m.block)
  if (!outcome.accepted) return undefined
  s.bytesSinceTick += m.block.length
  s.delivered += m.block.length
  state.counters.downloaded += m.block.length
  for (const c of outcome.cancels) state.sessions.get(c.peer)?.outbox.push(Message.cancel(c.index, c.begin, c.length))
  return outcome.completed
}

/** Any message but a block; returns the rule it breaks, if it breaks one. */
const takeMessage = (state: TorrentState, s: PeerSession, m: Message): string | undefined => {
  const { picker, info } = state
  switch (m._tag) {
    case "Bitfield": {
      const bits = Bitfield.fromWire(m.bits, info.pieceCount)
      if (bits === undefined) return "bitfield of the wrong length or with spare bits set"
      picker.setBitfield(s.key, bits)
      return undefined
    }
    case "HaveAll":
      picker.setBitfield(s.key, Bitfield.full(info.pieceCount))
      return undefined
    case "HaveNone":
      picker.setBitfield(s.key, Bitfield.empty(info.pieceCount))
      return undefined
    case "Have":
      return picker.addHave(s.key, m.index) ? undefined : `have for piece ${m.index} out of range`
    case "Choke":
      s.choked = true
      // With Fast, a choke keeps our requests: the peer rejects those it will not serve (BEP 6).
      if (!s.fast) picker.release(s.key)
      return undefined
    case "Unchoke":
      s.choked = false
      return undefined
    case "RejectRequest":
      picker.reject(s.key, m.index, m.begin, m.length)
      return undefined
    case "AllowedFast":
      if (m.index < info.pieceCount && s.allowedFast.size < maxAllowedFastKept) s.allowedFast.add(m.index)
      return undefined
    case "SuggestPiece":
      if (m.index < info.pieceCount) picker.suggest(s.key, m.index)
      return undefined
    case "Extended":
      if (m.id === extensionHandshakeId) takeExtensionHandshake(state, s, m.payload)
      else if (m.id === ourUtPexId && state.pex !== undefined) state.pex.receive(s, m.payload, state.now())
      // Our other extension ids are ut_metadata's: the upload side answers them.
      else return state.uploader.handle(s.up, m)
      return undefined
    case "HashRequest":
      answerHashRequest(state, s, m)
      return undefined
    case "Request":
    case "Cancel":
    case "Interested":
    case "NotInterested":
      return state.uploader.handle(s.up, m)
    default:
      return undefined
  }
}

/**
 * Handles one chunk of a peer's messages and answers with requests (and the cancels and haves
 * queued for it). Returns the pieces whose last block arrived.
 */
export const handleChunk = (state: TorrentState, s: PeerSession, messages: ReadonlyArray<Message>): ReadonlyArray<CompletedPiece> => {
  const { picker } = state
  if (s.ended) return noPieces
  let completed: Array<CompletedPiece> | undefined
  for (const m of messages) {
    if (m._tag === "Piece") {
      const piece = takeBlock(state, s, m)
      if (piece !== undefined) (completed ??= []).push(piece)
      continue
    }
    const problem = takeMessage(state, s, m)
    if (problem !== undefined) return violation(s, problem)
  }
  const now = state.now()
  s.lastReceivedAt = now
  if (picker.isComplete && picker.peerHas(s.key)?.isComplete === true) {
    endSession(s, "both sides are seeders", true)
    return completed ?? noPieces
  }
  fill(state, s)
  flush(s, now)
  return completed ?? noPieces
}
