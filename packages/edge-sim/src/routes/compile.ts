/** compileRoutes / routeMessage: the route table edgeHub builds from `$edgeHub` desired properties. */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { RouteSyntaxError } from './errors.js';
import { parseRoute } from './parse-route.js';
import { newContext, type EvalContext } from './properties.js';
import { ScanError } from './scanner.js';
import type { CompiledRoute, RouteDefinition, RouteMessage, RouteMessageSource, RoutedSink, RouteSource } from './types.js';

/** Priority of routes that do not set one, below every explicit priority (0–9): the value edgeHub uses (RouteFactory.DefaultPriority). */
export const DEFAULT_ROUTE_PRIORITY = 2_000_000_000;

/** The context-taking evaluator, kept on the route under a private symbol (faster than a WeakMap). */
const EVALUATE = Symbol('evaluate');
type Internal = CompiledRoute & { [EVALUATE]?: (ctx: EvalContext) => boolean };

function sourceMatcher(s: RouteSource): (src: RouteMessageSource) => boolean {
  switch (s.kind) {
    case 'all':
    case 'messages':
      return () => true;
    case 'modules':
      return (m) => m.moduleId !== undefined;
    case 'module':
      return (m) => m.moduleId === s.module;
    case 'moduleOutputs':
      return (m) => m.moduleId === s.module && m.output !== undefined;
    case 'moduleOutput':
      return (m) => m.moduleId === s.module && m.output === s.output;
    case 'twinChangeNotifications':
      return () => false;
  }
}

function compileOne(name: string, def: RouteDefinition): CompiledRoute {
  const text = typeof def === 'string' ? def : def?.route;
  if (typeof text === 'string' && text.trim() === '') {
    throw new RouteSyntaxError(name, text, 0, 'route is empty; expected FROM <source> [WHERE <condition>] INTO <sink>');
  }
  if (typeof text !== 'string') {
    throw new EnclaveEdgeError('CONFIG_INVALID', `route "${name}" has no route text (expected a string or {route, priority?, timeToLiveSecs?})`, { detail: { route: name } });
  }
  let priority = DEFAULT_ROUTE_PRIORITY;
  let timeToLiveSecs: number | undefined;
  if (typeof def === 'object') {
    if (def.priority !== undefined) {
      if (!Number.isInteger(def.priority) || def.priority < 0 || def.priority > 9) {
        throw new EnclaveEdgeError('CONFIG_INVALID', `route "${name}": priority must be an integer from 0 to 9, got ${JSON.stringify(def.priority)}`, { detail: { route: name } });
      }
      priority = def.priority;
    }
    if (def.timeToLiveSecs !== undefined) {
      if (!Number.isInteger(def.timeToLiveSecs) || def.timeToLiveSecs < 0 || def.timeToLiveSecs > 4294967295) {
        throw new EnclaveEdgeError('CONFIG_INVALID', `route "${name}": timeToLiveSecs must be a non-negative integer, got ${JSON.stringify(def.timeToLiveSecs)}`, { detail: { route: name } });
      }
      timeToLiveSecs = def.timeToLiveSecs;
    }
  }
  let parsed;
  try {
    parsed = parseRoute(text);
  } catch (err) {
    if (err instanceof ScanError) throw new RouteSyntaxError(name, text, err.offset, err.message);
    throw err;
  }
  const fromSource = sourceMatcher(parsed.source);
  const cond = parsed.condition?.evaluate;
  const evaluate = cond
    ? (ctx: EvalContext) => fromSource(ctx.msg.source) && cond(ctx) === true
    : (ctx: EvalContext) => fromSource(ctx.msg.source);
  const route: CompiledRoute = {
    name,
    text,
    priority,
    source: parsed.source,
    sink: parsed.sink,
    matches: (msg: RouteMessage) => evaluate(newContext(msg)),
  };
  if (timeToLiveSecs !== undefined) route.timeToLiveSecs = timeToLiveSecs;
  if (parsed.condition) route.condition = parsed.condition.text;
  Object.defineProperty(route, EVALUATE, { value: evaluate, enumerable: false });
  return route;
}

/**
 * Compiles the `routes` object of `$edgeHub` desired properties. Throws RouteSyntaxError
 * (CONFIG_INVALID, naming the route and column) for the first route that does not parse.
 */
export function compileRoutes(routes: Record<string, RouteDefinition>): CompiledRoute[] {
  return Object.entries(routes).map(([name, def]) => compileOne(name, def));
}

/**
 * The sinks a message goes to. Like edgeHub, a message that matches several routes into the
 * same endpoint is delivered there once; the matching route with the highest priority (lowest
 * number) decides that delivery's priority and time to live (IoT Edge "Route priority and TTL").
 * Sinks are returned in the order their first matching route appears.
 */
export function routeMessage(routes: readonly CompiledRoute[], msg: RouteMessage): RoutedSink[] {
  const ctx = newContext(msg);
  const out: RoutedSink[] = [];
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i] as Internal;
    const ev = r[EVALUATE];
    if (!(ev ? ev(ctx) : r.matches(msg))) continue;
    const key = r.sink.key;
    let existing: RoutedSink | undefined;
    for (let j = 0; j < out.length; j++) {
      if (out[j]!.key === key) {
        existing = out[j];
        break;
      }
    }
    if (existing) {
      existing.routes.push(r.name);
      if (r.priority < existing.priority) {
        existing.priority = r.priority;
        if (r.timeToLiveSecs === undefined) delete existing.timeToLiveSecs;
        else existing.timeToLiveSecs = r.timeToLiveSecs;
      }
      continue;
    }
    const s: RoutedSink =
      r.sink.kind === 'upstream'
        ? { kind: 'upstream', key: '$upstream', priority: r.priority, routes: [r.name] }
        : { kind: 'module', key, module: r.sink.module, input: r.sink.input, priority: r.priority, routes: [r.name] };
    if (r.timeToLiveSecs !== undefined) s.timeToLiveSecs = r.timeToLiveSecs;
    out.push(s);
  }
  return out;
}
