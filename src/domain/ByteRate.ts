/**
 * Rates in bytes per second as users write them: a number with an optional suffix, `k` or `K`
 * (KiB, 1024), `M` (MiB, 1024²) or `G` (GiB, 1024³), so `4M` is 4 MiB/s (the binary multiples, as
 * aria2 reads them; Transmission's kB/s are 1000-based). `2.5M` is allowed; 0 means no limit.
 */
import { Data, Either } from "effect"

export class ByteRateError extends Data.TaggedError("ByteRateError")<{
  readonly input: string
  readonly reason: "Malformed" | "TooSmall" | "TooLarge"
}> {
  override get message() {
    switch (this.reason) {
      case "Malformed":
        return `'${this.input}' is not a rate: give bytes per second, e.g. 500000, 500k, 4M or 1G (k/K = 1024, M = 1024², G = 1024³)`
      case "TooSmall":
        return `'${this.input}' is under 1 byte per second (0 means no limit)`
      case "TooLarge":
        return `'${this.input}' is too large a rate`
    }
  }
}

export const rateMultipliers: Readonly<Record<string, number>> = { "": 1, k: 1024, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }

const pattern = /^(\d+(?:\.\d+)?)([kKMG]?)$/

/** Bytes per second (a whole number; 0: no limit). */
export const parseByteRate = (input: string): Either.Either<number, ByteRateError> => {
  const m = pattern.exec(input.trim())
  if (m === null) return Either.left(new ByteRateError({ input, reason: "Malformed" }))
  const value = Number(m[1]) * rateMultipliers[m[2]!]!
  const bytes = Math.round(value)
  if (!Number.isSafeInteger(bytes)) return Either.left(new ByteRateError({ input, reason: "TooLarge" }))
  if (bytes === 0 && value > 0) return Either.left(new ByteRateError({ input, reason: "TooSmall" }))
  return Either.right(bytes)
}
