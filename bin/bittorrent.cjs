#!/usr/bin/env node
// The CLI's entry point. It runs one of two bundles (built by `npm install`, see scripts/build.mjs)
// through V8's code cache: compiling the JavaScript is most of a cold start, and the cache
// (written at build time, rewritten when this Node rejects it) skips it.
// - dist/decode.cjs for `decode <bencoded>` alone: the decoder on the effect runtime, a quarter of
//   the full CLI's code, so that the quickest command starts in little more time than Node. Only a
//   command line the full CLI would hand straight to decode's handler comes here: one argument, not
//   empty and not an option; anything else (options, help, `--`) goes to the full CLI.
// - dist/main.cjs for everything else: the whole command tree, parser and help. The daemon, the
//   tracker and the demo (HTTP server, web UI, RPC) are dynamic imports, initialised only when run.
// CommonJS on purpose: starting the ESM loader for this file alone costs another ~10 ms.
"use strict"
const fs = require("node:fs")
const path = require("node:path")
const vm = require("node:vm")
const { Module, createRequire } = require("node:module")

const args = process.argv.slice(2)
const isPlainDecode = args.length === 2 && args[0] === "decode" && args[1] !== "" && !args[1].startsWith("-")
const bundle = path.join(__dirname, "..", "dist", isPlainDecode ? "decode.cjs" : "main.cjs")
const cacheFile = `${bundle}.v8cache`
let cachedData
try {
  cachedData = fs.readFileSync(cacheFile)
} catch {
  cachedData = undefined
}
const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, "utf8")), { filename: bundle, cachedData })
// A download, a seed or the daemon allocates many short-lived objects (messages, requests); for
// them V8 grows its young generation from 2 MiB to 32 MiB, most of it resident. Held at 2 MiB,
// peak RSS is ~20 MiB lower for no measurable CPU. The flag is set after the cache check and put
// back before the cache is written, since V8 rejects a code cache made under other flags; node
// options of the user's own that size the young generation are left to rule.
const holdsYoungGeneration =
  !isPlainDecode && !/semi-space/.test([...process.execArgv, process.env.NODE_OPTIONS ?? ""].join(" "))
// Required here, not at the top: `decode` does not load node:v8.
const setYoungGenerationGrowth = (factor) => require("node:v8").setFlagsFromString(`--semi-space-growth-factor=${factor}`)
if (holdsYoungGeneration) setYoungGenerationGrowth(1)
if (cachedData === undefined || script.cachedDataRejected) {
  process.once("exit", () => {
    if (holdsYoungGeneration) setYoungGenerationGrowth(2) // V8's default
    try {
      fs.writeFileSync(cacheFile, script.createCachedData())
    } catch {
      // A read-only install still runs, only without the cache.
    }
  })
}
const bundleModule = { exports: {} }
script.runInThisContext()(bundleModule.exports, createRequire(bundle), bundleModule, bundle, path.dirname(bundle))
