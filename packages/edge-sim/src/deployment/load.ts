/** Reads a deployment manifest (template or generated deployment.json) into a DeploymentSpec. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { compileRoutes } from '../routes/compile.js';
import { findLocalModules, imageRepository, moduleEntry, type LocalModule } from './local-modules.js';
import { expandVariables, parseModuleRef, templateVariables } from './placeholders.js';
import { readCreateOptions } from './create-options.js';
import { formatIssues, manifestSchema } from './schema.js';
import { DEPLOYMENT_SCHEMA_NAME, deployedForm, officialSchemaIssues } from './official-schema.js';
import { escapeLogText } from '@enclave-edge/observability/escape';
import type { DeploymentSpec, LoadOptions, ModuleRun, ModuleSpec } from './types.js';

export const SIMULATED_TEMPERATURE_SENSOR_REPOSITORY = 'mcr.microsoft.com/azureiotedge-simulated-temperature-sensor';
/** edgeAgent's default startupOrder (uint max): start after everything that sets one. */
export const DEFAULT_STARTUP_ORDER = 4294967295;
/** edgeHub's default store-and-forward time to live (2 hours). */
export const DEFAULT_TTL_SECS = 7200;

/** The built JS of the built-in SimulatedTemperatureSensor equivalent. */
export const SIMULATED_TEMPERATURE_SENSOR_ENTRY = builtFile('../modules/simulated-temperature-sensor/main.js');

/** A file of this package's build, also when this module itself runs from src/ (e.g. under tsx). */
function builtFile(relative: string): string {
  const here = fileURLToPath(new URL(relative, import.meta.url));
  if (existsSync(here)) return here;
  const inDist = here.replace(/\/src\/(?=modules\/)/, '/dist/');
  return existsSync(inDist) ? inDist : here;
}

const AGENT = 'modulesContent.$edgeAgent.properties.desired';

