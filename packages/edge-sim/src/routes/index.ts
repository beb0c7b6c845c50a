/**
 * IoT Edge route engine: the `FROM <source> [WHERE <condition>] INTO <sink>` grammar of
 * `$edgeHub.properties.desired.routes`, compiled once into closures.
 *
 *   const routes = compileRoutes({ up: 'FROM /messages/* WHERE $contentType = \'application/json\' INTO $upstream' });
 *   routeMessage(routes, msg) // → [{ kind: 'upstream', key: '$upstream', priority, routes: ['up'] }]
 *
 * See packages/edge-sim/docs/routes.md for the supported grammar and semantics.
 */
export { compileRoutes, routeMessage, DEFAULT_ROUTE_PRIORITY } from './compile.js';
export { RouteSyntaxError } from './errors.js';
export { SOURCE_FORMS } from './parse-route.js';
export { SYSTEM_PROPERTY_NAMES } from './properties.js';
export type {
  CompiledRoute,
  RouteDefinition,
  RouteMessage,
  RouteMessageSource,
  RoutedSink,
  RouteSink,
  RouteSource,
} from './types.js';
