/**
 * The peer discovery flags beside trackers: `--no-pex` turns peer exchange (BEP 11) off, and
 * `--lsd` turns local service discovery (BEP 14) on. PEX is on by default (it talks only to peers
 * we are connected to anyway); LSD is off by default, since it multicasts on the local network.
 * Private torrents (BEP 27) use neither, whatever the flags say.
 */
import * as Options from "@effect/cli/Options"
import { Effect, Layer } from "effect"
import { Lsd } from "../../services/Lsd.js"

export const noPexOption = Options.boolean("no-pex").pipe(
  Options.withDescription("no peer exchange (BEP 11) with the peers we talk to (private torrents never use it)")
)

export const lsdOption = Options.boolean("lsd").pipe(
  Options.withDescription(
    "local service discovery (BEP 14): announce on the local network (multicast 239.192.152.143:6771) " +
      "and take the peers found there; private torrents never use it"
  )
)

/**
 * Runs `self` with LSD when `enabled`: on the network of `host` (the system's choice for
 * 0.0.0.0). When the multicast socket cannot be had, it says so and goes on without.
 */
export const withLocalDiscovery = (enabled: boolean, host: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  !enabled
    ? self
    : Effect.scoped(
        Effect.gen(function* () {
          const built = yield* Effect.either(Layer.build(Lsd.live(host === "0.0.0.0" ? {} : { interfaceAddress: host })))
          if (built._tag === "Left") {
            yield* Effect.logWarning(`${built.left.message}; going on without it`)
            return yield* self
          }
          return yield* Effect.provide(self, built.right)
        })
      )
