// Builds the CLI bundle once, before any test file runs, so that test files running in parallel
// never rebuild it under each other's feet.
import { ensureBuilt } from "./cli.js"

export default async function setup(): Promise<void> {
  await ensureBuilt()
}
