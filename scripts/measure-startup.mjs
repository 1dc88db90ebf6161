// Start-up of the bundled CLI: `decode 5:hello`, run N times (default 21), median wall ms.
// Usage: node scripts/measure-startup.mjs [runs]
import { execFileSync } from "node:child_process"

const runs = Number(process.argv[2] ?? 21)
const time = (args) => {
  const start = process.hrtime.bigint()
  execFileSync(process.execPath, args, { stdio: "ignore" })
  return Number(process.hrtime.bigint() - start) / 1e6
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const cli = Array.from({ length: runs }, () => time(["bin/bittorrent.cjs", "decode", "5:hello"]))
const bare = Array.from({ length: runs }, () => time(["-e", "0"]))
console.log(`decode 5:hello: median ${median(cli).toFixed(0)} ms over ${runs} runs (node -e 0: ${median(bare).toFixed(0)} ms)`)
