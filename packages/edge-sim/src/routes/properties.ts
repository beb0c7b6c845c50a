/** How `$name` references and `$body` resolve against a RouteMessage. */
import type { RouteMessage } from './types.js';
import type { Value } from './values.js';

/** Per-evaluation state: the JSON body is parsed at most once per message, and only if asked. */
export interface EvalContext {
  msg: RouteMessage;
  bodyState: 0 | 1; // 0 = not parsed yet
  body: Value;
}

export function newContext(msg: RouteMessage): EvalContext {
  return { msg, bodyState: 0, body: undefined };
}

interface SystemProperty {
  /** Keys looked up in msg.systemProperties, first hit wins (long name, then MQTT bag key). */
  keys: string[];
  fallback?: (msg: RouteMessage) => string | undefined;
}

/** Known system properties, by lower-case name without `$`. */
export const SYSTEM_PROPERTIES: Record<string, SystemProperty> = {
  contenttype: { keys: ['contentType', '$.ct'] },
  contentencoding: { keys: ['contentEncoding', '$.ce'] },
  messageid: { keys: ['messageId', '$.mid'] },
  correlationid: { keys: ['correlationId', '$.cid'] },
  userid: { keys: ['userId', '$.uid'] },
  to: { keys: ['to', '$.to'] },
  expirytimeutc: { keys: ['expiryTimeUtc', '$.exp'] },
  creationtimeutc: { keys: ['creationTimeUtc', '$.ctime'] },
  outputname: { keys: ['outputName', '$.on'], fallback: (m) => m.source.output },
  connectiondeviceid: { keys: ['connectionDeviceId', '$.cdid'], fallback: (m) => m.source.deviceId },
  connectionmoduleid: { keys: ['connectionModuleId', '$.cmid'], fallback: (m) => m.source.moduleId },
  connectionauthmethod: { keys: ['connectionAuthMethod', '$.cam'] },
  enqueuedtime: { keys: ['enqueuedTime', 'iothub-enqueuedtime'] },
};

export const SYSTEM_PROPERTY_NAMES = [
  '$contentType', '$contentEncoding', '$messageId', '$correlationId', '$userId', '$to', '$expiryTimeUtc',
  '$creationTimeUtc', '$outputName', '$connectionDeviceId', '$connectionModuleId', '$connectionAuthMethod',
  '$enqueuedTime', '$body',
];

/** Returns a reader for `$name`, or undefined when the name is not a system property. */
export function systemPropertyReader(name: string): ((ctx: EvalContext) => Value) | undefined {
  const lower = name.toLowerCase();
  const spec = Object.hasOwn(SYSTEM_PROPERTIES, lower) ? SYSTEM_PROPERTIES[lower] : undefined;
  if (!spec) return undefined;
  const { keys, fallback } = spec;
  return (ctx) => {
    const sp = ctx.msg.systemProperties;
    for (const k of keys) {
      const v = sp[k];
      if (v !== undefined) return v;
    }
    return fallback ? fallback(ctx.msg) : undefined;
  };
}

const contentType = systemPropertyReader('contentType')!;
const contentEncoding = systemPropertyReader('contentEncoding')!;

/**
 * The parsed JSON body, or undefined when the message is not declared as JSON
 * (`$contentType = 'application/json'`) in UTF-8 or UTF-16 (`$contentEncoding`), or does not
 * parse — the precondition IoT Hub puts on body queries (UTF-32, also allowed there, is not
 * decoded here).
 */
export function readBody(ctx: EvalContext): Value {
  if (ctx.bodyState === 0) {
    ctx.bodyState = 1;
    const ct = contentType(ctx);
    const ce = contentEncoding(ctx);
    if (typeof ct === 'string' && typeof ce === 'string' && /^application\/json\b/i.test(ct)) {
      const enc = /^utf-?8$/i.test(ce) ? 'utf8' : /^utf-?16(le)?$/i.test(ce) ? 'utf16le' : undefined;
      if (enc) {
        try {
          ctx.body = JSON.parse(ctx.msg.body.toString(enc).replace(/^\uFEFF/, '')) as Value;
        } catch {
          ctx.body = undefined;
        }
      }
    }
  }
  return ctx.body;
}

/** Reader for `$body` or `$body.a.b`: walks the path through objects; anything else is undefined. */
export function bodyReader(path: string[]): (ctx: EvalContext) => Value {
  return (ctx) => {
    let v: Value = readBody(ctx);
    for (const seg of path) {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, seg)) return undefined;
      v = (v as Record<string, Value>)[seg];
    }
    return v;
  };
}

/**
 * Application property by name: exact match first, then case-insensitive (IoT Hub treats
 * message property names case-insensitively).
 */
export function appPropertyReader(name: string): (ctx: EvalContext) => Value {
  const lower = name.toLowerCase();
  return (ctx) => {
    const p = ctx.msg.properties;
    if (Object.hasOwn(p, name)) return p[name];
    for (const k in p) if (k.toLowerCase() === lower && Object.hasOwn(p, k)) return p[k];
    return undefined;
  };
}
