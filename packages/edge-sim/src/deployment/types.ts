/** What the simulator runs, as read from a deployment manifest (template or generated). */
import type { RouteDefinition } from '../routes/types.js';

export type ModuleStatus = 'running' | 'stopped';
export type RestartPolicy = 'always' | 'on-failure' | 'on-unhealthy' | 'never';

/** How the simulator runs a module. */
export type ModuleRun =
  /** A local module folder (has module.json); the child runs `node <entry>`. */
  | { kind: 'local'; dir: string; entry: string }
  /** Microsoft's SimulatedTemperatureSensor, run by the built-in equivalent at `entry`. */
  | { kind: 'builtin'; builtin: 'simulated-temperature-sensor'; entry: string }
  /** An image the simulator cannot run; `reason` names it. */
  | { kind: 'skipped'; reason: string };

export interface ModuleSpec {
  name: string;
  image: string;
  version?: string;
  status: ModuleStatus;
  restartPolicy: RestartPolicy;
  /** edgeAgent starts modules in ascending startupOrder; absent in the manifest = 4294967295. */
  startupOrder: number;
  /** `env` of the manifest, values as strings. */
  env: Record<string, string>;
  /** Docker create options (parsed JSON; createOptions01… chunks joined). Informational here. */
  createOptions: Record<string, unknown>;
  /** The module twin's desired properties from `modulesContent.<name>.properties.desired`. */
  desired: Record<string, unknown>;
  run: ModuleRun;
}

export interface DeploymentSpec {
  /** `$edgeAgent` desired schemaVersion (e.g. "1.1"). */
  schemaVersion: string;
  /** `$edgeHub` desired schemaVersion (e.g. "1.2"). */
  edgeHubSchemaVersion: string;
  /** The `$edgeAgent` and `$edgeHub` desired properties as written (their twins' desired sections). */
  systemDesired: { $edgeAgent: Record<string, unknown>; $edgeHub: Record<string, unknown> };
  /** Sorted by startupOrder, then name. */
  modules: ModuleSpec[];
  /** `$edgeHub` routes, already checked to compile (compileRoutes from ../routes). */
  routes: Record<string, RouteDefinition>;
  storeAndForward: { timeToLiveSecs: number };
  /** Non-fatal findings (skipped images, unresolved ${VAR}s, twins for unknown modules). */
  warnings: string[];
}

export interface LoadOptions {
  /**
   * Folder whose `modules/<name>/module.json` are the local modules and whose `.env` is read.
   * Default: the manifest file's folder.
   */
  repoRoot?: string;
  /** Variables for `${VAR}` placeholders; default process.env (a `.env` in repoRoot fills gaps). */
  env?: Record<string, string | undefined>;
  /** Read `<repoRoot>/.env` (default true). */
  dotenv?: boolean;
  /**
   * Expand `${VAR}` from `env`/.env (default true: the local template at `sim up`). Deployments
   * that arrive over the service API are taken as sent (false), so a caller cannot read the
   * simulator's environment back.
   */
  expandVariables?: boolean;
}

export interface DeploymentDiff {
  /** Modules to start (new, or stopped → running), in startup order. */
  start: string[];
  /** Modules to stop (removed, or running → stopped). */
  stop: string[];
  /** Running modules whose definition changed (image, env, run, restart policy, create options…). */
  restart: string[];
  /** Modules whose desired properties changed (push a desired patch; no restart needed). */
  desiredChanged: string[];
  /** Routes or store-and-forward TTL changed. */
  routesChanged: boolean;
}
