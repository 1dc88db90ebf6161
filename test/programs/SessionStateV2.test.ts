/**
 * A v2 magnet's piece layers come from peers, not with its info dict: the metainfo a Session saves
 * for it carries them beside the info dict, so that it parses again (a v2-only one would not
 * without them).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { toHex } from "../../src/domain/Bytes.js"
import { parseInfo, parseTorrent } from "../../src/domain/Metainfo.js"
import { metainfoFileName, saveMetainfo } from "../../src/programs/session/SessionState.js"
import { StateStore } from "../../src/services/StateStore.js"
import { payloadBytes, v2Torrent } from "../support/torrent.js"

describe("SessionState: a v2 magnet's metainfo", () => {
  it.effect("is saved with the piece layers and parses back to the same pieces", () =>
    Effect.gen(function* () {
      const pieceLength = 16384
      const info = v2Torrent([["a.bin", payloadBytes(5 * pieceLength + 7, 1)], ["b.bin", payloadBytes(100, 2)]], pieceLength).metainfo.info
      // The bare info dict alone does not parse: its one multi-piece file's layer is missing.
      expect(Either.isLeft(parseInfo(info.raw))).toBe(true)
      const store = yield* StateStore
      const key = toHex(info.infoHash)
      yield* saveMetainfo(store, key, info)
      const saved = Option.getOrThrow(yield* store.read(metainfoFileName(key)))
      const parsed = Either.getOrThrow(parseTorrent(saved)).info
      expect(parsed.v2?.pieces).toEqual(info.v2?.pieces)
      expect(parsed.infoHash).toEqual(info.infoHash)
    }).pipe(Effect.provide(StateStore.Memory)))
})
