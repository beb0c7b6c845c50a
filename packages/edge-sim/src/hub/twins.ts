/** Module twins: desired/reported documents with versions, JSON merge-patch semantics (null deletes). */

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
    else if (isObject(v)) out[k] = mergePatch(isObject(out[k]) ? (out[k] as JsonObject) : {}, v);
    else out[k] = v;
  }
  return out;
}

function stripReserved(o: JsonObject): JsonObject {
  return mergePatch({}, o);
}

export class TwinStore {
  private readonly twins = new Map<string, Twin>();

  constructor(private readonly deviceId: string) {}

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
    return t.desiredVersion;
  }

  patchDesired(moduleId: string, patch: JsonObject): number {
    const t = this.get(moduleId);
    t.desired = mergePatch(t.desired, patch);
    t.desiredVersion++;
    t.version++;
    return t.desiredVersion;
  }

  patchReported(moduleId: string, patch: JsonObject): number {
    const t = this.get(moduleId);
    t.reported = mergePatch(t.reported, patch);
    t.reportedVersion++;
    t.version++;
    return t.reportedVersion;
  }

  patchTags(moduleId: string, patch: JsonObject): void {
    const t = this.get(moduleId);
    t.tags = mergePatch(t.tags, patch);
    t.version++;
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
