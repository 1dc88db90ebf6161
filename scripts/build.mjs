// Bundles the CLI into one CommonJS file (one module graph, deep imports), then runs it once
// through bin/bittorrent.cjs so that V8's code cache for the bundle exists.
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { build } from "esbuild"

await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile: "dist/main.cjs",
  sourcemap: false,
  logLevel: "warning"
})
rmSync("dist/main.cjs.v8cache", { force: true })
execFileSync(process.execPath, ["bin/bittorrent.cjs", "decode", "0:"], { stdio: "ignore" })
