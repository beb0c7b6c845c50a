/**
 * The self-check of what `deploy generate` writes: the official IoT Edge deployment schema
 * (vendored unchanged in ../../schemas, source and license in its README), plus what that schema
 * cannot see but edgeAgent needs: createOptions chunks that join to a JSON object, none longer
 * than a chunk, and no placeholder left.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv-draft-04';
import type { ValidateFunction } from 'ajv';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { CREATE_OPTIONS_CHUNK, isCreateOptionsKey, readCreateOptions } from '@enclave-edge/edge-sim/deployment';

// A CommonJS package: under NodeNext the default import is its module.exports, whose `default` is the class.
const Ajv = AjvModule.default;

/** Same depth below the package in src/ and dist/. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));
export const DEPLOYMENT_SCHEMA_ID = 'https://json.schemastore.org/azure-iot-edge-deployment-2.0.json';
export const TEMPLATE_SCHEMA_ID = 'https://json.schemastore.org/azure-iot-edge-deployment-template-4.0.json';

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

/** `/modulesContent/$edgeAgent/properties.desired` → `modulesContent.$edgeAgent.properties.desired`. */
function field(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.join('.') || '(root)';
}

/**
 * Refuses (CONFIG_INVALID naming the field) a generated deployment that IoT Edge would not take.
 * `label` names the file in the message.
 */
export function checkDeployment(manifest: unknown, label: string): void {
  const { deployment } = officialValidators();
  if (!deployment(manifest)) {
    const errs = (deployment.errors ?? []).slice(0, 5).map((e) => {
      const p = e.params as { additionalProperty?: string; missingProperty?: string };
      return `${field(e.instancePath, p.additionalProperty ?? p.missingProperty)}: ${e.message ?? 'invalid'}`;
    });
    throw new EnclaveEdgeError('CONFIG_INVALID', `${label} does not validate against the IoT Edge deployment schema 2.0: ${errs.join('; ')}`);
  }
  const text = JSON.stringify(manifest);
  const left = /\$\{[^}]*\}/.exec(text);
  if (left) throw new EnclaveEdgeError('CONFIG_INVALID', `${label} still holds the placeholder ${left[0]}`);
  const agent = (manifest as { modulesContent: { $edgeAgent: { 'properties.desired': Record<string, unknown> } } }).modulesContent.$edgeAgent['properties.desired'];
  for (const group of ['systemModules', 'modules'] as const) {
    for (const [name, mod] of Object.entries((agent[group] ?? {}) as Record<string, { settings?: Record<string, unknown> }>)) {
      const settings = mod?.settings;
      if (!settings) continue;
      const at = `modulesContent.$edgeAgent.properties.desired.${group}.${name}.settings`;
      for (const [k, v] of Object.entries(settings)) {
        if (isCreateOptionsKey(k) && typeof v === 'string' && v.length > CREATE_OPTIONS_CHUNK) {
          throw new EnclaveEdgeError('CONFIG_INVALID', `${label}: ${at}.${k} is ${v.length} characters; IoT Edge takes at most ${CREATE_OPTIONS_CHUNK} per chunk`);
        }
      }
      try {
        readCreateOptions(settings, at);
      } catch (err) {
        throw new EnclaveEdgeError('CONFIG_INVALID', `${label}: ${(err as Error).message}`);
      }
    }
  }
}
