import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Console, Effect } from "effect"
import * as Bencode from "../../domain/Bencode.js"

/** `decode <bencoded>`: prints the value as one line of JSON (the classic contract). */
export const decodeCommand = Command.make(
  "decode",
  { input: Args.text({ name: "bencoded" }).pipe(Args.withDescription("a bencoded value, e.g. 5:hello")) },
  ({ input }) =>
    Effect.flatMap(Bencode.decode(Bencode.text(input)), (value) => Console.log(Bencode.toJson(value)))
).pipe(Command.withDescription("Decode a bencoded value and print it as JSON"))
