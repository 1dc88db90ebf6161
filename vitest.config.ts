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
