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
// A download, a seed or the daemon allocates many short-lived objects (messages, requests), and
// V8's defaults size its heap for throughput, not for a long-running client's footprint:
// - it grows the young generation from 2 MiB to 32 MiB, most of it resident. Held at 2 MiB, peak
//   RSS is ~20 MiB lower for no measurable CPU;
// - after a full collection it lets the old generation grow to up to 4x what survived before the
//   next one, so a download's promoted garbage (request bookkeeping, settled deferreds) kept RSS
//   climbing by ~25 MiB over its first GiB. Grown by half, a full collection comes every few
//   hundred MiB (a few ms each) and the heap stays within ~10 MiB of what is live.
// The flags are set after the cache check and put back before the cache is written, since V8
// rejects a code cache made under other flags; a flag the user's own node options set is left to rule.
const userOptions = [...process.execArgv, process.env.NODE_OPTIONS ?? ""].join(" ")
const heapSettings = isPlainDecode
  ? []
  : [
      { flag: "semi-space-growth-factor", value: 1, v8Default: 2, userSet: /semi-space/ },
      { flag: "heap-growing-percent", value: 50, v8Default: 0, userSet: /heap-growing-percent/ }
    ].filter((setting) => !setting.userSet.test(userOptions))
// Required only when there is something to set: `decode` does not load node:v8.
const setHeapFlags = (valueOf) => {
  for (const setting of heapSettings) require("node:v8").setFlagsFromString(`--${setting.flag}=${valueOf(setting)}`)
}
setHeapFlags((setting) => setting.value)
if (cachedData === undefined || script.cachedDataRejected) {
  process.once("exit", () => {
    setHeapFlags((setting) => setting.v8Default)
    try {
      fs.writeFileSync(cacheFile, script.createCachedData())
    } catch {
      // A read-only install still runs, only without the cache.
    }
  })
}
const bundleModule = { exports: {} }
script.runInThisContext()(bundleModule.exports, createRequire(bundle), bundleModule, bundle, path.dirname(bundle))
