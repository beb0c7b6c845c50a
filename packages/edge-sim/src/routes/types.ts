/** Public types of the route engine (see ./index.ts for the API). */

/** Where a message came from, as edgeHub knows it from the connection and topic. */
export interface RouteMessageSource {
  deviceId: string;
  /** Absent for messages sent by a (leaf) device rather than a module. */
  moduleId?: string;
  /** The module output name (`sendOutputEvent(output, …)`); absent for `sendEvent`. */
  output?: string;
}

/**
 * A message as the router sees it. System properties are keyed by their long name without `$`
 * (`contentType`, `messageId`, …); the MQTT property-bag abbreviations (`$.ct`, `$.mid`, …)
 * are accepted too, so a decoded bag can be passed as is.
 */
export interface RouteMessage {
  source: RouteMessageSource;
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
  body: Buffer;
}

/** The parsed `FROM` part. */
export type RouteSource =
  | { kind: 'all'; text: string } // /*
  | { kind: 'messages'; text: string } // /messages/*
  | { kind: 'modules'; text: string } // /messages/modules/*
  | { kind: 'module'; text: string; module: string } // /messages/modules/{m}/*
  | { kind: 'moduleOutputs'; text: string; module: string } // /messages/modules/{m}/outputs/*
  | { kind: 'moduleOutput'; text: string; module: string; output: string } // …/outputs/{o}
  | { kind: 'twinChangeNotifications'; text: string }; // never matched by messages

/** The parsed `INTO` part. `key` is `$upstream` or `/modules/{m}/inputs/{i}` (one key per endpoint). */
export type RouteSink =
  | { kind: 'upstream'; key: '$upstream' }
  | { kind: 'module'; key: string; module: string; input: string };

export interface CompiledRoute {
  name: string;
  /** The route text as written in the manifest. */
  text: string;
  /** 0 is highest; routes without a priority get DEFAULT_ROUTE_PRIORITY (lowest). */
  priority: number;
  /** Overrides storeAndForwardConfiguration.timeToLiveSecs for messages taken by this route. */
  timeToLiveSecs?: number;
  source: RouteSource;
  sink: RouteSink;
  /** The condition text after WHERE, if any. */
  condition?: string;
  /** True when the message comes from this route's source and satisfies its condition. */
  matches(msg: RouteMessage): boolean;
}

/** A route definition as it appears under `$edgeHub.properties.desired.routes`. */
export type RouteDefinition = string | { route: string; priority?: number; timeToLiveSecs?: number };

/** One delivery decided by `routeMessage`: a sink plus the priority/TTL of the best route into it. */
export type RoutedSink = RouteSink & {
  priority: number;
  timeToLiveSecs?: number;
  /** Names of every route that matched into this sink (the first one decided priority/TTL). */
  routes: string[];
};
