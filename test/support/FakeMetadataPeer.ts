/**
 * A fake peer that serves metadata over ut_metadata (BEP 9/10), on top of `makeFakePeer`. Its
 * extended payloads are built and read with plain bencode, independently of the codecs under test,
 * and it records every message the client sends after the handshakes.
 */
import { Effect, Either, type Scope, Stream } from "effect"
import * as Bencode from "../../src/domain/Bencode.js"
import { concatBytes } from "../../src/domain/Bytes.js"
import type { PeerAddress } from "../../src/domain/Peer.js"
import type { HashRequest } from "../../src/domain/HashRequest.js"
import { type Handshake, Message } from "../../src/domain/Wire.js"
import { type FakeConnection, makeFakePeer } from "./FakePeer.js"

export interface FakeMetadataPeerOptions {
  /** The bytes it serves as the info dict. */
  readonly metadata: Uint8Array
  /** The id it asks ut_metadata messages to be sent under (default 3). */
  readonly utMetadataId?: number
  /** The metadata_size it announces (default the metadata's length). */
  readonly metadataSize?: number
  /** Its whole extension handshake payload, instead of the one built from the options above. */
  readonly extensionHandshake?: Uint8Array
  /** Answers every request with a reject. */
  readonly reject?: boolean
  /** Never sends its extension handshake. */
  readonly silent?: boolean
  /** A bitfield sent before its extension handshake (peers may send either first). */
  readonly bitfield?: Uint8Array
  /** Default: only the extension protocol bit. */
  readonly reserved?: Uint8Array
  /** Default FakePeer's `fakePeerId`. */
  readonly peerId?: Uint8Array
  /** Its answer to a BEP 52 hash request (none by default). */
  readonly answerHashes?: (request: HashRequest) => Message
  /** As FakePeer's: closes its first this many connections before a byte. */
  readonly dropFirst?: number
}

export interface FakeMetadataPeer {
  readonly address: PeerAddress
  readonly connections: Effect.Effect<number>
  readonly handshakes: Effect.Effect<ReadonlyArray<Handshake>>
  /** What the client sent on each connection after the handshakes, in order. */
  readonly received: () => ReadonlyArray<ReadonlyArray<Message>>
  /** Bytes the client had sent on each connection when the fake answered its handshake. */
  readonly bytesBeforeAnswer: () => ReadonlyArray<number>
}

export const extensionReserved = Uint8Array.of(0, 0, 0, 0, 0, 0x10, 0, 0)

const dictOf = (payload: Uint8Array): Bencode.BencodeDict | undefined => {
  const d = Bencode.decodePrefix(payload, 0)
  return Either.isRight(d) && Bencode.isDict(d.right.value) ? d.right.value : undefined
}

export const makeFakeMetadataPeer = (options: FakeMetadataPeerOptions): Effect.Effect<FakeMetadataPeer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const received: Array<Array<Message>> = []
    const before: Array<number> = []
    const ownId = options.utMetadataId ?? 3
    const handshake =
      options.extensionHandshake ??
      Bencode.encode(
        Bencode.dict({
          m: Bencode.dict({ ut_metadata: Bencode.int(ownId) }),
          metadata_size: Bencode.int(options.metadataSize ?? options.metadata.length),
          v: Bencode.text("FakeMetadataPeer")
        })
      )

    const handler = (c: FakeConnection) => {
      const log: Array<Message> = []
      received[c.index] = log
      before[c.index] = c.bytesReceivedBeforeAnswer
      let clientId: number | undefined
      const opening = [
        ...(options.bitfield === undefined ? [] : [Message.bitfield(options.bitfield)]),
        ...(options.silent === true ? [] : [Message.extended(0, handshake)])
      ]
      const answer = (m: Message): Effect.Effect<void, unknown> => {
        log.push(m)
        if (m._tag === "HashRequest" && options.answerHashes !== undefined) return c.send([options.answerHashes(m)])
        if (m._tag !== "Extended") return Effect.void
        const d = dictOf(m.payload)
        if (m.id === 0) {
          const id = d === undefined ? undefined : Bencode.get(d, "m")
          const ut = Bencode.isDict(id) ? Bencode.get(id, "ut_metadata") : undefined
          clientId = Bencode.isInt(ut) ? Number(ut) : undefined
          return Effect.void
        }
        const piece = d === undefined ? undefined : Bencode.get(d, "piece")
        if (m.id !== ownId || clientId === undefined || d === undefined || Bencode.get(d, "msg_type") !== 0n || !Bencode.isInt(piece)) {
          return Effect.void
        }
        const index = Number(piece)
        if (options.reject === true) {
          return c.send([Message.extended(clientId, Bencode.encode(Bencode.dict({ msg_type: Bencode.int(2), piece })))])
        }
        const head = Bencode.encode(
          Bencode.dict({ msg_type: Bencode.int(1), piece, total_size: Bencode.int(options.metadata.length) })
        )
        const data = options.metadata.subarray(index * 16384, (index + 1) * 16384)
        return c.send([Message.extended(clientId, concatBytes([head, data]))])
      }
      return Effect.zipRight(opening.length > 0 ? c.send(opening) : Effect.void, Stream.runForEach(c.messages, answer))
    }

    const peer = yield* makeFakePeer({
      reserved: options.reserved ?? extensionReserved,
      handler,
      ...(options.peerId === undefined ? {} : { peerId: options.peerId }),
      ...(options.dropFirst === undefined ? {} : { dropFirst: options.dropFirst })
    })
    return {
      address: peer.address,
      connections: peer.connections,
      handshakes: peer.handshakes,
      received: () => received,
      bytesBeforeAnswer: () => before
    }
  })
