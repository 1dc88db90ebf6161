import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect } from "effect"
import { makeTrackerServer } from "../../services/TrackerServer.js"

/** `tracker`: an HTTP tracker until interrupted. Prints `Tracker URL: <announce URL>` on stdout once listening. */
export const trackerCommand = Command.make(
  "tracker",
  {
    port: Options.integer("port").pipe(Options.withDefault(6969), Options.withDescription("the port to listen on (0: any free port)")),
    host: Options.text("host").pipe(Options.withDefault("127.0.0.1"), Options.withDescription("the address to listen on")),
    interval: Options.integer("interval").pipe(
      Options.withDefault(60),
      Options.withDescription("seconds between a client's announces; silent peers expire after twice that")
    )
  },
  ({ host, interval, port }) =>
    Effect.scoped(
      Effect.gen(function* () {
        const tracker = yield* makeTrackerServer({ host, port, interval })
        yield* Console.log(`Tracker URL: ${tracker.url}`)
        return yield* Effect.never
      })
    )
).pipe(Command.withDescription("Run an HTTP tracker (BEP 3, compact peers, scrape) until interrupted"))
