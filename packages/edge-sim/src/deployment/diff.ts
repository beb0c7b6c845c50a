/** What changes when a new deployment replaces the running one (applyConfigurationContent). */
import { isDeepStrictEqual } from 'node:util';
import type { DeploymentDiff, DeploymentSpec, ModuleSpec } from './types.js';

/** The parts of a module whose change makes edgeAgent recreate it (desired properties do not). */
function runtimeShape(m: ModuleSpec): unknown {
  return { image: m.image, version: m.version, restartPolicy: m.restartPolicy, env: m.env, createOptions: m.createOptions, run: m.run };
}

export function diffDeployments(oldSpec: DeploymentSpec, newSpec: DeploymentSpec): DeploymentDiff {
  const before = new Map(oldSpec.modules.map((m) => [m.name, m]));
  const after = new Map(newSpec.modules.map((m) => [m.name, m]));
  const diff: DeploymentDiff = { start: [], stop: [], restart: [], desiredChanged: [], routesChanged: false };

  for (const m of oldSpec.modules) {
    const n = after.get(m.name);
    if (m.status === 'running' && (!n || n.status === 'stopped')) diff.stop.push(m.name);
  }
  for (const n of newSpec.modules) {
    const o = before.get(n.name);
    if (n.status === 'running') {
      if (!o || o.status === 'stopped') diff.start.push(n.name);
      else if (!isDeepStrictEqual(runtimeShape(o), runtimeShape(n))) diff.restart.push(n.name);
    }
    if (o && !isDeepStrictEqual(o.desired, n.desired)) diff.desiredChanged.push(n.name);
  }
  diff.routesChanged =
    !isDeepStrictEqual(oldSpec.routes, newSpec.routes) || oldSpec.storeAndForward.timeToLiveSecs !== newSpec.storeAndForward.timeToLiveSecs;
  return diff;
}
