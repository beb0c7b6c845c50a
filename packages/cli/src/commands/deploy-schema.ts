/**
 * The self-check of what `deploy generate` writes: the official IoT Edge deployment schema
 * (@enclave-edge/edge-sim/deployment owns it, shared with `sim up`), plus what that schema
 * cannot see but edgeAgent needs: createOptions chunks that join to a JSON object, none longer
 * than a chunk, and no placeholder left.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { CREATE_OPTIONS_CHUNK, DEPLOYMENT_SCHEMA_NAME, isCreateOptionsKey, officialSchemaIssues, readCreateOptions } from '@enclave-edge/edge-sim/deployment';

/**
 * Refuses (CONFIG_INVALID naming the field) a generated deployment that IoT Edge would not take.
 * `label` names the file in the message.
 */
export function checkDeployment(manifest: unknown, label: string): void {
  const issues = officialSchemaIssues(manifest);
  if (issues.length) {
    const errs = issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`);
    throw new EnclaveEdgeError('CONFIG_INVALID', `${label} does not validate against ${DEPLOYMENT_SCHEMA_NAME}: ${errs.join('; ')}`);
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
