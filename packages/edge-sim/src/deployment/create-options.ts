/**
 * A module's `createOptions` as IoT Edge stores it: a JSON string in `createOptions` and, when longer
 * than one twin value may be, continued in `createOptions01` … `createOptions07`. The one owner of
 * joining (the simulator, `deploy generate`) and splitting (`deploy generate`).
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';

/** Characters per chunk, as iotedgedev and the VS Code extension split. */
export const CREATE_OPTIONS_CHUNK = 512;
/** `createOptions` plus `createOptions01`…`07`: what edgeAgent reads back together. */
export const CREATE_OPTIONS_MAX_CHUNKS = 8;

const KEY = /^createOptions(\d*)$/i;

export function isCreateOptionsKey(key: string): boolean {
  return KEY.test(key);
}

/**
 * The whole createOptions of a module's settings: an object as written, or the chunks joined in
 * order and parsed. undefined when there is none. Refuses, naming `field`, a chunk without a
 * `createOptions` head, a gap in the numbering, too many chunks, or text that is not a JSON object
 * (a truncated chunk set is caught here, not deployed).
 */
export function readCreateOptions(settings: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
  const chunks = new Map<number, unknown>();
  let head: unknown;
  let hasHead = false;
  for (const [k, v] of Object.entries(settings)) {
    const m = KEY.exec(k);
    if (!m) continue;
    if (m[1] === '') {
      if (hasHead) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.${k}: createOptions given twice (keys differ only in case)`);
      head = v;
      hasHead = true;
    } else {
      const n = Number(m[1]);
      if (n < 1 || chunks.has(n)) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.${k}: chunk number must be 01…07 and unique`);
      chunks.set(n, v);
    }
  }
  if (!hasHead) {
    if (chunks.size > 0) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.createOptions: missing, but createOptions${String([...chunks.keys()][0]).padStart(2, '0')} continues it`);
    return undefined;
  }
  if (head !== null && typeof head === 'object' && !Array.isArray(head)) {
    if (chunks.size > 0) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.createOptions: an object cannot be continued by createOptionsNN chunks (those continue a string)`);
    return head as Record<string, unknown>;
  }
  if (typeof head !== 'string') throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.createOptions: expected a JSON object or a string holding one`);
  if (1 + chunks.size > CREATE_OPTIONS_MAX_CHUNKS) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}: ${1 + chunks.size} createOptions chunks; IoT Edge reads at most ${CREATE_OPTIONS_MAX_CHUNKS} (createOptions…createOptions07)`);
  let text = head;
  for (let n = 1; n <= chunks.size; n++) {
    const key = `createOptions${String(n).padStart(2, '0')}`;
    if (!chunks.has(n)) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.${key}: missing, but a later chunk is there (IoT Edge joins them in order)`);
    const c = chunks.get(n);
    if (typeof c !== 'string') throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.${key}: expected a string (a continuation of createOptions)`);
    text += c;
  }
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const of = chunks.size ? ` (createOptions and its ${chunks.size} chunk(s) joined)` : '';
    throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.createOptions: expected a JSON object, got text that is not valid JSON${of}: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.createOptions: expected a JSON object`);
  return parsed as Record<string, unknown>;
}

/**
 * Settings with createOptions (object, string or existing chunks) rewritten as minified JSON in
 * chunks of at most CREATE_OPTIONS_CHUNK characters; refuses (naming `field`) what edgeAgent could
 * not read back.
 */
export function splitCreateOptions(settings: Record<string, unknown>, field: string): Record<string, unknown> {
  const options = readCreateOptions(settings, field);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(settings)) if (!isCreateOptionsKey(k)) out[k] = v;
  if (options === undefined) return out;
  const text = JSON.stringify(options);
  const n = Math.ceil(text.length / CREATE_OPTIONS_CHUNK);
  if (n > CREATE_OPTIONS_MAX_CHUNKS) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `${field}.createOptions: ${text.length} characters as JSON; IoT Edge takes at most ${CREATE_OPTIONS_CHUNK * CREATE_OPTIONS_MAX_CHUNKS} (${CREATE_OPTIONS_MAX_CHUNKS} chunks of ${CREATE_OPTIONS_CHUNK})`);
  }
  for (let i = 0; i < n; i++) {
    out[i === 0 ? 'createOptions' : `createOptions${String(i).padStart(2, '0')}`] = text.slice(i * CREATE_OPTIONS_CHUNK, (i + 1) * CREATE_OPTIONS_CHUNK);
  }
  return out;
}
