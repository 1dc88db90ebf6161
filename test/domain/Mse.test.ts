import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { Either, FastCheck as fc } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import {
  checkSelection,
  CryptoMethod,
  decodeHeader,
  decodeInitialPayloadLength,
  encodeProvide,
  encodeSelect,
  keyPair,
  maxPadLength,
  padLength,
  prime,
  publicKeyLength,
  Rc4,
  req1Hash,
  req2FromXored,
  req2Hash,
  req2Xor3,
  selectMethod,
  sessionKeys,
  sharedSecret
} from "../../src/domain/Mse.js"

const rc4 = (key: Uint8Array, discard?: number) => Either.getOrThrow(Rc4.make(key, discard))
const keystream = (cipher: Rc4, n: number) => {
  const out = new Uint8Array(n)
  cipher.apply(out)
  return toHex(out)
}
const privateKey = fc.uint8Array({ minLength: 16, maxLength: 96 })
const infoHash = fc.uint8Array({ minLength: 20, maxLength: 20 })
const reasonOf = <A>(e: Either.Either<A, { reason: string }>) => Either.isLeft(e) ? e.left.reason : "accepted"

describe("Rc4", () => {
  // RFC 6229, the 40-bit key 0x0102030405.
  const key = Uint8Array.from([1, 2, 3, 4, 5])

  it("matches RFC 6229 at offsets 0 and 16", () => {
    expect(keystream(rc4(key, 0), 32)).toBe("b2396305f03dc027ccc3524a0a1118a86982944f18fc82d589c403a47a0d0919")
  })

  it("matches RFC 6229 at offset 1024, which is where the discarding stream starts", () => {
    expect(keystream(rc4(key), 16)).toBe("30abbcc7c20b01609f23ee2d5f6bb7df")
  })

  it.prop("decrypting what was encrypted gives the bytes back, however the data is split", [
    fc.uint8Array({ minLength: 1, maxLength: 64 }),
    fc.uint8Array({ maxLength: 3000 }),
    fc.array(fc.nat(3000), { maxLength: 4 })
  ], ([k, data, cuts]) => {
    const encrypted = new Uint8Array(data.length)
    const sender = rc4(k)
    const points = [0, ...cuts.map((c) => Math.min(c, data.length)).sort((a, b) => a - b), data.length]
    for (let p = 1; p < points.length; p++) {
      sender.apply(data.subarray(points[p - 1], points[p]), encrypted.subarray(points[p - 1], points[p]))
    }
    rc4(k).apply(encrypted)
    expect(toHex(encrypted)).toBe(toHex(data))
  })

  it.prop("gives the same bytes whatever the alignment of input and output", [
    fc.uint8Array({ minLength: 1, maxLength: 32 }),
    fc.uint8Array({ maxLength: 200 }),
    fc.nat(7),
    fc.nat(7)
  ], ([k, data, inAt, outAt]) => {
    const input = new Uint8Array(inAt + data.length)
    input.set(data, inAt)
    const output = new Uint8Array(outAt + data.length)
    rc4(k).apply(input.subarray(inAt), output.subarray(outAt))
    const inPlace = data.slice()
    rc4(k).apply(inPlace)
    expect(toHex(output.subarray(outAt))).toBe(toHex(inPlace))
  })

  it("refuses an empty or oversized key", () => {
    expect(reasonOf(Rc4.make(new Uint8Array(0)))).toBe("KeyLength")
    expect(reasonOf(Rc4.make(new Uint8Array(257)))).toBe("KeyLength")
  })
})

describe("Diffie-Hellman", () => {
  it.prop("both sides derive the same 96-byte secret", [privateKey, privateKey], ([xa, xb]) => {
    const a = Either.getOrThrow(keyPair(xa))
    const b = Either.getOrThrow(keyPair(xb))
    expect(a.publicKey).toHaveLength(publicKeyLength)
    const sa = Either.getOrThrow(sharedSecret(a.privateKey, b.publicKey))
    const sb = Either.getOrThrow(sharedSecret(b.privateKey, a.publicKey))
    expect(sa).toHaveLength(publicKeyLength)
    expect(toHex(sa)).toBe(toHex(sb))
  }, { fastCheck: { numRuns: 20 } })

  it("refuses short or long private keys", () => {
    expect(reasonOf(keyPair(new Uint8Array(15)))).toBe("PrivateKeyLength")
    expect(reasonOf(keyPair(new Uint8Array(97)))).toBe("PrivateKeyLength")
  })

  it.prop("refuses a public key of the wrong length", [fc.uint8Array({ maxLength: 200 }).filter((b) => b.length !== 96)], ([y]) => {
    expect(reasonOf(sharedSecret(new Uint8Array(20).fill(7), y))).toBe("PublicKeyLength")
  })

  it("refuses the degenerate public keys 0, 1, P-1 and P", () => {
    const bytes = (n: bigint) => Uint8Array.from(Buffer.from(n.toString(16).padStart(192, "0"), "hex"))
    for (const y of [0n, 1n, prime - 1n, prime]) {
      expect(reasonOf(sharedSecret(new Uint8Array(20).fill(7), bytes(y)))).toBe("PublicKeyRange")
    }
  })
})

