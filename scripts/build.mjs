// Bundles the CLI into two CommonJS files (one module graph each, deep imports): dist/main.cjs,
// the whole CLI, and dist/decode.cjs, `decode <bencoded>` alone (see bin/bittorrent.cjs). Then
// runs each once through bin/bittorrent.cjs so that V8's code cache for it exists. The full CLI's
// warm-up is a small local demo (loopback only): the cache then holds the download, seeding and
// tracker code too, not only the command parser. If the demo cannot run here, `decode` warms it.
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { build } from "esbuild"

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
    logLevel: "warning"
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
