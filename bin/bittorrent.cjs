#!/usr/bin/env node
// The CLI's entry point. It runs the bundle dist/main.cjs (built by `npm install`, see
// scripts/build.mjs) through V8's code cache: compiling 1.8 MB of JavaScript is most of a cold
// start, and the cache (written at build time, rewritten when this Node rejects it) skips it.
// CommonJS on purpose: starting the ESM loader for this file alone costs another ~10 ms.
"use strict"
const fs = require("node:fs")
const path = require("node:path")
const vm = require("node:vm")
const { Module, createRequire } = require("node:module")

const bundle = path.join(__dirname, "..", "dist", "main.cjs")
const cacheFile = `${bundle}.v8cache`
let cachedData
try {
  cachedData = fs.readFileSync(cacheFile)
} catch {
  cachedData = undefined
}
const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, "utf8")), { filename: bundle, cachedData })
if (cachedData === undefined || script.cachedDataRejected) {
  process.once("exit", () => {
    try {
      fs.writeFileSync(cacheFile, script.createCachedData())
    } catch {
      // A read-only install still runs, only without the cache.
    }
  })
}
const bundleModule = { exports: {} }
script.runInThisContext()(bundleModule.exports, createRequire(bundle), bundleModule, bundle, path.dirname(bundle))
