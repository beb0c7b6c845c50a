/**
 * The official IoT Edge deployment schema (vendored unchanged in ../../schemas, source and license
 * in its README) and the deployed form it judges. One owner for both callers: `deploy generate`
 * refuses a manifest that fails it; the simulator warns (IoT Edge ignores fields it does not know)
 * and leaves refusing to its own rules, which follow what edgeAgent refuses.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv-draft-04';
import type { ValidateFunction } from 'ajv';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { splitCreateOptions } from './create-options.js';

// A CommonJS package: under NodeNext the default import is its module.exports, whose `default` is the class.
const Ajv = AjvModule.default;

/** Same depth below the package in src/ and dist/. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));
export const DEPLOYMENT_SCHEMA_ID = 'https://json.schemastore.org/azure-iot-edge-deployment-2.0.json';
export const TEMPLATE_SCHEMA_ID = 'https://json.schemastore.org/azure-iot-edge-deployment-template-4.0.json';
export const DEPLOYMENT_SCHEMA_NAME = 'the IoT Edge deployment schema 2.0';

let validators: { deployment: ValidateFunction; template: ValidateFunction } | undefined;

/** The official validators, compiled once per process. */
export function officialValidators(): { deployment: ValidateFunction; template: ValidateFunction } {
  if (validators) return validators;
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const f of readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.json')).sort()) {
    ajv.addSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')) as object);
  }
  const get = (id: string): ValidateFunction => {
    const v = ajv.getSchema(id);
    if (!v) throw new EnclaveEdgeError('INTERNAL', `schema ${id} is missing from ${SCHEMA_DIR}`);
    return v;
  };
  validators = { deployment: get(DEPLOYMENT_SCHEMA_ID), template: get(TEMPLATE_SCHEMA_ID) };
  return validators;
}

export interface SchemaIssue {
  /** Dotted JSON path (`modulesContent.$edgeAgent.properties.desired.modules.m.restartpolicy`); keys are as written. */
  path: string;
  message: string;
  /** A field the schema does not have (IoT Edge ignores those). */
  unknownField: boolean;
}

/** `/modulesContent/$edgeAgent/properties.desired` → `modulesContent.$edgeAgent.properties.desired`. */
function dotted(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.join('.') || '(root)';
}

/** What a deployment manifest (in its deployed form, see deployedForm) breaks of the official schema; empty when it validates. */
export function officialSchemaIssues(manifest: unknown): SchemaIssue[] {
  const { deployment } = officialValidators();
  if (deployment(manifest)) return [];
  return (deployment.errors ?? []).map((e) => {
    const p = e.params as { additionalProperty?: string; missingProperty?: string };
    return { path: dotted(e.instancePath, p.additionalProperty ?? p.missingProperty), message: e.message ?? 'invalid', unknownField: e.keyword === 'additionalProperties' };
  });
}

/**
 * A template as edgeAgent would get it: `$schema-template` dropped and every module's createOptions
 * (object, string or chunks) re-split into `createOptions`, `createOptions01`, … strings. A copy;
 * refuses (naming the field) createOptions edgeAgent could not read back.
 */
export function deployedForm(manifest: unknown): unknown {
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) return manifest;
  const out = structuredClone(manifest) as Record<string, any>;
  delete out['$schema-template'];
  const agent = out.modulesContent?.$edgeAgent?.['properties.desired'];
  if (!agent || typeof agent !== 'object') return out;
  for (const group of ['systemModules', 'modules'] as const) {
    const mods = agent[group];
    if (!mods || typeof mods !== 'object') continue;
    for (const [name, mod] of Object.entries(mods as Record<string, { settings?: Record<string, unknown> }>)) {
      if (mod?.settings && typeof mod.settings === 'object' && !Array.isArray(mod.settings)) {
        mod.settings = splitCreateOptions(mod.settings, `modulesContent.$edgeAgent.properties.desired.${group}.${name}.settings`);
      }
    }
  }
  return out;
}
