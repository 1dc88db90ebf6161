/**
 * Composition root of `bittorrent decode <bencoded>` alone, the CLI's quickest command: no
 * argument parser, no platform layers, only the effect runtime and the decoder, so that it starts
 * in little more time than Node itself. bin/bittorrent.cjs runs it only for a command line that
 * the full CLI (src/main.ts) would hand straight to `decode`'s handler, so both answer alike.
 */
import { printDecoded } from "./programs/cli/decodeValue.js"
import { reportFailure, runCliMain } from "./programs/cli/runtime.js"

runCliMain(reportFailure(printDecoded(process.argv[3]!)))
