/**
 * Wires `$edgeAgent` / `$edgeHub` into a running simulator: their log lines, their twins (desired
 * from the deployment, reported kept current from the supervisor's and the hub's events) and
 * their direct methods.
 */
import type { EdgeHub } from '../hub/edge-hub.js';
import type { JsonObject } from '../hub/twins.js';
import type { Supervisor } from '../supervisor/index.js';
import type { DeploymentSpec } from '../deployment/types.js';
import { EdgeAgent, EDGE_AGENT, EDGE_HUB, type MethodAnswer } from './edge-agent.js';
import type { ModuleLogBuffer } from './log-buffer.js';

export const SYSTEM_MODULES: readonly string[] = [EDGE_AGENT, EDGE_HUB];

export function isSystemModule(moduleId: string): boolean {
  return SYSTEM_MODULES.includes(moduleId);
}

/** A runtime log line in IoT Edge's format (`<level> yyyy-MM-dd HH:mm:ss.fff +00:00 [LVL] - text`), which GetModuleLogs' loglevel filter reads. */
export function runtimeLogLine(text: string, at = new Date()): string {
  const level = /^warning\b/i.test(text) ? 4 : /\b(error|failed|cannot)\b/i.test(text) ? 3 : 6;
  const tag = level === 4 ? 'WRN' : level === 3 ? 'ERR' : 'INF';
  return `<${level}> ${at.toISOString().replace('T', ' ').replace('Z', '')} +00:00 [${tag}] - ${text}`;
}

export interface AttachedAgent {
  agent: EdgeAgent;
  invoke(moduleId: string, methodName: string, payload: unknown): Promise<MethodAnswer>;
  /** After a (re)deploy: the system twins' desired sections from the new spec. */
  deployed(spec: DeploymentSpec): void;
}

export function attachEdgeAgent(o: { hub: EdgeHub; supervisor: Supervisor; logs: ModuleLogBuffer; spec: () => DeploymentSpec; deviceId: string; iotHub: string; ca: string }): AttachedAgent {
  const startedAt = new Date().toISOString();
  const clients = new Map<string, { connected: boolean; lastConnectedTimeUtc?: string; lastDisconnectedTimeUtc?: string }>();
  const agent = new EdgeAgent({
    iotHub: o.iotHub,
    deviceId: o.deviceId,
    logs: o.logs,
    spec: o.spec,
    desired: (system) => {
      const t = o.hub.twins.get(system);
      return { properties: t.desired, version: t.desiredVersion };
    },
    processes: () => o.supervisor.status(),
    restart: (m) => o.supervisor.restart(m),
    clients: () => clients,
    ca: o.ca,
    startedAt,
  });
  const refresh = (): void => {
    for (const s of [EDGE_AGENT, EDGE_HUB] as const) o.hub.twins.replaceReported(s, agent.reported(s));
  };
  o.supervisor.on('line', ({ name, stream, line }) => o.logs.add(name, stream, line));
  for (const e of ['spawn', 'exit', 'backoff', 'restart', 'spawnError'] as const) o.supervisor.on(e, refresh);
  o.hub.on('connected', (m: string) => {
    clients.set(m, { ...clients.get(m), connected: true, lastConnectedTimeUtc: new Date().toISOString() });
    refresh();
  });
  o.hub.on('disconnected', (m: string) => {
    clients.set(m, { ...clients.get(m), connected: false, lastDisconnectedTimeUtc: new Date().toISOString() });
    refresh();
  });
  const deployed = (spec: DeploymentSpec): void => {
    o.hub.twins.setDesired(EDGE_AGENT, spec.systemDesired.$edgeAgent as JsonObject);
    o.hub.twins.setDesired(EDGE_HUB, spec.systemDesired.$edgeHub as JsonObject);
    refresh();
  };
  return { agent, invoke: (m, name, payload) => agent.invoke(m, name, payload), deployed };
}