/** Loads and validates a manifest file. Throws ITEM_NOT_FOUND (no file), CONFIG_INVALID (or RouteSyntaxError) naming the problem. */
export function loadDeployment(file: string, opts: LoadOptions = {}): DeploymentSpec {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EnclaveEdgeError(code === 'ENOENT' ? 'ITEM_NOT_FOUND' : 'CONFIG_INVALID', `cannot read deployment manifest ${path}: ${code ?? (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `deployment manifest ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseDeployment(json, { repoRoot: dirname(path), ...opts }, path);
}

/**
 * Validates manifest JSON — `{modulesContent}` or `{content: {modulesContent}}` (the
 * applyConfigurationContent body) — and resolves what runs each module.
 */
export function parseDeployment(json: unknown, opts: LoadOptions & { repoRoot: string }, label = 'deployment manifest'): DeploymentSpec {
  const root = json && typeof json === 'object' && 'content' in json && !('modulesContent' in json) ? (json as { content: unknown }).content : json;
  const repoRoot = resolve(opts.repoRoot);
  const vars = templateVariables(opts.dotenv === false ? undefined : repoRoot, opts.env ?? process.env);
  const warnings: string[] = [];
  let substituted = root;
  if (opts.expandVariables !== false) {
    const missing = new Map<string, string>();
    substituted = expandVariables(root, vars, missing);
    for (const placeholder of missing.keys()) warnings.push(`${placeholder} is not set (environment or .env); left as written`);
  }

  const parsed = manifestSchema.safeParse(substituted);
  if (!parsed.success) throw new EnclaveEdgeError('CONFIG_INVALID', `invalid ${label}: ${formatIssues(parsed.error)}`);
  const mc = parsed.data.modulesContent;
  const agent = mc.$edgeAgent['properties.desired'];
  const hub = mc.$edgeHub['properties.desired'];

  const routes = hub.routes ?? {};
  compileRoutes(routes); // refuse routes that do not parse, naming route and column

  const locals = findLocalModules(repoRoot, vars);
  const modules: ModuleSpec[] = [];
  for (const [name, m] of Object.entries(agent.modules ?? {})) {
    const run = resolveRun(name, m.settings.image, locals, repoRoot);
    if (run.kind === 'skipped') warnings.push(`module ${name}: ${run.reason}`);
    const createOptions = readCreateOptions(m.settings as Record<string, unknown>, `${AGENT}.modules.${name}.settings`) ?? {};
    for (const k of ['WorkingDir', 'Cmd', 'Entrypoint'] as const) {
      if (createOptions[k] !== undefined && run.kind !== 'skipped') warnings.push(`module ${name}: createOptions.${k} names a path in the container; not applied (the simulator runs node <entry> in the module's folder)`);
    }
    const desired = readDesired(Object.hasOwn(mc, name) ? mc[name] : undefined, name);
    const spec: ModuleSpec = {
      name,
      image: m.settings.image,
      status: m.status,
      restartPolicy: m.restartPolicy,
      startupOrder: m.startupOrder ?? DEFAULT_STARTUP_ORDER,
      // As edgeAgent builds a container's environment: createOptions.Env, then the manifest's env over it.
      env: { ...createOptionsEnv(name, createOptions), ...Object.fromEntries(Object.entries(m.env ?? {}).map(([k, v]) => [k, String(v.value)])) },
      createOptions,
      desired,
      run,
    };
    if (m.version !== undefined) spec.version = m.version;
    modules.push(spec);
  }
  modules.sort((a, b) => a.startupOrder - b.startupOrder || a.name.localeCompare(b.name));

  warnings.push(...officialSchemaWarnings(substituted));

  const known = new Set(modules.map((m) => m.name));
  for (const key of Object.keys(mc)) {
    if (key !== '$edgeAgent' && key !== '$edgeHub' && !known.has(key)) warnings.push(`modulesContent.${key}: twin for a module that is not in $edgeAgent modules; ignored`);
  }

  return {
    schemaVersion: agent.schemaVersion,
    systemDesired: { $edgeAgent: agent as Record<string, unknown>, $edgeHub: hub as Record<string, unknown> },
    edgeHubSchemaVersion: hub.schemaVersion,
    modules,
    routes,
    storeAndForward: { timeToLiveSecs: hub.storeAndForwardConfiguration?.timeToLiveSecs ?? DEFAULT_TTL_SECS },
    warnings,
  };
}

/** Warnings shown at once; the rest are counted. */
const MAX_SCHEMA_WARNINGS = 5;

/**
 * What the official schema flags in a manifest the simulator's own rules accepted (those refuse what
 * edgeAgent refuses): a warning each, naming the field, so a typo is seen here rather than
 * silently ignored on a device; the solution still runs.
 */
function officialSchemaWarnings(manifest: unknown): string[] {
  let deployed: unknown;
  try {
    deployed = deployedForm(manifest);
  } catch (err) {
    // Module createOptions were refused above; a runtime module's are not the simulator's to run.
    if (err instanceof EnclaveEdgeError) return [`${escapeLogText(err.message)} (deploy generate refuses it)`];
    throw err;
  }
  const issues = officialSchemaIssues(deployed);
  const out = issues.slice(0, MAX_SCHEMA_WARNINGS).map((i) =>
    i.unknownField
      ? `${escapeLogText(i.path)}: not a field of ${DEPLOYMENT_SCHEMA_NAME}; IoT Edge ignores it (a typo?) and deploy generate refuses it`
      : `${escapeLogText(i.path)}: ${i.message} (${DEPLOYMENT_SCHEMA_NAME}; deploy generate refuses it)`,
  );
  if (issues.length > MAX_SCHEMA_WARNINGS) out.push(`… and ${issues.length - MAX_SCHEMA_WARNINGS} more that ${DEPLOYMENT_SCHEMA_NAME} flags`);
  return out;
}

/** A local module folder runs as `node <entry>`; one that is not Node.js is skipped, saying what it is. */
function localRun(dir: string, folder: string): ModuleRun {
  if (existsSync(join(dir, 'package.json'))) return { kind: 'local', dir, entry: moduleEntry(dir) };
  const files = readdirSync(dir);
  const lang = files.some((f) => f.endsWith('.csproj')) ? 'C#' : files.includes('requirements.txt') || files.some((f) => f.endsWith('.py')) ? 'Python' : files.includes('pom.xml') ? 'Java' : files.includes('CMakeLists.txt') ? 'C' : undefined;
  return { kind: 'skipped', reason: `modules/${folder} is ${lang ? `a ${lang}` : 'not a Node.js'} module (no package.json); the simulator runs Node.js modules only, skipped — the rest of the solution runs` };
}

function resolveRun(name: string, image: string, locals: LocalModule[], repoRoot: string): ModuleRun {
  const ph = parseModuleRef(image);
  if (ph) {
    const folder = ph.folder;
    const local = locals.find((l) => l.folder === folder);
    if (!local) {
      throw new EnclaveEdgeError('CONFIG_INVALID', `${AGENT}.modules.${name}.settings.image: ${image} names ${resolve(repoRoot, 'modules', folder)}/module.json, which does not exist`);
    }
    return localRun(local.dir, folder);
  }
  if (image.startsWith('${')) return { kind: 'skipped', reason: `image placeholder ${image} is not resolvable here` };
  const repo = imageRepository(image);
  if (repo === SIMULATED_TEMPERATURE_SENSOR_REPOSITORY) {
    return { kind: 'builtin', builtin: 'simulated-temperature-sensor', entry: SIMULATED_TEMPERATURE_SENSOR_ENTRY };
  }
  const local = locals.find((l) => l.repository !== undefined && l.repository === repo);
  if (local) return localRun(local.dir, local.folder);
  return { kind: 'skipped', reason: `image ${image} is not a local module (no modules/*/module.json with that repository) nor a built-in; skipped` };
}

/** Docker's `Env: ["NAME=value", …]` as a map; anything else is refused naming the entry. */
function createOptionsEnv(name: string, co: Record<string, unknown>): Record<string, string> {
  if (co.Env === undefined) return {};
  const field = `${AGENT}.modules.${name}.settings.createOptions.Env`;
  if (!Array.isArray(co.Env)) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}: expected an array of "NAME=value" strings`);
  const out: Record<string, string> = {};
  co.Env.forEach((e, i) => {
    const eq = typeof e === 'string' ? e.indexOf('=') : -1;
    if (typeof e !== 'string' || eq <= 0) throw new EnclaveEdgeError('CONFIG_INVALID', `${field}[${i}]: expected "NAME=value", got ${JSON.stringify(e)}`);
    out[e.slice(0, eq)] = e.slice(eq + 1);
  });
  return out;
}

function readDesired(twin: unknown, name: string): Record<string, unknown> {
  if (twin === undefined) return {};
  const d = (twin as Record<string, unknown> | null)?.['properties.desired'];
  if (d === undefined) return {};
  if (!d || typeof d !== 'object' || Array.isArray(d)) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `modulesContent.${name}.properties.desired: expected an object`);
  }
  return d as Record<string, unknown>;
}
