/** Options shared by the commands that download, and the peer id they announce. */
import * as Args from "@effect/cli/Args"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { Effect, Either, Option } from "effect"
import { randomBytes } from "node:crypto"
import { parseByteRate } from "../../domain/ByteRate.js"
import { onlyFiles, parseFileIndices } from "../../domain/FileSelection.js"
import type { Info } from "../../domain/Metainfo.js"
import { makePeerId } from "../../domain/Peer.js"
import { makeRateLimits, type RateLimits } from "../torrent/RateLimiter.js"
import type { EncryptionPolicy } from "../../services/PeerWire.js"
import { withShownDefault } from "./helpText.js"

export const outputOption = Options.text("output").pipe(
  Options.withAlias("o"),
  Options.withDescription("where to write: the file of a single-file torrent, the folder of a multi-file one")
)
export const quietOption = Options.boolean("quiet").pipe(Options.withAlias("q"), Options.withDescription("no progress on stderr"))
export const portOption = Options.integer("port").pipe(
  Options.withDescription("the port announced to trackers"), withShownDefault(6881))
export const defaultPort = 6881
export const listenPortOption = Options.integer("port").pipe(
  Options.optional,
  Options.withDescription(`where to accept peers (default: ${defaultPort}, or the next free port up to ${defaultPort + 8}, else any; 0: any)`)
)
export const fastOption = Options.boolean("fast").pipe(
  Options.withDescription("negotiate the Fast extension (BEP 6); off by default for strict classic peers")
)
export const encryptionOption = Options.choice("encryption", ["allow", "prefer", "require", "disable"]).pipe(
  Options.withDescription(
    "MSE/PE, one of: allow (plaintext first, encrypted when a peer wants it), prefer (encrypted first), require (refuse plaintext peers), disable (never encrypt)"
  ),
  withShownDefault<EncryptionPolicy>("allow")
)
export const maxPeersOption = Options.integer("max-peers").pipe(
  Options.withDescription("how many peers to download from at once"), withShownDefault(30))
export const sequentialOption = Options.boolean("sequential").pipe(
  Options.withDescription("fetch pieces in order instead of rarest first")
)

export const newPeerId = (): Uint8Array => makePeerId((n) => new Uint8Array(randomBytes(n)))

export const magnetArg = Args.text({ name: "magnet" }).pipe(Args.withDescription("a magnet:?xt=urn:btih:... link"))

/**
 * Refuses a value `problem` objects to, as a usage error (exit 2): `--size-mib: must be at least 1, not 0`.
 */
export const checked = <A>(flag: string, problem: (value: A) => string | undefined) => (self: Options.Options<A>) =>
  Options.mapEffect(self, (value) => {
    const why = problem(value)
    return why === undefined ? Effect.succeed(value) : Effect.fail(invalidValue(flag, why))
  })

/** The `problem` of `checked` for a count that must be at least `min`. */
export const atLeast = (min: number) => (n: number): string | undefined =>
  n >= min ? undefined : `must be at least ${min}, not ${n}`

export const giveUpAfterOption = Options.integer("give-up-after").pipe(
  Options.withDescription("seconds to go on once every peer source failed for good and no peer is left"),
  withShownDefault(20),
  checked("--give-up-after", atLeast(1))
)

/** A rate in bytes per second with a 1024-based suffix (`4M`), optional; a bad one is a usage error (exit 2). */
const rateOption = (name: string, what: string) =>
  Options.text(name).pipe(
    Options.withPseudoName("rate"),
    Options.withDescription(`${what}, bytes per second; k/K, M, G are 1024-based (4M: 4 MiB/s; default and 0: no limit)`),
    Options.mapEffect((text) =>
      Either.match(parseByteRate(text), {
        onLeft: (e) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name}: ${e.message}`))),
        onRight: Effect.succeed
      })),
    Options.optional
  )
export const maxDownloadRateOption = rateOption("max-download-rate", "the most all peers together may send us")
export const maxUploadRateOption = rateOption("max-upload-rate", "the most we send all peers together")

/** The torrent's limits from the flags: none at all (nothing counted) unless a rate is given. */
export const rateLimitsOf = (download: Option.Option<number>, upload: Option.Option<number>): Effect.Effect<ReadonlyArray<RateLimits>> =>
  Option.isNone(download) && Option.isNone(upload)
    ? Effect.succeed([])
    : Effect.map(makeRateLimits({ download: Option.getOrUndefined(download), upload: Option.getOrUndefined(upload) }), (l) => [l])
/** A usage error (exit 2) saying what is wrong with a flag's value. */
const invalidValue = (flag: string, why: string) => ValidationError.invalidValue(HelpDoc.p(`${flag}: ${why}`))

/** `--only-files 0,2-4`: its syntax is checked at once, its indices once the torrent is known (`onlyFilesOf`). */
export const onlyFilesOption = Options.text("only-files").pipe(
  Options.withPseudoName("list"),
  checked("--only-files", (text) => Either.match(parseFileIndices(text, Infinity), { onLeft: (e) => e.detail, onRight: () => undefined })),
  Options.optional,
  Options.withDescription("download only these files, by index from 0 as `info --details` lists them, e.g. 0,2-4; the others are not created")
)

/** The file priorities of an `--only-files` list for this torrent; an index it lacks is a usage error. */
export const onlyFilesOf = (text: string, info: Info) =>
  Either.match(parseFileIndices(text, info.files.length), {
    onLeft: (e) => Effect.fail(invalidValue("--only-files", e.detail)),
    onRight: (indices) => Effect.succeed(onlyFiles(info.files.length, indices))
  })
