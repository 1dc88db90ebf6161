// Bundles the CLI into one ESM file (fast start-up: deep imports, one module graph) and
// compiles the library entry point with tsc for `import ... from "effect-bittorrent"`.
import { build } from "esbuild"

await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile: "dist/main.mjs",
  sourcemap: false,
  logLevel: "warning",
  // @effect/cli's dependency `yaml` calls require("process"): give the ESM bundle a require.
  banner: { js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);' }
})
