/**
 * `$edgeAgent` and `$edgeHub` as IoT Edge runs them, for what the cloud sees of them: the built-in
 * direct methods (ping, RestartModule, GetModuleLogs, UploadModuleLogs, UploadSupportBundle,
 * GetTaskStatus) with IoT Edge's payloads and answers, and their twins' reported properties
 * (module runtime status, exit codes, start/exit/restart times and counts; edgeHub's clients).
 */
import { randomUUID } from 'node:crypto';
import { arch, platform } from 'node:os';
import { z } from 'zod';
import type { DeploymentSpec } from '../deployment/types.js';
import type { ChildStatus } from '../supervisor/types.js';
import type { JsonObject } from '../hub/twins.js';
import { describeZodError } from '../service/schemas.js';
import type { ModuleLogBuffer } from './log-buffer.js';
import { AgentRequestError, LogRequestSchema, matchModules, parseTimeSpec, renderLogs, selectLines, type LogRequest } from './log-query.js';
import { putBlob } from './blob-target.js';
import { zipStored } from './zip.js';

export const EDGE_AGENT = '$edgeAgent';
export const EDGE_HUB = '$edgeHub';
/** The runtime version the simulator stands in for. */
export const RUNTIME_VERSION = '1.6.0';
/** Direct method responses are limited to 128 KB (IoT Hub). */
export const MAX_METHOD_RESPONSE_BYTES = 128 * 1024;

export interface AgentHost {
  iotHub: string;
  deviceId: string;
  logs: ModuleLogBuffer;
  spec(): DeploymentSpec;
  /** The `$edgeAgent` / `$edgeHub` desired properties as deployed, and the twin version they came in. */
  desired(system: typeof EDGE_AGENT | typeof EDGE_HUB): { properties: JsonObject; version: number };
  processes(): ChildStatus[];
  restart(moduleId: string): Promise<void>;
  clients(): Map<string, { connected: boolean; lastConnectedTimeUtc?: string; lastDisconnectedTimeUtc?: string }>;
  /** Trust for uploads to the simulator's own blob target. */
  ca: string;
  startedAt: string;
}

type TaskStatus = 'NotStarted' | 'Running' | 'Completed' | 'Failed' | 'Unknown';
interface Task {
  status: TaskStatus;
  message: string;
  correlationId: string;
}

export interface MethodAnswer {
  status: number;
  payload: unknown;
}

const Versioned = z.looseObject({ schemaVersion: z.string() });
const RestartSchema = z.object({ schemaVersion: z.string(), id: z.string().min(1) });
const UploadLogsSchema = LogRequestSchema.extend({ sasUrl: z.string().min(1) });
const SupportBundleSchema = z.object({
  schemaVersion: z.string(),
  sasUrl: z.string().min(1),
  since: z.union([z.number(), z.string()]).optional(),
  until: z.union([z.number(), z.string()]).optional(),
  edgeRuntimeOnly: z.boolean().optional(),
  iothubHostname: z.string().optional(),
});
const TaskStatusSchema = z.object({ schemaVersion: z.string(), correlationId: z.string().min(1) });

function parse<T extends z.ZodTypeAny>(schema: T, payload: unknown): z.infer<T> {
  const r = schema.safeParse(payload ?? {});
  if (!r.success) throw new AgentRequestError(`invalid payload: ${describeZodError(r.error)}`);
  const v = (r.data as { schemaVersion?: unknown }).schemaVersion;
  if (typeof v === 'string' && !/^1\.\d+$/.test(v)) throw new AgentRequestError(`schemaVersion ${JSON.stringify(v)} is not supported (expected "1.0")`);
  return r.data;
}

/** The system modules' names in reports and logs, as on a device. */
const SYSTEM_NAMES = new Map([
  [EDGE_AGENT, 'edgeAgent'],
  [EDGE_HUB, 'edgeHub'],
]);

export class EdgeAgent {
  private readonly tasks = new Map<string, Task>();

  constructor(private readonly host: AgentHost) {}

  /** Method names are case-insensitive on edgeAgent. */
  async invoke(target: string, methodName: string, payload: unknown): Promise<MethodAnswer> {
    const name = methodName.toLowerCase();
    try {
      if (name === 'ping') return { status: 200, payload: null };
      if (target !== EDGE_AGENT) return { status: 501, payload: { message: `${target} has no method ${methodName}` } };
      switch (name) {
        case 'restartmodule':
          return await this.restartModule(parse(RestartSchema, payload));
        case 'getmodulelogs':
          return this.getModuleLogs(parse(LogRequestSchema, payload));
        case 'uploadmodulelogs':
          return this.startTask(this.uploadLogs(parse(UploadLogsSchema, payload)));
        case 'uploadsupportbundle':
          return this.startTask(this.uploadBundle(parse(SupportBundleSchema, payload)));
        case 'gettaskstatus': {
          const { correlationId } = parse(TaskStatusSchema, payload);
          const t = this.tasks.get(correlationId);
          return { status: 200, payload: t ? { ...t } : { status: 'Unknown', message: `no task with correlationId ${correlationId}`, correlationId } };
        }
        default:
          parse(Versioned.partial(), payload);
          return { status: 501, payload: { message: `$edgeAgent has no method ${methodName}` } };
      }
    } catch (err) {
      if (err instanceof AgentRequestError) return { status: 400, payload: { message: err.message } };
      throw err;
    }
  }

