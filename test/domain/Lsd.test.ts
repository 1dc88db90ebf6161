import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import {
  decodeLsdAnnounce,
  encodeLsdAnnounce,
  type LsdAnnounce,
  type LsdError,
  lsdGroup6,
  maxLsdDatagram,
  maxLsdInfoHashes
} from "../../src/domain/Lsd.js"

const text = (s: string) => new TextEncoder().encode(s)
const leftOf = <A>(e: Either.Either<A, LsdError>): LsdError => {
  if (Either.isRight(e)) throw new Error(`expected a failure, got ${JSON.stringify(e.right)}`)
  return e.left
}
const rightOf = <A>(e: Either.Either<A, LsdError>): A => {
  if (Either.isLeft(e)) throw new Error(`expected a success, got ${e.left.message}`)
  return e.right
}

const hashArb = fc.uint8Array({ minLength: 20, maxLength: 20 })
const announceArb: fc.Arbitrary<LsdAnnounce> = fc.record(
  {
    port: fc.integer({ min: 1, max: 65535 }),
    infoHashes: fc.array(hashArb, { minLength: 1, maxLength: maxLsdInfoHashes }),
    cookie: fc.stringMatching(/^[A-Za-z0-9]{1,16}$/)
  },
  { requiredKeys: ["port", "infoHashes"] }
)
const hashLine = (n: number) => `Infohash: ${n.toString(16).padStart(40, "0")}`

describe("BT-SEARCH (BEP 14)", () => {
  it.prop("round-trips port, info hashes and cookie, with either group as Host", [announceArb, fc.boolean()], ([a, v6]) => {
    expect(rightOf(decodeLsdAnnounce(v6 ? encodeLsdAnnounce(a, lsdGroup6) : encodeLsdAnnounce(a)))).toEqual(a)
  })

  it("writes the message BEP 14 shows", () => {
    const hash = Uint8Array.from({ length: 20 }, (_, i) => i)
    expect(new TextDecoder().decode(encodeLsdAnnounce({ port: 6881, infoHashes: [hash], cookie: "abc" }))).toBe(
      `BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: ${toHex(hash)}\r\ncookie: abc\r\n\r\n\r\n`
    )
  })

  it("reads header names in any case, bare \\n line ends, and skips unknown headers and bad info hash lines", () => {
    const a = rightOf(decodeLsdAnnounce(text(`BT-SEARCH * HTTP/1.1\nhost: x\nPORT: 51413\nX-Other: 1\ninfohash: zz\n${hashLine(255).toUpperCase().replace("INFOHASH", "InfoHash")}\n\n`)))
    expect(a).toEqual({ port: 51413, infoHashes: [Uint8Array.from({ length: 20 }, (_, i) => (i === 19 ? 255 : 0))] })
  })

  it(`reads at most ${maxLsdInfoHashes} info hashes`, () => {
    const lines = Array.from({ length: 25 }, (_, i) => hashLine(i + 1)).join("\r\n")
    expect(rightOf(decodeLsdAnnounce(text(`BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n${lines}\r\n\r\n`))).infoHashes.length).toBe(maxLsdInfoHashes)
  })

  it.each([
    { name: "an HTTP request", datagram: `GET / HTTP/1.1\r\nPort: 1\r\n${hashLine(1)}\r\n\r\n`, reason: "NotBtSearch" },
    { name: "no Port", datagram: `BT-SEARCH * HTTP/1.1\r\n${hashLine(1)}\r\n\r\n`, reason: "BadPort" },
    { name: "Port 0", datagram: `BT-SEARCH * HTTP/1.1\r\nPort: 0\r\n${hashLine(1)}\r\n\r\n`, reason: "BadPort" },
    { name: "Port 70000", datagram: `BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\n${hashLine(1)}\r\n\r\n`, reason: "BadPort" },
    { name: "no Infohash", datagram: "BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\n\r\n", reason: "NoInfoHash" },
    { name: "a datagram above the bound", datagram: `BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\n${"X: y\r\n".repeat(maxLsdDatagram)}`, reason: "TooLarge" }
  ])("rejects $name ($reason)", ({ datagram, reason }) => {
    expect(leftOf(decodeLsdAnnounce(text(datagram))).reason).toBe(reason)
  })

  it.prop("never throws on arbitrary bytes", [fc.uint8Array({ maxLength: 256 })], ([b]) => {
    expect(Either.isEither(decodeLsdAnnounce(b))).toBe(true)
  })
})
