// Start-up of the bundled CLI: `decode 5:hello` against `node -e 0`, run N times each (default
// 21), interleaved so that a busy machine slows both alike. Prints both medians and their ratio.
// Usage: node scripts/measure-startup.mjs [runs]
import { execFileSync } from "node:child_process"

const runs = Number(process.argv[2] ?? 21)
const time = (args) => {
  const start = process.hrtime.bigint()
  execFileSync(process.execPath, args, { stdio: "ignore" })
  return Number(process.hrtime.bigint() - start) / 1e6
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const cli = []
const bare = []
for (let i = 0; i < runs; i++) {
  bare.push(time(["-e", "0"]))
  cli.push(time(["bin/bittorrent.cjs", "decode", "5:hello"]))
}
const [cliMs, bareMs] = [median(cli), median(bare)]
console.log(
  `decode 5:hello: median ${cliMs.toFixed(0)} ms over ${runs} runs (node -e 0: ${bareMs.toFixed(0)} ms), ${(cliMs / bareMs).toFixed(2)}x`
)