  private async restartModule(req: z.infer<typeof RestartSchema>): Promise<MethodAnswer> {
    const m = this.host.spec().modules.find((x) => x.name === req.id);
    if (!m) throw new AgentRequestError(`module ${req.id} is not in the deployment`);
    if (m.run.kind === 'skipped') throw new AgentRequestError(`module ${req.id} is not run by the simulator (${m.run.reason})`);
    if (m.status !== 'running') throw new AgentRequestError(`module ${req.id} is stopped in the deployment`);
    await this.host.restart(req.id);
    return { status: 200, payload: null };
  }

  /** Module names with logs, runtime first, then the deployment's modules. */
  private logNames(): string[] {
    const names = ['edgeAgent', 'edgeHub', ...this.host.spec().modules.map((m) => m.name)];
    for (const n of this.host.logs.names()) if (!names.includes(n)) names.push(n);
    return names;
  }

  private collect(req: Pick<LogRequest, 'items' | 'encoding' | 'contentType'>, now = Date.now()): Array<{ name: string; payload?: unknown; payloadBytes?: string }> {
    const names = this.logNames();
    const out: Array<{ name: string; payload?: unknown; payloadBytes?: string }> = [];
    const seen = new Set<string>();
    req.items.forEach((item, i) => {
      for (const n of matchModules(names, item.id, `items[${i}].id`)) {
        if (seen.has(n)) continue;
        seen.add(n);
        const lines = selectLines(this.host.logs.lines(n), item.filter, `items[${i}].filter`, now);
        out.push(renderLogs({ iotHub: this.host.iotHub, deviceId: this.host.deviceId }, { name: n, lines }, req));
      }
    });
    return out;
  }

  private getModuleLogs(req: LogRequest): MethodAnswer {
    const payload = this.collect(req);
    const size = Buffer.byteLength(JSON.stringify(payload));
    if (size > MAX_METHOD_RESPONSE_BYTES) {
      throw new AgentRequestError(`the logs are ${size} bytes, over the 128 KB direct method response limit; narrow them (tail, since, regex, loglevel), use encoding gzip, or UploadModuleLogs`);
    }
    return { status: 200, payload };
  }

  /** `job` comes from a request already checked (a bad one is a 400 now, not a failed task later). */
  private startTask(job: (task: Task) => Promise<void>): MethodAnswer {
    const task: Task = { status: 'NotStarted', message: '', correlationId: randomUUID() };
    this.tasks.set(task.correlationId, task);
    const answer = { status: 200, payload: { ...task } };
    job(task).then(
      () => {
        task.status = 'Completed';
      },
      (err: Error) => {
        task.status = 'Failed';
        task.message = err.message;
      },
    );
    return answer;
  }

  private uploadLogs(req: z.infer<typeof UploadLogsSchema>): (task: Task) => Promise<void> {
    const parts = this.collect(req);
    return async (task) => {
      task.status = 'Running';
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const ext = (req.contentType === 'json' ? 'json' : 'log') + (req.encoding === 'gzip' ? '.gz' : '');
      for (const p of parts) {
        const data = p.payloadBytes !== undefined ? Buffer.from(p.payloadBytes, 'base64') : Buffer.from(typeof p.payload === 'string' ? p.payload : JSON.stringify(p.payload));
        await putBlob(req.sasUrl, `${this.host.iotHub}/${this.host.deviceId}/${p.name}-${stamp}.${ext}`, data, this.host.ca);
      }
    };
  }

  private uploadBundle(req: z.infer<typeof SupportBundleSchema>): (task: Task) => Promise<void> {
    const now = Date.now();
    if (req.since !== undefined) parseTimeSpec(req.since, 'since', now);
    if (req.until !== undefined) parseTimeSpec(req.until, 'until', now);
    return async (task) => {
      const filter = { ...(req.since !== undefined ? { since: req.since } : {}), ...(req.until !== undefined ? { until: req.until } : {}) };
      const names = req.edgeRuntimeOnly ? ['edgeAgent', 'edgeHub'] : this.logNames();
      task.status = 'Running';
      const files = names.map((n) => ({ name: `logs/${n}_log.txt`, data: Buffer.from(selectLines(this.host.logs.lines(n), filter, 'filter', now).map((l) => `${new Date(l.at).toISOString()} ${l.text}\n`).join('')) }));
      files.push({ name: 'check.json', data: Buffer.from(JSON.stringify({ edgeAgent: this.reported(EDGE_AGENT), edgeHub: this.reported(EDGE_HUB) }, null, 2)) });
      const zip = zipStored(files);
      const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
      await putBlob(req.sasUrl, `${this.host.iotHub}/${this.host.deviceId}/support_bundle-${stamp}.zip`, zip, this.host.ca);
    };
  }

