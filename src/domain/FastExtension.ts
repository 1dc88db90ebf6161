/**
 * The Fast extension's (BEP 6) allowed-fast set: the pieces a peer lets us request while it
 * chokes us. Both sides derive it from our IPv4 address and the info hash, so it is canonical.
 */
import { createHash } from "node:crypto"
import { isIPv4 } from "node:net"

/** How many allowed-fast pieces we grant and expect (BEP 6 suggests 10). */
export const allowedFastCount = 10

/**
 * The first `k` distinct pieces of the canonical allowed-fast set for a peer at `ipv4` (BEP 6):
 * SHA-1 over the address's /24 prefix and the info hash, repeated, each digest read as five
 * big-endian words taken modulo the piece count. Empty for an IPv6 or malformed address; an
 * IPv4-mapped one (`::ffff:a.b.c.d`, as dual-stack sockets report IPv4 peers) counts as IPv4.
 */
export const allowedFastSet = (
  infoHash: Uint8Array,
  ipv4: string,
  pieceCount: number,
  k: number
): ReadonlyArray<number> => {
  const address = ipv4.toLowerCase().startsWith("::ffff:") ? ipv4.slice(7) : ipv4
  if (!isIPv4(address) || pieceCount <= 0) return []
  const want = Math.min(k, pieceCount)
  const octets = address.split(".").map(Number)
  let x = new Uint8Array(4 + infoHash.length)
  x.set([octets[0]!, octets[1]!, octets[2]!, 0], 0)
  x.set(infoHash, 4)
  const chosen: Array<number> = []
  while (chosen.length < want) {
    x = new Uint8Array(createHash("sha1").update(x).digest())
    const words = new DataView(x.buffer, x.byteOffset, x.byteLength)
    for (let i = 0; i < 5 && chosen.length < want; i++) {
      const index = words.getUint32(i * 4, false) % pieceCount
      if (!chosen.includes(index)) chosen.push(index)
    }
  }
  return chosen
}
