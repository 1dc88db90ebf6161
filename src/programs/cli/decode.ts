import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { printDecoded } from "./decodeValue.js"

/** `decode <bencoded>`: prints the value as one line of JSON (the classic contract). */
export const decodeCommand = Command.make(
  "decode",
  { input: Args.text({ name: "bencoded" }).pipe(Args.withDescription("a bencoded value, e.g. 5:hello")) },
  ({ input }) => printDecoded(input)
).pipe(Command.withDescription("Decode a bencoded value and print it as JSON"))