  /** The reported properties IoT Edge's runtime writes to its twins. */
  reported(system: typeof EDGE_AGENT | typeof EDGE_HUB): JsonObject {
    const { properties, version } = this.host.desired(system);
    if (system === EDGE_HUB) {
      const clients: JsonObject = {};
      for (const [id, c] of this.host.clients()) {
        clients[`${this.host.deviceId}/${id}`] = {
          status: c.connected ? 'Connected' : 'Disconnected',
          ...(c.lastConnectedTimeUtc ? { lastConnectedTimeUtc: c.lastConnectedTimeUtc } : {}),
          ...(c.lastDisconnectedTimeUtc ? { lastDisconnectedTimeUtc: c.lastDisconnectedTimeUtc } : {}),
        };
      }
      return {
        schemaVersion: '1.0',
        version: { version: RUNTIME_VERSION, build: 'edge-sim', commit: 'edge-sim' },
        lastDesiredVersion: version,
        lastDesiredStatus: { code: 200, description: '' },
        clients,
      };
    }
    const procs = new Map(this.host.processes().map((p) => [p.name, p]));
    const desiredModules = (properties.modules ?? {}) as Record<string, JsonObject>;
    const modules: JsonObject = {};
    let healthy = true;
    for (const m of this.host.spec().modules) {
      const p = procs.get(m.name);
      const st = moduleRuntime(m.status, m.run.kind === 'skipped' ? m.run.reason : undefined, p);
      if (st.runtimeStatus !== 'running' && st.runtimeStatus !== 'stopped') healthy = false;
      modules[m.name] = { ...(Object.hasOwn(desiredModules, m.name) ? desiredModules[m.name] : {}), ...st };
    }
    const sys = (properties.systemModules ?? {}) as Record<string, JsonObject>;
    const runtimeModule = (name: string): JsonObject => ({
      ...(Object.hasOwn(sys, name) ? sys[name] : {}),
      runtimeStatus: 'running',
      exitCode: 0,
      statusDescription: 'running',
      lastStartTimeUtc: this.host.startedAt,
      lastExitTimeUtc: '0001-01-01T00:00:00',
      restartCount: 0,
      lastRestartTimeUtc: '0001-01-01T00:00:00',
    });
    return {
      schemaVersion: typeof properties.schemaVersion === 'string' ? properties.schemaVersion : '1.1',
      version: { version: RUNTIME_VERSION, build: 'edge-sim', commit: 'edge-sim' },
      lastDesiredVersion: version,
      lastDesiredStatus: { code: 200, description: '' },
      deviceHealth: healthy ? 'healthy' : 'unhealthy',
      runtime: {
        ...((properties.runtime as JsonObject | undefined) ?? { type: 'docker' }),
        platform: { os: platform(), architecture: arch(), version: RUNTIME_VERSION },
      },
      systemModules: { edgeAgent: runtimeModule('edgeAgent'), edgeHub: runtimeModule('edgeHub') },
      modules,
    };
  }

  /** The name a system module's log lines are kept under. */
  static logName(system: string): string {
    return SYSTEM_NAMES.get(system) ?? system;
  }
}

const NEVER = '0001-01-01T00:00:00';

/** edgeAgent's runtimeStatus and times for one module from the supervisor's view. */
function moduleRuntime(desiredStatus: string, skipped: string | undefined, p: ChildStatus | undefined): JsonObject {
  const times = {
    lastStartTimeUtc: p?.startedAt ?? NEVER,
    lastExitTimeUtc: p?.lastExit?.at ?? NEVER,
    restartCount: p?.restarts ?? 0,
    lastRestartTimeUtc: p?.lastRestartAt ?? NEVER,
  };
  const exitCode = p?.lastExit ? (p.lastExit.code ?? (p.lastExit.signal ? 137 : -1)) : 0;
  if (skipped) return { runtimeStatus: 'unknown', statusDescription: `not run by the simulator: ${skipped}`, exitCode: 0, ...times };
  if (desiredStatus === 'stopped' || !p) return { runtimeStatus: 'stopped', statusDescription: 'stopped', exitCode, ...times };
  const status = p.state === 'running' ? 'running' : p.state === 'backoff' ? 'backoff' : p.state === 'exited' ? (exitCode === 0 ? 'stopped' : 'failed') : 'stopped';
  const description = status === 'running' ? 'running' : p.lastExit ? `exited with ${p.lastExit.signal ?? `code ${p.lastExit.code}`}` : status;
  return { runtimeStatus: status, statusDescription: description, exitCode, ...times };
}

