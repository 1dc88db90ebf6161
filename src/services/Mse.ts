/**
 * The MSE/PE handshake over a `Duplex`, both roles, and the `Duplex` it hands back: one whose
 * reads decrypt and whose writes encrypt (RC4), or pass bytes through when plaintext was
 * selected, so the BitTorrent handshake and everything above it see no difference.
 *
 * Bounded: the sync searches stop after the longest padding the specification allows, the
 * initial payload is capped, and the caller bounds the time (`PeerWire` does).
 */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { concatBytes, equalBytes, toHex } from "../domain/Bytes.js"
import { formatPeer } from "../domain/Peer.js"
import * as Mse from "../domain/Mse.js"
import { closedError, type Link, read, write } from "./DuplexIo.js"
import type { Duplex, DuplexEvent, PeerError } from "./Transport.js"

/**
 * `allow`: plaintext first, MSE when the peer drops it (what strict classic peers need);
 * `prefer`: MSE first, plaintext when that fails; `require`: MSE with RC4 only; `disable`: never MSE.
 */
export type EncryptionPolicy = "allow" | "prefer" | "require" | "disable"

/** What the connection ended up as, for events and progress. */
export type Encryption = "plaintext" | "mse-plaintext" | "mse-rc4"

export interface Encrypted {
  readonly duplex: Duplex
  readonly encryption: Encryption
}

/** Gives `n` cryptographically random bytes. */
export type RandomBytes = (n: number) => Uint8Array

const secureRandom: RandomBytes = (n) => new Uint8Array(randomBytes(n))

/** Bytes of private key we draw: 160 bits, as Transmission does (the specification asks for at least 128). */
const privateKeyBytes = 20

/** The 20 bytes a plain handshake starts with: its length byte and "BitTorrent protocol". */
const plainPrefixLength = 20

// ---------------------------------------------------------------------------------------------
// The duplex after the handshake

const empty = new Uint8Array(0)

/**
 * A duplex over another one, with bytes already taken off it (and decrypted) put back in front,
 * and a keystream each way (none for plaintext).
 */
class CipherDuplex implements Duplex {
  constructor(
    private readonly inner: Duplex,
    private pending: Uint8Array,
    private readonly decrypt: Mse.Rc4 | undefined,
    private readonly encrypt: Mse.Rc4 | undefined
  ) {}

