/** Module twins: desired/reported documents with versions, JSON merge-patch semantics (null deletes). */
import { checkTwinPatch, checkTwinSection } from './twin-limits.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface Twin {
  deviceId: string;
  moduleId: string;
  desired: JsonObject;
  desiredVersion: number;
  reported: JsonObject;
  reportedVersion: number;
  tags: JsonObject;
  version: number;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 merge patch; keys starting with `$` are reserved and ignored. */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else {
      const before = Object.hasOwn(out, k) ? out[k] : undefined; // "constructor" is not a twin key
      // defineProperty: a "__proto__" key stays a key instead of replacing the prototype.
      Object.defineProperty(out, k, { value: isObject(v) ? mergePatch(isObject(before) ? before : {}, v) : v, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

function stripReserved(o: JsonObject): JsonObject {
  return mergePatch({}, o);
}

export class TwinStore {
  private readonly twins = new Map<string, Twin>();
  /** Called after every change, before the caller acknowledges it (the simulator persists here). */
  onChange: (() => void) | undefined;

  constructor(private readonly deviceId: string) {}

  /** Copies of every twin (for persistence). */
  snapshot(): Twin[] {
    return [...this.twins.values()].map((t) => structuredClone(t));
  }

  /** Put saved twins back (at start, before any module connects). */
  restore(twins: Twin[]): void {
    for (const t of twins) if (typeof t?.moduleId === 'string') this.twins.set(t.moduleId, { ...structuredClone(t), deviceId: this.deviceId });
  }

  get(moduleId: string): Twin {
    let t = this.twins.get(moduleId);
    if (!t) {
      t = { deviceId: this.deviceId, moduleId, desired: {}, desiredVersion: 1, reported: {}, reportedVersion: 1, tags: {}, version: 1 };
      this.twins.set(moduleId, t);
    }
    return t;
  }

  has(moduleId: string): boolean {
    return this.twins.has(moduleId);
  }

  /** Replace desired properties wholesale (deployment); returns the new version. */
  setDesired(moduleId: string, desired: JsonObject): number {
    const t = this.get(moduleId);
    t.desired = stripReserved(desired);
    t.desiredVersion++;
    t.version++;
    this.onChange?.();
    return t.desiredVersion;
  }

  /**
   * Replace reported properties wholesale, for what the runtime itself writes (`$edgeAgent` /
   * `$edgeHub`); returns the new reported version. Unchanged content keeps the version.
   */
  replaceReported(moduleId: string, reported: JsonObject): number {
    const t = this.get(moduleId);
    const next = stripReserved(reported);
    if (JSON.stringify(next) === JSON.stringify(t.reported)) return t.reportedVersion;
    t.reported = next;
    t.version++;
    return ++t.reportedVersion;
  }

  /** Throws what a patch would throw (IoT Hub's limits), without applying it. */
  checkPatch(section: 'desired' | 'reported' | 'tags', moduleId: string, patch: JsonObject): void {
    checkTwinPatch(section, moduleId, patch);
    checkTwinSection(section, moduleId, mergePatch(this.get(moduleId)[section], patch));
  }

  /** Throws HubError 400 (IoT Hub's limits) and leaves the twin unchanged when the patch is too large. */
  patchDesired(moduleId: string, patch: JsonObject): number {
    const t = this.applyPatch('desired', moduleId, patch);
    ++t.desiredVersion;
    this.onChange?.();
    return t.desiredVersion;
  }

  /** Throws HubError 400 (IoT Hub's limits) and leaves the twin unchanged when the patch is too large. */
  patchReported(moduleId: string, patch: JsonObject, jsonBytes?: number): number {
    const t = this.applyPatch('reported', moduleId, patch, jsonBytes);
    ++t.reportedVersion;
    this.onChange?.();
    return t.reportedVersion;
  }

  patchTags(moduleId: string, patch: JsonObject): void {
    this.applyPatch('tags', moduleId, patch);
    this.onChange?.();
  }

  /** Check the patch and the merged section against IoT Hub's limits, then apply it (twin version + 1). */
  private applyPatch(section: 'desired' | 'reported' | 'tags', moduleId: string, patch: JsonObject, jsonBytes?: number): Twin {
    const t = this.get(moduleId);
    checkTwinPatch(section, moduleId, patch, jsonBytes);
    const merged = mergePatch(t[section], patch);
    checkTwinSection(section, moduleId, merged);
    t[section] = merged;
    t.version++;
    return t;
  }

  /** What the device SDK receives for a twin GET: never empty. */
  deviceView(moduleId: string): { desired: JsonObject; reported: JsonObject } {
    const t = this.get(moduleId);
    return { desired: { ...t.desired, $version: t.desiredVersion }, reported: { ...t.reported, $version: t.reportedVersion } };
  }

  /** The IoT Hub service shape of a module twin. */
  serviceView(moduleId: string, connected: boolean): JsonObject {
    const t = this.get(moduleId);
    return {
      deviceId: t.deviceId,
      moduleId,
      etag: Buffer.from(String(t.version)).toString('base64'),
      version: t.version,
      status: 'enabled',
      connectionState: connected ? 'Connected' : 'Disconnected',
      tags: t.tags,
      properties: {
        desired: { ...t.desired, $version: t.desiredVersion },
        reported: { ...t.reported, $version: t.reportedVersion },
      },
    };
  }
}
