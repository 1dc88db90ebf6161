/**
 * Every route of the daemon, one router per front end. A front end is added here and nowhere
 * else; each answers its own errors in its own protocol's shape.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { metricsRoutes } from "./Metrics.js"
import { restRoutes } from "./RestApi.js"
import { streamRoutes } from "./StreamRoute.js"
import { transmissionRpc } from "./TransmissionRpc.js"

export const daemonRoutes = HttpRouter.empty.pipe(
  HttpRouter.get("/", Effect.succeed(HttpServerResponse.redirect("/web/", { status: 302 }))),
  HttpRouter.concat(transmissionRpc),
  HttpRouter.concat(restRoutes),
  HttpRouter.concat(streamRoutes),
  HttpRouter.concat(metricsRoutes)
)