describe("derivations", () => {
  const secret = new Uint8Array(96).fill(3)

  it.prop("the receiver recovers HASH('req2', SKEY) from the hidden info hash", [infoHash], ([skey]) => {
    expect(toHex(req2FromXored(req2Xor3(skey, secret), secret))).toBe(toHex(req2Hash(skey)))
  })

  it("keys and req1 are SHA-1 over the labelled inputs", () => {
    const skey = new Uint8Array(20).fill(9)
    const keys = Either.getOrThrow(sessionKeys(secret, skey))
    const sha1 = (...parts: Array<Uint8Array | string>) => {
      const h = createHash("sha1")
      for (const p of parts) h.update(p)
      return h.digest("hex")
    }
    expect(toHex(keys.keyA)).toBe(sha1("keyA", secret, skey))
    expect(toHex(keys.keyB)).toBe(sha1("keyB", secret, skey))
    expect(toHex(keys.keyA)).not.toBe(toHex(keys.keyB))
    expect(toHex(req1Hash(secret))).toBe(sha1("req1", secret))
  })

  it("refuses a secret that is not 96 bytes", () => {
    expect(reasonOf(sessionKeys(new Uint8Array(95), new Uint8Array(20)))).toBe("SecretLength")
  })
})

describe("negotiation and headers", () => {
  it("selects by preference among what is provided, and nothing when nothing fits", () => {
    expect(selectMethod(0x03, [CryptoMethod.rc4, CryptoMethod.plaintext])).toBe(CryptoMethod.rc4)
    expect(selectMethod(0x03, [CryptoMethod.plaintext, CryptoMethod.rc4])).toBe(CryptoMethod.plaintext)
    expect(selectMethod(0x01, [CryptoMethod.rc4])).toBeUndefined()
    expect(selectMethod(0x0c, [CryptoMethod.rc4, CryptoMethod.plaintext])).toBeUndefined()
  })

  it.prop("a selection must be one method we provided", [fc.nat(0xffff), fc.integer({ min: 1, max: 3 })], ([select, provided]) => {
    const ok = (select === 1 || select === 2) && (select & provided) !== 0
    expect(Either.isRight(checkSelection(select, provided))).toBe(ok)
  })

  it.prop("padding lengths stay within 0..512", [fc.uint8Array({ minLength: 2, maxLength: 2 })], ([r]) => {
    const n = padLength(r)
    expect(n >= 0 && n <= maxPadLength).toBe(true)
  })

  it.prop("step 3 and step 4 headers decode to what was encoded", [
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.uint8Array({ maxLength: maxPadLength }),
    fc.uint8Array({ maxLength: 100 })
  ], ([provide, pad, ia]) => {
    const step3 = Either.getOrThrow(encodeProvide(provide, pad, ia))
    const header = Either.getOrThrow(decodeHeader(step3))
    expect(header).toEqual({ crypto: provide, padLength: pad.length })
    expect(Either.getOrThrow(decodeInitialPayloadLength(step3.subarray(14 + pad.length)))).toBe(ia.length)
    expect(toHex(step3.subarray(16 + pad.length))).toBe(toHex(ia))
    const step4 = Either.getOrThrow(encodeSelect(CryptoMethod.rc4, pad))
    expect(Either.getOrThrow(decodeHeader(step4))).toEqual({ crypto: CryptoMethod.rc4, padLength: pad.length })
  })

  it("refuses a wrong VC, an oversized pad or initial payload", () => {
    const bad = Either.getOrThrow(encodeSelect(CryptoMethod.rc4, new Uint8Array(0)))
    bad[3] = 1
    expect(reasonOf(decodeHeader(bad))).toBe("VerificationConstant")
    expect(reasonOf(decodeHeader(new Uint8Array(10)))).toBe("VerificationConstant")
    const longPad = new Uint8Array(14)
    longPad[12] = 0x02
    longPad[13] = 0x01
    expect(reasonOf(decodeHeader(longPad))).toBe("PadTooLong")
    expect(reasonOf(encodeSelect(CryptoMethod.rc4, new Uint8Array(513)))).toBe("PadTooLong")
    expect(reasonOf(encodeProvide(3, new Uint8Array(513), new Uint8Array(0)))).toBe("PadTooLong")
    expect(reasonOf(encodeProvide(3, new Uint8Array(0), new Uint8Array(8193)))).toBe("InitialPayloadTooLong")
    expect(reasonOf(decodeInitialPayloadLength(Uint8Array.from([0xff, 0xff])))).toBe("InitialPayloadTooLong")
  })
})
