/**
 * The live services the networked commands run on: the library's ready layer (TCP and uTP) for
 * the torrent commands, TCP alone for the one-peer classic ones and the demo.
 */
export { layer as ClientLayer, tcpLayer as TcpClientLayer, TrackerClientLayer } from "../ClientLayer.js"
