/**
 * IoT Edge's log request (GetModuleLogs / UploadModuleLogs payloads): which modules, which lines
 * (tail, since, until, loglevel, regex) and how they are encoded (text|json, none|gzip). One
 * parser and one renderer for both methods.
 */
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { RE2JS } from 're2js';
import type { LogLine } from './log-buffer.js';

/** A request error edgeAgent answers with 400 and a message naming the field. */
export class AgentRequestError extends Error {}

const timeSpec = z.union([z.number(), z.string().min(1).max(100)]);

export const LogFilterSchema = z.strictObject({
  tail: z.number().int().min(0).optional(),
  since: timeSpec.optional(),
  until: timeSpec.optional(),
  loglevel: z.number().int().min(0).max(7).optional(),
  regex: z.string().max(1000).optional(),
});

export const LogItemSchema = z.strictObject({ id: z.string().min(1).max(1000), filter: LogFilterSchema.optional() });

export const LogRequestSchema = z.object({
  schemaVersion: z.string(),
  items: z.array(LogItemSchema).min(1).max(100),
  encoding: z.enum(['none', 'gzip']).optional(),
  contentType: z.enum(['text', 'json']).optional(),
});
export type LogRequest = z.infer<typeof LogRequestSchema>;

const UNITS = new Map<string, number>([
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u) => [u, 1] as const),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u) => [u, 60] as const),
  ...['h', 'hr', 'hrs', 'hour', 'hours'].map((u) => [u, 3600] as const),
  ...['d', 'day', 'days'].map((u) => [u, 86400] as const),
  ...['w', 'week', 'weeks'].map((u) => [u, 604800] as const),
]);

/**
 * `since`/`until` as IoT Edge takes them: a UNIX timestamp (number or digits), an RFC 3339 time,
 * or a duration back from now ("1 d", "90 m", "2 days 3 hours 2 minutes"). Milliseconds since the epoch.
 */
export function parseTimeSpec(value: number | string, field: string, now = Date.now()): number {
  if (typeof value === 'number' || /^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const t = Date.parse(value);
    if (Number.isFinite(t)) return t;
  } else {
    const parts = [...value.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gi)];
    const consumed = parts.map((p) => p[0]).join('').trim();
    if (parts.length && consumed === value.trim() && parts.every((p) => UNITS.has(p[2]!.toLowerCase()))) {
      return now - parts.reduce((s, p) => s + Number(p[1]) * UNITS.get(p[2]!.toLowerCase())! * 1000, 0);
    }
  }
  throw new AgentRequestError(`${field}: expected a UNIX timestamp, an RFC 3339 time or a duration such as "90 m" or "2 days 3 hours" (got ${JSON.stringify(value)})`);
}

/** The syslog severity of a line in IoT Edge's recommended format (`<6> 2026-… text`); 6 (informational) when absent. */
export function logLevelOf(text: string): number {
  const m = /^<([0-7])>/.exec(text);
  return m ? Number(m[1]) : 6;
}

/** A pattern from a request, matched anywhere in a line. */
export interface LinePattern {
  test(text: string): boolean;
}

/**
 * Patterns come from whoever may call the method, so they run on RE2 (linear in the line's
 * length, whatever the pattern) rather than a backtracking engine; RE2 has no backreferences or
 * lookaround, and a pattern using them is refused rather than matched differently.
 */
export function compileRegex(source: string, field: string): LinePattern {
  try {
    return RE2JS.compile(source);
  } catch (err) {
    throw new AgentRequestError(`${field}: not a regular expression RE2 accepts (${(err as Error).message})`);
  }
}

export function selectLines(lines: readonly LogLine[], filter: z.infer<typeof LogFilterSchema> = {}, field = 'filter', now = Date.now()): LogLine[] {
  const since = filter.since !== undefined ? parseTimeSpec(filter.since, `${field}.since`, now) : -Infinity;
  const until = filter.until !== undefined ? parseTimeSpec(filter.until, `${field}.until`, now) : Infinity;
  const re = filter.regex !== undefined ? compileRegex(filter.regex, `${field}.regex`) : undefined;
  // since first, then tail on what is left (as IoT Edge documents).
  let out = lines.filter((l) => l.at >= since && l.at <= until && (filter.loglevel === undefined || logLevelOf(l.text) <= filter.loglevel) && (!re || re.test(l.text)));
  if (filter.tail !== undefined) out = filter.tail === 0 ? [] : out.slice(-filter.tail);
  return out;
}

export interface ModuleLogs {
  name: string;
  lines: LogLine[];
}

/** What each matching module's logs become in the response: text or JSON records, plain or gzip (base64 `payloadBytes`). */
export function renderLogs(ctx: { iotHub: string; deviceId: string }, logs: ModuleLogs, req: Pick<LogRequest, 'encoding' | 'contentType'>): { name: string; payload?: unknown; payloadBytes?: string } {
  const json = req.contentType === 'json';
  const records = () =>
    logs.lines.map((l) => ({ iotHub: ctx.iotHub, deviceId: ctx.deviceId, moduleId: logs.name, stream: l.stream, logLevel: logLevelOf(l.text), timeStamp: new Date(l.at).toISOString(), text: l.text }));
  const text = () => logs.lines.map((l) => l.text + '\n').join('');
  if (req.encoding === 'gzip') return { name: logs.name, payloadBytes: gzipSync(Buffer.from(json ? JSON.stringify(records()) : text())).toString('base64') };
  return { name: logs.name, payload: json ? records() : text() };
}

/** Modules whose name the item's `id` (a regular expression, matched anywhere in the name) selects. */
export function matchModules(names: string[], id: string, field: string): string[] {
  const re = compileRegex(id, field);
  return names.filter((n) => re.test(n));
}