  get remote() {
    return this.inner.remote
  }
  read(size?: number): Uint8Array | null {
    const pending = this.pending
    if (pending.length === 0) return this.readInner(size)
    if (size === undefined) {
      this.pending = empty
      return pending
    }
    if (pending.length >= size) {
      this.pending = pending.subarray(size)
      return pending.subarray(0, size)
    }
    const more = this.readInner(size - pending.length)
    if (more === null && !this.inner.readEnded) return null
    this.pending = empty
    return more === null ? pending : concatBytes([pending, more])
  }
  private readInner(size: number | undefined): Uint8Array | null {
    const bytes = this.inner.read(size)
    // The bytes are ours (see `Duplex.read`): decrypted in place.
    if (bytes !== null && this.decrypt !== undefined) this.decrypt.apply(bytes)
    return bytes
  }
  get readableLength() {
    return this.pending.length + this.inner.readableLength
  }
  get readEnded() {
    return this.pending.length === 0 && this.inner.readEnded
  }
  get failure() {
    return this.inner.failure
  }
  /** Reads decrypt in place, so they are as transient as the inner duplex's. */
  get transientReads() {
    return this.inner.transientReads === true
  }
  write(bytes: Uint8Array): boolean {
    if (this.encrypt === undefined) return this.inner.write(bytes)
    // Into a new buffer (the caller may still hold on to its bytes), copied first so that it is
    // encrypted in place, word-aligned, whatever the alignment of `bytes`.
    const out = new Uint8Array(bytes.length)
    out.set(bytes)
    this.encrypt.apply(out)
    return this.inner.write(out)
  }
  /** Plaintext: gathered as the inner duplex can; encrypted: one new buffer (the chunks may be a store's blocks). */
  readonly writeGathered = (chunks: ReadonlyArray<Uint8Array>): boolean => {
    if (this.encrypt !== undefined) {
      const out = concatBytes(chunks)
      this.encrypt.apply(out)
      return this.inner.write(out)
    }
    return this.inner.writeGathered !== undefined ? this.inner.writeGathered(chunks) : this.inner.write(concatBytes(chunks))
  }
  get needsDrain() {
    return this.inner.needsDrain
  }
  get closed() {
    return this.inner.closed
  }
  on(event: DuplexEvent, f: () => void) {
    this.inner.on(event, f)
  }
  off(event: DuplexEvent, f: () => void) {
    this.inner.off(event, f)
  }
  destroy() {
    this.inner.destroy()
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the handshake

/** Raw bytes read off the duplex and not yet consumed by the handshake. */
interface Inbox {
  readonly link: Link
  bytes: Uint8Array
}

const fill = (inbox: Inbox, atLeast: number): Effect.Effect<void, PeerError> =>
  Effect.suspend(() =>
    inbox.bytes.length >= atLeast
      ? Effect.void
      : Effect.flatMap(read(inbox.link), (chunk) => {
        if (chunk === undefined) {
          return Effect.fail(closedError(inbox.link, `during the encryption handshake, after ${inbox.bytes.length} bytes`))
        }
        inbox.bytes = concatBytes([inbox.bytes, chunk])
        return fill(inbox, atLeast)
      })
  )

const take = (inbox: Inbox, n: number): Effect.Effect<Uint8Array, PeerError> =>
  Effect.map(fill(inbox, n), () => {
    const bytes = inbox.bytes.subarray(0, n)
    inbox.bytes = inbox.bytes.subarray(n)
    return bytes
  })

/** Skips to just after `marker`, which must start within `maxSkip` bytes. */
const syncOn = (
  inbox: Inbox,
  marker: Uint8Array,
  maxSkip: number,
  what: string
): Effect.Effect<void, PeerError | Mse.MseError> =>
  Effect.suspend(() => {
    const at = Mse.indexOf(inbox.bytes, marker)
    if (at >= 0 && at <= maxSkip) {
      inbox.bytes = inbox.bytes.subarray(at + marker.length)
      return Effect.void
    }
    const limit = maxSkip + marker.length
    if (inbox.bytes.length >= limit) {
      return Effect.fail(new Mse.MseError({ reason: "SyncNotFound", detail: `${what} within ${limit} bytes` }))
    }
    return Effect.zipRight(fill(inbox, inbox.bytes.length + 1), syncOn(inbox, marker, maxSkip, what))
  })

/** The next `n` bytes, decrypted. */
const takeDecrypted = (inbox: Inbox, n: number, cipher: Mse.Rc4) =>
  Effect.map(take(inbox, n), (bytes) => {
    const out = new Uint8Array(n)
    cipher.apply(bytes, out)
    return out
  })

/** A header's 14 bytes with the VC already matched by the sync: only crypto and pad length left. */
const takeHeaderAfterVc = (inbox: Inbox, cipher: Mse.Rc4) =>
  Effect.flatMap(takeDecrypted(inbox, Mse.headerLength - Mse.vc.length, cipher), (rest) =>
    Mse.decodeHeader(concatBytes([Mse.vc, rest])))

const keysFor = (secret: Uint8Array, skey: Uint8Array) =>
  Effect.flatMap(Mse.sessionKeys(secret, skey), ({ keyA, keyB }) =>
    Effect.all({ fromA: Mse.Rc4.make(keyA), fromB: Mse.Rc4.make(keyB) }))

const padding = (random: RandomBytes) => random(Mse.padLength(random(2)))

/** The duplex for the payload: what is left in the inbox decrypted by the payload's cipher. */
const payloadDuplex = (
  inbox: Inbox,
  method: Mse.CryptoMethod,
  decrypt: Mse.Rc4,
  encrypt: Mse.Rc4,
  before: Uint8Array = empty
): Encrypted => {
  const rc4 = method === Mse.CryptoMethod.rc4
  const rest = inbox.bytes.slice()
  if (rc4) decrypt.apply(rest)
  return {
    duplex: new CipherDuplex(inbox.link.duplex, concatBytes([before, rest]), rc4 ? decrypt : undefined, rc4 ? encrypt : undefined),
    encryption: rc4 ? "mse-rc4" : "mse-plaintext"
  }
}

// ---------------------------------------------------------------------------------------------
// The two roles

export interface InitiateOptions {
  readonly infoHash: Uint8Array
  /** crypto_provide: RC4 alone, or RC4 and plaintext. */
  readonly allowPlaintext: boolean
  /** IA, sent RC4-encrypted with step 3 (the BitTorrent handshake, say, to save a round trip); default none. */
  readonly initialPayload?: Uint8Array
  readonly random?: RandomBytes
}

/** A's side: steps 1, 3 and 5, reading 2 and 4. */
export const initiate = (duplex: Duplex, options: InitiateOptions): Effect.Effect<Encrypted, PeerError | Mse.MseError> =>
  Effect.gen(function* () {
    const random = options.random ?? secureRandom
    const inbox: Inbox = { link: { duplex, peer: formatPeer(duplex.remote) }, bytes: empty }
    const keys = yield* Mse.keyPair(random(privateKeyBytes))
    yield* write(inbox.link, concatBytes([keys.publicKey, padding(random)]))
    const secret = yield* Mse.sharedSecret(keys.privateKey, yield* take(inbox, Mse.publicKeyLength))
    const { fromA, fromB } = yield* keysFor(secret, options.infoHash)
    const provide = Mse.CryptoMethod.rc4 | (options.allowPlaintext ? Mse.CryptoMethod.plaintext : 0)
    const header = yield* Mse.encodeProvide(provide, empty, options.initialPayload ?? empty)
    fromA.apply(header)
    yield* write(inbox.link, concatBytes([Mse.req1Hash(secret), Mse.req2Xor3(options.infoHash, secret), header]))
    // B's encrypted VC is the first 8 bytes of its keystream.
    const encryptedVc = Mse.vc.slice()
    fromB.apply(encryptedVc)
    yield* syncOn(inbox, encryptedVc, Mse.maxPadLength, "the encrypted verification constant")
    const answer = yield* takeHeaderAfterVc(inbox, fromB)
    const method = yield* Mse.checkSelection(answer.crypto, provide)
    yield* takeDecrypted(inbox, answer.padLength, fromB)
    return payloadDuplex(inbox, method, fromB, fromA)
  })

export interface RespondOptions {
  /** The info hash whose HASH('req2', info hash) this is, if we serve it (see `skeyLookup`). */
  readonly skey: (req2: Uint8Array) => Uint8Array | undefined
  /** crypto_select: the methods we take, in order of preference. */
  readonly preference: ReadonlyArray<Mse.CryptoMethod>
  readonly random?: RandomBytes
}

export interface Responded extends Encrypted {
  /** The SKEY the initiator asked for: the info hash its BitTorrent handshake must carry. */
  readonly infoHash: Uint8Array
}

/** B's side: reads steps 1 and 3 (after `firstBytes`, already taken off the duplex), answers 2 and 4. */
export const respond = (
  duplex: Duplex,
  firstBytes: Uint8Array,
  options: RespondOptions
): Effect.Effect<Responded, PeerError | Mse.MseError> =>
  Effect.gen(function* () {
    const random = options.random ?? secureRandom
    const inbox: Inbox = { link: { duplex, peer: formatPeer(duplex.remote) }, bytes: firstBytes }
    const keys = yield* Mse.keyPair(random(privateKeyBytes))
    const secret = yield* Mse.sharedSecret(keys.privateKey, yield* take(inbox, Mse.publicKeyLength))
    yield* write(inbox.link, concatBytes([keys.publicKey, padding(random)]))
    yield* syncOn(inbox, Mse.req1Hash(secret), Mse.maxPadLength, "HASH('req1', S)")
    const infoHash = options.skey(Mse.req2FromXored(yield* take(inbox, 20), secret))
    if (infoHash === undefined) return yield* new Mse.MseError({ reason: "UnknownInfoHash" })
    const { fromA, fromB } = yield* keysFor(secret, infoHash)
    const request = yield* Mse.decodeHeader(yield* takeDecrypted(inbox, Mse.headerLength, fromA))
    yield* takeDecrypted(inbox, request.padLength, fromA)
    const initialLength = yield* Mse.decodeInitialPayloadLength(yield* takeDecrypted(inbox, 2, fromA))
    // The initial payload is always RC4, whatever is selected for what follows.
    const initialPayload = yield* takeDecrypted(inbox, initialLength, fromA)
    const method = Mse.selectMethod(request.crypto, options.preference)
    if (method === undefined) {
      return yield* new Mse.MseError({ reason: "NoCommonMethod", detail: `provided 0x${request.crypto.toString(16)}` })
    }
    const answer = yield* Mse.encodeSelect(method, empty)
    fromB.apply(answer)
    yield* write(inbox.link, answer)
    return { ...payloadDuplex(inbox, method, fromA, fromB, initialPayload), infoHash }
  })

/** `RespondOptions.skey` for the info hashes we serve. */
export const skeyLookup = (infoHashes: Iterable<Uint8Array>): RespondOptions["skey"] => {
  const byReq2 = new Map<string, Uint8Array>()
  for (const hash of infoHashes) byReq2.set(toHex(Mse.req2Hash(hash)), hash)
  return (req2) => byReq2.get(toHex(req2))
}

// ---------------------------------------------------------------------------------------------
// Telling an inbound connection apart

const plainPrefix = Uint8Array.from([19, ...Buffer.from("BitTorrent protocol", "latin1")])

export type Sniffed =
  | { readonly _tag: "Plain"; readonly duplex: Duplex }
  | { readonly _tag: "Mse"; readonly firstBytes: Uint8Array }

/**
 * Reads an inbound connection's first 20 bytes: a plain handshake starts with 19 and "BitTorrent
 * protocol" (handed back as a duplex that gives those bytes again); anything else is MSE's Ya.
 */
export const sniff = (duplex: Duplex): Effect.Effect<Sniffed, PeerError> => {
  const inbox: Inbox = { link: { duplex, peer: formatPeer(duplex.remote) }, bytes: empty }
  return Effect.map(fill(inbox, plainPrefixLength), (): Sniffed =>
    equalBytes(inbox.bytes.subarray(0, plainPrefixLength), plainPrefix)
      ? { _tag: "Plain", duplex: new CipherDuplex(duplex, inbox.bytes, undefined, undefined) }
      : { _tag: "Mse", firstBytes: inbox.bytes })
}

