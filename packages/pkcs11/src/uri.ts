/**
 * RFC 7512 PKCS#11 URIs: `pkcs11:token=T;object=O;type=private?pin-source=file:/p&module-path=/lib.so`.
 * Path attributes select the token and object; query attributes say how to reach them.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';

export type Pkcs11ObjectType = 'private' | 'public' | 'secret-key' | 'cert' | 'data';

export interface Pkcs11Uri {
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  slotId?: number;
  slotDescription?: string;
  slotManufacturer?: string;
  libraryManufacturer?: string;
  libraryDescription?: string;
  object?: string;
  /** CKA_ID as raw bytes (the URI carries it percent-encoded). */
  id?: Uint8Array;
  type?: Pkcs11ObjectType;
  modulePath?: string;
  moduleName?: string;
  pinValue?: string;
  /** `file:/path` or a plain path, as RFC 7512 allows. */
  pinSource?: string;
}

const PATH_ATTRS = new Set([
  'token', 'manufacturer', 'serial', 'model', 'slot-id', 'slot-description', 'slot-manufacturer',
  'library-manufacturer', 'library-description', 'library-version', 'object', 'id', 'type',
]);
const QUERY_ATTRS = new Set(['module-path', 'module-name', 'pin-value', 'pin-source']);
const TYPES = new Set<Pkcs11ObjectType>(['private', 'public', 'secret-key', 'cert', 'data']);

function bad(uri: string, why: string): EnclaveEdgeError {
  // Never echo the URI itself: it may carry pin-value.
  void uri;
  return new EnclaveEdgeError('CONFIG_INVALID', `invalid PKCS#11 URI: ${why}`);
}

/** Percent-decode to bytes (attribute values may be arbitrary octets, e.g. id). */
function decodeBytes(uri: string, raw: string, attr: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw bad(uri, `bad percent-encoding in "${attr}"`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(ch, 'utf8')) out.push(b);
    }
  }
  return Uint8Array.from(out);
}

function decodeText(uri: string, raw: string, attr: string): string {
  const bytes = decodeBytes(uri, raw, attr);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw bad(uri, `"${attr}" is not valid UTF-8 after percent-decoding`);
  }
}

function splitAttrs(uri: string, part: string, sep: string, allowed: Set<string>, where: string): Map<string, string> {
  const map = new Map<string, string>();
  if (part === '') return map;
  for (const item of part.split(sep)) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw bad(uri, `${where} attribute "${item.slice(0, 32)}" has no "="`);
    const name = item.slice(0, eq).toLowerCase();
    if (!allowed.has(name)) {
      // RFC 7512 allows vendor attributes (x-...); unknown standard ones are refused so typos are caught.
      if (name.startsWith('x-')) continue;
      throw bad(uri, `unknown ${where} attribute "${name}"`);
    }
    if (map.has(name)) throw bad(uri, `${where} attribute "${name}" given twice`);
    map.set(name, item.slice(eq + 1));
  }
  return map;
}

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (typeof uri !== 'string' || !/^pkcs11:/i.test(uri)) throw bad(String(uri), 'must start with "pkcs11:"');
  const body = uri.slice('pkcs11:'.length);
  const q = body.indexOf('?');
  const pathPart = q < 0 ? body : body.slice(0, q);
  const queryPart = q < 0 ? '' : body.slice(q + 1);
  const path = splitAttrs(uri, pathPart, ';', PATH_ATTRS, 'path');
  const query = splitAttrs(uri, queryPart, '&', QUERY_ATTRS, 'query');
  const out: Pkcs11Uri = {};
  const text = (m: Map<string, string>, k: string) => (m.has(k) ? decodeText(uri, m.get(k)!, k) : undefined);
  const set = <K extends keyof Pkcs11Uri>(k: K, v: Pkcs11Uri[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('token', text(path, 'token'));
  set('manufacturer', text(path, 'manufacturer'));
  set('serial', text(path, 'serial'));
  set('model', text(path, 'model'));
  set('slotDescription', text(path, 'slot-description'));
  set('slotManufacturer', text(path, 'slot-manufacturer'));
  set('libraryManufacturer', text(path, 'library-manufacturer'));
  set('libraryDescription', text(path, 'library-description'));
  set('object', text(path, 'object'));
  if (path.has('id')) {
    const id = decodeBytes(uri, path.get('id')!, 'id');
    if (id.length === 0) throw bad(uri, '"id" is empty');
    out.id = id;
  }
  const slot = text(path, 'slot-id');
  if (slot !== undefined) {
    if (!/^\d{1,15}$/.test(slot)) throw bad(uri, '"slot-id" must be a decimal number');
    out.slotId = Number(slot);
  }
  const type = text(path, 'type');
  if (type !== undefined) {
    if (!TYPES.has(type as Pkcs11ObjectType)) throw bad(uri, `"type" must be one of ${[...TYPES].join(', ')}`);
    out.type = type as Pkcs11ObjectType;
  }
  set('modulePath', text(query, 'module-path'));
  set('moduleName', text(query, 'module-name'));
  set('pinValue', text(query, 'pin-value'));
  set('pinSource', text(query, 'pin-source'));
  if (out.pinValue !== undefined && out.pinSource !== undefined) throw bad(uri, 'give "pin-value" or "pin-source", not both');
  return out;
}

/** Encode a value for a URI attribute (everything outside RFC 3986 unreserved is percent-encoded). */
export function encodePkcs11Attr(value: string | Uint8Array): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  let s = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9\-._~]/.test(c) ? c : '%' + b.toString(16).padStart(2, '0').toUpperCase();
  }
  return s;
}

/** Build a URI (without PIN) naming a token and optionally an object. */
export function formatPkcs11Uri(parts: { token?: string; object?: string; id?: Uint8Array; type?: Pkcs11ObjectType; modulePath?: string }): string {
  const path: string[] = [];
  if (parts.token !== undefined) path.push(`token=${encodePkcs11Attr(parts.token)}`);
  if (parts.object !== undefined) path.push(`object=${encodePkcs11Attr(parts.object)}`);
  if (parts.id !== undefined) path.push(`id=${encodePkcs11Attr(parts.id)}`);
  if (parts.type !== undefined) path.push(`type=${parts.type}`);
  const q = parts.modulePath !== undefined ? `?module-path=${encodePkcs11Attr(parts.modulePath).replace(/%2F/g, '/')}` : '';
  return `pkcs11:${path.join(';')}${q}`;
}
