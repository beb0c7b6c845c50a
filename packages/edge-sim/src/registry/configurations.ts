/**
 * IoT Hub configurations (automatic / layered deployments) for the simulated device: stored as
 * sent, with etags; the deployment the device runs is the highest-priority base deployment whose
 * targetCondition matches the device twin (ties: the newest), with every matching layered
 * deployment merged over it in ascending priority — or, when none matches, the device's own
 * deployment (the manifest or applyConfigurationContent).
 */
import { randomUUID } from 'node:crypto';
import { compileCondition, QueryError, type TwinDoc } from './query.js';
import { HubError } from '../hub/hub-error.js';
import { checkIfMatch, normalizeIfMatch } from './etag.js';

export interface Configuration {
  id: string;
  schemaVersion: string;
  labels: Record<string, string>;
  content: { modulesContent?: Record<string, Record<string, unknown>>; deviceContent?: Record<string, unknown>; moduleContent?: Record<string, unknown> };
  targetCondition: string;
  priority: number;
  createdTimeUtc: string;
  lastUpdatedTimeUtc: string;
  etag: string;
  metrics: { results: Record<string, number>; queries: Record<string, string> };
  systemMetrics: { results: Record<string, number>; queries: Record<string, string> };
}

export type ConfigurationInput = Partial<Omit<Configuration, 'createdTimeUtc' | 'lastUpdatedTimeUtc' | 'etag'>> & { content: Configuration['content'] };

const ID = /^[a-z0-9][a-z0-9-:+%_#*?!(),=@;$']{0,127}$/;


/** A layered deployment writes dotted paths (`properties.desired.modules.x`) instead of whole sections. */
export function isLayered(c: Pick<Configuration, 'content'>): boolean {
  const agent = c.content.modulesContent?.$edgeAgent;
  return !!agent && !Object.hasOwn(agent, 'properties.desired') && Object.keys(agent).some((k) => k.startsWith('properties.desired.'));
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let o = target;
  for (const p of path.slice(0, -1)) {
    const next = Object.hasOwn(o, p) ? o[p] : undefined;
    if (!next || typeof next !== 'object' || Array.isArray(next)) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[path.at(-1)!] = value;
}

/** Merge a layered deployment's modulesContent (dotted keys) into a full one. */
export function mergeLayer(base: Record<string, Record<string, unknown>>, layer: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  const out = structuredClone(base);
  for (const [module, sections] of Object.entries(layer)) {
    const twin = (out[module] ??= {});
    for (const [key, value] of Object.entries(sections)) {
      if (key === 'properties.desired') {
        twin['properties.desired'] = { ...((twin['properties.desired'] as Record<string, unknown>) ?? {}), ...(value as Record<string, unknown>) };
        continue;
      }
      if (!key.startsWith('properties.desired.')) continue;
      const desired = (twin['properties.desired'] ??= {}) as Record<string, unknown>;
      setPath(desired, key.slice('properties.desired.'.length).split('.'), structuredClone(value));
    }
  }
  return out;
}

export class ConfigurationStore {
  /** By id; the data the simulator persists or rebuilds is exactly these records. */
  readonly items = new Map<string, Configuration>();

  put(id: string, input: ConfigurationInput, ifMatch: string | undefined): Configuration {
    if (!ID.test(id)) throw new HubError(400, 400004, `configuration id ${JSON.stringify(id)} must be lower case letters, digits and - : + % _ # * ? ! ( ) , = @ ; $ ' (at most 128)`, 'BAD_PARAMETERS');
    if (input.id !== undefined && input.id !== id) throw new HubError(400, 400004, `configuration id in the body (${input.id}) differs from the URL (${id})`, 'BAD_PARAMETERS');
    if (input.targetCondition) {
      try {
        compileCondition(input.targetCondition);
      } catch (err) {
        if (err instanceof QueryError) throw new HubError(400, 400004, `targetCondition: ${err.message}`, 'BAD_PARAMETERS');
        throw err;
      }
    }
    const existing = this.items.get(id);
    const match = normalizeIfMatch(ifMatch);
    if (existing && match === undefined) throw new HubError(409, 409301, `Configuration ${id} already exists.`, 'CONFLICT');
    if (existing) checkIfMatch(match, existing.etag, `configuration ${id}`);
    if (!existing && match !== undefined && match !== '*') throw new HubError(404, 404000, `Configuration ${id} not found.`, 'ITEM_NOT_FOUND');
    const now = new Date().toISOString();
    const c: Configuration = {
      id,
      schemaVersion: input.schemaVersion ?? '1.0',
      labels: input.labels ?? {},
      content: input.content,
      targetCondition: input.targetCondition ?? '',
      priority: input.priority ?? 0,
      createdTimeUtc: existing?.createdTimeUtc ?? now,
      lastUpdatedTimeUtc: now,
      etag: Buffer.from(randomUUID()).toString('base64').slice(0, 12),
      metrics: input.metrics ?? { results: {}, queries: {} },
      systemMetrics: { results: {}, queries: {} },
    };
    this.items.set(id, c);
    return c;
  }

  get(id: string): Configuration {
    const c = this.items.get(id);
    if (!c) throw new HubError(404, 404000, `Configuration ${id} not found.`, 'ITEM_NOT_FOUND');
    return c;
  }

  remove(id: string, ifMatch: string | undefined): void {
    const c = this.get(id);
    checkIfMatch(ifMatch, c.etag, `configuration ${id}`);
    this.items.delete(id);
  }

  list(): Configuration[] {
    return [...this.items.values()];
  }

  /** The modulesContent the device should run under the stored deployments, or undefined when none targets it. */
  effective(deviceTwin: TwinDoc): { modulesContent: Record<string, Record<string, unknown>>; base: string; layers: string[] } | undefined {
    const targets = (c: Configuration): boolean => c.content.modulesContent !== undefined && c.targetCondition !== '' && compileCondition(c.targetCondition)(deviceTwin);
    const order = (a: Configuration, b: Configuration): number => b.priority - a.priority || b.createdTimeUtc.localeCompare(a.createdTimeUtc);
    const matching = this.list().filter(targets);
    const base = matching.filter((c) => !isLayered(c)).sort(order)[0];
    if (!base) return undefined;
    const layers = matching.filter(isLayered).sort((a, b) => -order(a, b));
    let mc = structuredClone(base.content.modulesContent!);
    for (const l of layers) mc = mergeLayer(mc, l.content.modulesContent!);
    return { modulesContent: mc, base: base.id, layers: layers.map((l) => l.id) };
  }
}
