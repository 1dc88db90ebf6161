import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import { Console, Effect } from "effect"
import { toHex } from "../../domain/Bytes.js"
import { parsePeer } from "../../domain/Peer.js"
import { makeReserved } from "../../domain/Wire.js"
import { PeerWire } from "../../services/PeerWire.js"
import { newPeerId } from "./clientOptions.js"
import { readTorrent } from "./torrentFile.js"

const peerArg = Args.text({ name: "ip:port" }).pipe(
  Args.mapEffect((text) => {
    const address = parsePeer(text)
    return address === undefined
      ? Effect.fail(HelpDoc.p(`'${text}' is not a peer address: expected ip:port or [ipv6]:port`))
      : Effect.succeed(address)
  }),
  Args.withDescription("the peer to connect to, e.g. 127.0.0.1:6881")
)

/**
 * `handshake <file.torrent> <ip:port>`: connects, exchanges handshakes (with the extension
 * protocol bit, reserved bytes 00 00 00 00 00 10 00 00) and prints the peer's id (the classic contract).
 */
export const handshakeCommand = Command.make(
  "handshake",
  { torrent: Args.text({ name: "torrent" }).pipe(Args.withDescription("a .torrent file")), peer: peerArg },
  ({ peer, torrent }) =>
    Effect.gen(function* () {
      const { info } = yield* readTorrent(torrent)
      const connection = yield* (yield* PeerWire).connect(peer, {
        infoHash: info.infoHash,
        peerId: newPeerId(),
        reserved: makeReserved({ extensions: true }),
        pieceCount: info.pieceCount
      })
      yield* Console.log(`Peer ID: ${toHex(connection.remote.peerId)}`)
    }).pipe(Effect.scoped, Effect.provide(PeerWire.Tcp))
).pipe(Command.withDescription("Exchange handshakes with a peer and print its peer id"))
