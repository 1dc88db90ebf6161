import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect } from "effect"
import { withShownDefault } from "./helpText.js"

/** `tracker`: an HTTP tracker until interrupted. Prints `Tracker URL: <announce URL>` on stdout once listening. */
export const trackerCommand = Command.make(
  "tracker",
  {
    port: Options.integer("port").pipe(Options.withDescription("the port to listen on (0: any free port)"), withShownDefault(6969)),
    host: Options.text("host").pipe(Options.withDescription("the address to listen on"), withShownDefault("127.0.0.1")),
    interval: Options.integer("interval").pipe(
      Options.withDescription("seconds between a client's announces; silent peers expire after twice that (10 minutes at least)"), withShownDefault(60))
  },
  ({ host, interval, port }) =>
    Effect.scoped(
      Effect.gen(function* () {
        const { makeTrackerServer } = yield* Effect.promise(() => import("../../services/TrackerServer.js"))
        const tracker = yield* makeTrackerServer({ host, port, interval })
        yield* Console.log(`Tracker URL: ${tracker.url}`)
        return yield* Effect.never
      })
    )
).pipe(Command.withDescription("Run an HTTP tracker (BEP 3, compact peers, scrape) until interrupted"))
