import { Console, Effect } from "effect"
import * as Bencode from "../../domain/Bencode.js"

/**
 * What `decode <bencoded>` does: prints the value as one line of JSON (the classic contract).
 * Apart from the command's spec so that the start-up bundle for `decode` (src/decodeMain.ts) has
 * no @effect/cli in it.
 */
export const printDecoded = (input: string) =>
  Effect.flatMap(Bencode.decode(Bencode.text(input)), (value) => Console.log(Bencode.toJson(value)))
