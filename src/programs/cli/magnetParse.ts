import * as Command from "@effect/cli/Command"
import { Console, Effect } from "effect"
import { toHex } from "../../domain/Bytes.js"
import { parseMagnet } from "../../domain/Magnet.js"
import { magnetArg } from "./clientOptions.js"

/** `magnet_parse <magnet>`: the first tracker and the info hash (the classic contract). */
export const magnetParseCommand = Command.make(
  "magnet_parse",
  { magnet: magnetArg },
  ({ magnet }) =>
    Effect.flatMap(parseMagnet(magnet), (link) => {
      const lines = link.trackers.length > 0 ? [`Tracker URL: ${link.trackers[0]}`] : []
      lines.push(`Info Hash: ${toHex(link.infoHash)}`)
      return Console.log(lines.join("\n"))
    })
).pipe(Command.withDescription("Print a magnet link's tracker URL and info hash"))
