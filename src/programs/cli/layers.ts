/** The live services the networked commands run on: the library's ready layer. */
export { layer as ClientLayer, TrackerClientLayer } from "../ClientLayer.js"
