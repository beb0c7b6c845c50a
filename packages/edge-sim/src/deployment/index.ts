/**
 * Deployment manifests in, DeploymentSpec out: the modules to run (local module folders,
 * the built-in SimulatedTemperatureSensor, or skipped images), routes, store-and-forward TTL and
 * module twins' desired properties — validated with messages that name the JSON path.
 *
 *   const spec = loadDeployment('deployment.template.json');      // throws CONFIG_INVALID
 *   const d = diffDeployments(spec, parseDeployment(body, { repoRoot }));
 */
export {
  loadDeployment,
  parseDeployment,
  DEFAULT_STARTUP_ORDER,
  DEFAULT_TTL_SECS,
  SIMULATED_TEMPERATURE_SENSOR_ENTRY,
  SIMULATED_TEMPERATURE_SENSOR_REPOSITORY,
} from './load.js';
export { diffDeployments } from './diff.js';
export { parseDotenv } from './placeholders.js';
export type { DeploymentDiff, DeploymentSpec, LoadOptions, ModuleRun, ModuleSpec, ModuleStatus, RestartPolicy } from './types.js';
export { expandVariables, parseModuleRef, readDotenv, resolveModuleRefs, templateVariables, type MissingVariables, type ModuleRef } from './placeholders.js';
export { CREATE_OPTIONS_CHUNK, CREATE_OPTIONS_MAX_CHUNKS, isCreateOptionsKey, readCreateOptions, splitCreateOptions } from './create-options.js';
export { findLocalModules, type LocalModule } from './local-modules.js';
export { DEPLOYMENT_SCHEMA_ID, DEPLOYMENT_SCHEMA_NAME, SCHEMA_DIR, TEMPLATE_SCHEMA_ID, deployedForm, officialSchemaIssues, officialValidators, type SchemaIssue } from './official-schema.js';
