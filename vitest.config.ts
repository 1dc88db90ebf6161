import { tmpdir } from "node:os"
import * as path from "node:path"
import { configDefaults, defineConfig } from "vitest/config"

// Two projects: unit tests run in parallel first; then the interop tests, which drive a real
// loopback swarm of third-party clients (test/support/Swarm.ts), run one file at a time so that
// the swarm, its seeders and our client share the (two) cores with nothing else.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ["test/support/globalSetup.ts"],
    // The in-process half of the loopback guard (the global setup audits child processes).
    setupFiles: ["test/support/loopbackHooks.ts"],
    // Every CLI the tests start joins the DHT through a loopback port nobody answers on (never the
    // public routers) and keeps its DHT state out of the user's home; a test passes its own
    // --dht-bootstrap or --no-dht where the DHT matters.
    env: {
      BITTORRENT_DHT_BOOTSTRAP: "127.0.0.1:9",
      XDG_STATE_HOME: path.join(tmpdir(), "effect-bittorrent-test-state")
    },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/interop/**"],
          sequence: { groupOrder: 0 }
        }
      },
      {
        extends: true,
        test: {
          name: "interop",
          include: ["test/interop/**/*.test.ts"],
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
          // bounded by the helpers' own timeouts first; these are the backstops
          testTimeout: 300_000,
          hookTimeout: 300_000
        }
      }
    ]
  }
})
