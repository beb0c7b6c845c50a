/**
 * IoT Hub's twin limits, so a module that works against the simulator does not fail on a device:
 * 32 KiB each for desired and reported, 8 KiB for tags (IoT Hub's size rule: key bytes + value
 * bytes, numbers 8, booleans 4, `$` keys excluded), nesting depth 10, and edgeHub's own check that
 * a reported patch's JSON is at most 32 KiB. IoT Hub refuses such operations with 400.
 */
import { HubError } from './hub-error.js';

export const TWIN_SECTION_MAX_BYTES = 32 * 1024;
export const TWIN_TAGS_MAX_BYTES = 8 * 1024;
export const TWIN_MAX_DEPTH = 10;

/** Size of a twin section as IoT Hub counts it. */
export function twinSize(value: unknown): number {
  if (value === null || value === undefined) return 0;
  switch (typeof value) {
    case 'string':
      // Control characters (C0/C1) are not counted.
      return Buffer.byteLength(value.replace(/[\u0000-\u001f\u007f-\u009f]/g, ''), 'utf8');
    case 'number':
      return 8;
    case 'boolean':
      return 4;
    case 'object': {
      if (Array.isArray(value)) return value.reduce((n: number, v) => n + twinSize(v), 0);
      let n = 0;
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (k.startsWith('$')) continue;
        n += Buffer.byteLength(k, 'utf8') + twinSize(v);
      }
      return n;
    }
    default:
      return 0;
  }
}

function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let max = 0;
  for (const v of Array.isArray(value) ? value : Object.values(value)) max = Math.max(max, depthOf(v));
  return max + 1;
}

export const twinTooLarge = (message: string): HubError => new HubError(400, 400004, message, 'PAYLOAD_TOO_LARGE');

export type TwinSection = 'desired' | 'reported' | 'tags';

const limitOf = (section: TwinSection): number => (section === 'tags' ? TWIN_TAGS_MAX_BYTES : TWIN_SECTION_MAX_BYTES);

/** Checks a patch before it is merged (JSON size as edgeHub measures it, and nesting depth). */
export function checkTwinPatch(section: TwinSection, moduleId: string, patch: unknown, jsonBytes?: number): void {
  const bytes = jsonBytes ?? Buffer.byteLength(JSON.stringify(patch), 'utf8');
  if (section !== 'tags' && bytes > TWIN_SECTION_MAX_BYTES) {
    throw twinTooLarge(`${section} properties patch of ${moduleId} is ${bytes} bytes; the limit is ${TWIN_SECTION_MAX_BYTES} (32 KiB, as IoT Hub)`);
  }
  // Levels below the root object, as edgeHub counts them.
  const depth = depthOf(patch) - 1;
  if (depth > TWIN_MAX_DEPTH) {
    throw twinTooLarge(`${section} properties patch of ${moduleId} nests ${depth} levels; the limit is ${TWIN_MAX_DEPTH}, as IoT Hub`);
  }
}

/** Checks a section after the merge: IoT Hub refuses any operation that takes it over the limit. */
export function checkTwinSection(section: TwinSection, moduleId: string, merged: unknown): void {
  const size = twinSize(merged);
  const limit = limitOf(section);
  if (size > limit) {
    throw twinTooLarge(`${section} properties of ${moduleId} would be ${size} bytes (IoT Hub's count); the limit is ${limit} (${limit / 1024} KiB, as IoT Hub)`);
  }
}
