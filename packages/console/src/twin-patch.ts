/**
 * A desired-properties patch from the console page, checked before it is sent: a JSON object
 * (IoT Hub merge-patch semantics, `null` removes), and for our two modules the settings the
 * patch would leave in force must pass the same schemas the modules apply, so a typo is refused
 * with the field named instead of being rejected later on the device.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { hostSettingsSchema, pipelineSchema, runtimeSettingsSchema, taEntrySchema } from '@enclave-edge/protocol';
import type { ZodType } from 'zod';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386 merge patch, on own properties only. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: Record<string, Json> = Object.create(null);
  if (isObject(target)) for (const k of Object.keys(target)) out[k] = target[k]!;
  for (const k of Object.keys(patch)) {
    const v = patch[k]!;
    if (v === null) delete out[k];
    else out[k] = mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v);
  }
  return out;
}

function check(schema: ZodType, value: unknown, where: string): void {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = [where, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
    throw new EnclaveEdgeError('CONFIG_INVALID', `${path || 'desired'}: ${issue?.message ?? 'invalid'}`);
  }
}

/** The settings a patch leaves in force, checked for ta-runtime and host-module; other modules' patches only need to be objects. */
export function validateDesiredPatch(moduleId: string, currentDesired: unknown, patch: unknown): Record<string, Json> {
  if (!isObject(patch)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'a desired-properties patch is a JSON object, e.g. {"logLevel":"debug"}');
  const next = mergePatch((isObject(currentDesired) ? currentDesired : {}) as Json, patch) as Record<string, Json>;
  if (moduleId === 'ta-runtime') {
    check(runtimeSettingsSchema, next, '');
    const tas = next.tas;
    if (tas !== undefined && !isObject(tas)) throw new EnclaveEdgeError('CONFIG_INVALID', 'tas: must be an object of TA name → {source, enabled, measurement}');
    for (const [name, entry] of Object.entries(tas ?? {})) if (!name.startsWith('$')) check(taEntrySchema, entry, `tas.${name}`);
  } else if (moduleId === 'host-module') {
    check(hostSettingsSchema, next, '');
    const pipelines = next.pipelines;
    if (pipelines !== undefined && !isObject(pipelines)) throw new EnclaveEdgeError('CONFIG_INVALID', 'pipelines: must be an object of pipeline name → pipeline');
    for (const [name, p] of Object.entries(pipelines ?? {})) if (!name.startsWith('$')) check(pipelineSchema, p, `pipelines.${name}`);
  }
  return patch;
}
