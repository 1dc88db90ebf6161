// Bundles the daemon's web UI for the browser into dist/web (its script, with its page and style
// copied beside it; the daemon serves that folder at /web/). Then bundles the CLI into two
// CommonJS files (one module graph each, deep imports): dist/main.cjs, the whole CLI, and
// dist/decode.cjs, `decode <bencoded>` alone (see bin/bittorrent.cjs). Then runs each once
// through bin/bittorrent.cjs so that V8's code cache for it exists. The full CLI's warm-up is a
// small local demo (loopback only): the cache then holds the download, seeding and tracker code
// too, not only the command parser. If the demo cannot run here, `decode` warms it.
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdirSync, rmSync } from "node:fs"
import { build } from "esbuild"

mkdirSync("dist/web", { recursive: true })
await build({
  entryPoints: ["src/web/app.ts"],
  bundle: true,
  platform: "browser",
  format: "iife",
  target: "es2020",
  outfile: "dist/web/app.js",
  minify: true,
  logLevel: "warning"
})
for (const file of ["index.html", "app.css"]) copyFileSync(`src/web/${file}`, `dist/web/${file}`)

const bundles = [
  { entry: "src/main.ts", outfile: "dist/main.cjs", warmUps: [["demo", "--size-mib", "4", "--seeders", "2", "--quiet"], ["decode", "--", "0:"]] },
  { entry: "src/decodeMain.ts", outfile: "dist/decode.cjs", warmUps: [["decode", "0:"]] }
]
for (const { entry, outfile, warmUps } of bundles) {
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    outfile,
    sourcemap: false,
    // Minified, a cold start reads and checks half the source (measured ~70 ms less for
    // `download --help`). Names are not kept: keeping them wraps every named closure in a
    // defineProperty call each time it is made (a tenth of a download's allocations), and errors
    // print by their tags, not their class names.
    minify: true,
    logLevel: "warning",
    // WebUi.ts finds its folder through import.meta only where CommonJS's __dirname is absent.
    logOverride: { "empty-import-meta": "silent" }
  })
  rmSync(`${outfile}.v8cache`, { force: true })
  for (const warmUp of warmUps) {
    try {
      execFileSync(process.execPath, ["bin/bittorrent.cjs", ...warmUp], { stdio: "ignore", timeout: 60_000 })
      break
    } catch {
      rmSync(`${outfile}.v8cache`, { force: true })
    }
  }
}
