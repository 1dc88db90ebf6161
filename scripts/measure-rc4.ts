/**
 * Measures the MSE/PE hot paths (run: `npx tsx scripts/measure-rc4.ts`):
 *   rc4 in place   `Rc4.apply(buf)`, as a read is decrypted
 *   rc4 into       `Rc4.apply(buf, out)`, as a write is encrypted into a fresh buffer
 *   sha1           node:crypto SHA-1 over the same bytes, for scale (every downloaded byte is hashed once)
 * each over TOTAL bytes in chunks of a typical read size, best of REPEATS in CPU time (the process's
 * user + system time, steadier than wall time on a shared machine); and the Diffie-Hellman
 * cost of one handshake side (a key pair and the shared secret). Node's OpenSSL has no RC4 (legacy
 * provider), so there is no native figure to set beside it.
 */
import { createHash, randomBytes } from "node:crypto"
import { Either } from "effect"
import { keyPair, Rc4, sharedSecret } from "../src/domain/Mse.js"

const TOTAL = 256 * 1024 * 1024
const REPEATS = 5
const CHUNKS = [16 * 1024, 256 * 1024]

/** The least CPU milliseconds `run` took in REPEATS runs. */
const best = (run: () => void): number => {
  let fastest = Infinity
  for (let r = 0; r < REPEATS; r++) {
    const start = process.cpuUsage()
    run()
    const used = process.cpuUsage(start)
    fastest = Math.min(fastest, (used.user + used.system) / 1000)
  }
  return fastest
}

const mibPerSecond = (ms: number) => (TOTAL / 1048576 / (ms / 1000)).toFixed(0)

for (const chunk of CHUNKS) {
  const data = new Uint8Array(randomBytes(chunk))
  const out = new Uint8Array(chunk)
  const rounds = TOTAL / chunk
  const cipher = Either.getOrThrow(Rc4.make(new Uint8Array(randomBytes(20))))
  const inPlace = best(() => {
    for (let i = 0; i < rounds; i++) cipher.apply(data)
  })
  const into = best(() => {
    for (let i = 0; i < rounds; i++) cipher.apply(data, out)
  })
  const sha1 = best(() => {
    const hash = createHash("sha1")
    for (let i = 0; i < rounds; i++) hash.update(data)
    hash.digest()
  })
  console.log(
    `chunk ${chunk / 1024} KiB: rc4 in place ${mibPerSecond(inPlace)} MiB/s, rc4 into ${mibPerSecond(into)} MiB/s, ` +
      `sha1 ${mibPerSecond(sha1)} MiB/s; rc4 CPU per GiB ${((inPlace / 1000) * (1024 * 1048576 / TOTAL)).toFixed(2)} s`
  )
}

const handshakes = 50
const dh = best(() => {
  for (let i = 0; i < handshakes; i++) {
    const a = Either.getOrThrow(keyPair(new Uint8Array(randomBytes(20))))
    const b = Either.getOrThrow(keyPair(new Uint8Array(randomBytes(20))))
    Either.getOrThrow(sharedSecret(a.privateKey, b.publicKey))
  }
})
// two key pairs and one secret per round: one side's work is a key pair and a secret
console.log(`Diffie-Hellman, one side of a handshake: ${((dh / handshakes) * (2 / 3)).toFixed(2)} ms`)
