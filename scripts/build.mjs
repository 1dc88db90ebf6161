// Bundles the CLI into two CommonJS files (one module graph each, deep imports): dist/main.cjs,
// the whole CLI, and dist/decode.cjs, `decode <bencoded>` alone (see bin/bittorrent.cjs). Then
// runs each once through bin/bittorrent.cjs so that V8's code cache for it exists.
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { build } from "esbuild"

const bundles = [
  { entry: "src/main.ts", outfile: "dist/main.cjs", warmUp: ["demo", "--size-mib", "4", "--seeders", "2", "--quiet"] },
  { entry: "src/decodeMain.ts", outfile: "dist/decode.cjs", warmUp: ["decode", "0:"] }
]
for (const { entry, outfile, warmUp } of bundles) {
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
  execFileSync(process.execPath, ["bin/bittorrent.cjs", ...warmUp], { stdio: "ignore" })
}
