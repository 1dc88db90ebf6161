// The CLI's entry point (copied to dist/main.mjs by scripts/build.mjs). It runs the bundle
// dist/main.cjs through V8's code cache: compiling 1.8 MB of JavaScript is most of a cold start,
// and the cache (written at build time, rewritten when this Node rejects it) skips it.
import fs from "node:fs"
import { createRequire, Module } from "node:module"
import { fileURLToPath } from "node:url"
import vm from "node:vm"

const bundle = fileURLToPath(new URL("./main.cjs", import.meta.url))
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
const module = { exports: {} }
script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, fileURLToPath(new URL(".", import.meta.url)))
