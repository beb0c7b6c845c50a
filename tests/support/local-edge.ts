/**
 * The local edge as `npm start` runs it, for tests that drive it through the CLI: `sim up` with
 * the repository's deployment.template.json in its own process group, the sample TAs built and
 * DEV-signed into a temp folder, a temp state folder and free ports; ready once hello.ping answers.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundles } from '../e2e/harness.js';
import { cliOk, ctrlC, eventually, repoRoot, simUp, type Started } from '../acceptance/user.js';

export interface LocalEdge {
  stateDir: string;
  /** A scratch folder beside it, removed with it. */
  work: string;
  sim: Started;
  /** `--state-dir <stateDir>` for CLI calls. */
  at(): string[];
  stop(): Promise<void>;
}

export async function startLocalEdge(): Promise<LocalEdge> {
  const stateDir = mkdtempSync(join(tmpdir(), 'ee-edge-state-'));
  const work = mkdtempSync(join(tmpdir(), 'ee-edge-work-'));
  const bundleDir = buildBundles();
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'deployment.template.json'), 'utf8'));
  manifest.modulesContent.$edgeAgent['properties.desired'].modules['ta-runtime'].env.TA_BUNDLE_DIR = { value: bundleDir };
  const manifestFile = join(work, 'deployment.template.json');
  writeFileSync(manifestFile, JSON.stringify(manifest));
  const sim = await simUp(['--manifest', manifestFile, '--repo-root', repoRoot, '--state-dir', stateDir, '--mqtt-port', '0', '--https-port', '0']);
  const at = () => ['--state-dir', stateDir];
  const stop = async () => {
    ctrlC(sim.proc);
    await Promise.race([sim.exited, new Promise((r) => setTimeout(r, 15_000))]);
    try {
      process.kill(-sim.proc.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    for (const d of [stateDir, work, bundleDir]) rmSync(d, { recursive: true, force: true });
  };
  try {
    await eventually(async () => {
      const r = JSON.parse((await cliOk(['--json', 'invoke', 'host-module', 'invokeTA', '{"ta":"hello","command":"ping"}', ...at()])).stdout);
      if (r.status !== 200) throw new Error(`hello.ping not answered yet: ${JSON.stringify(r)}`);
    }, 45_000, 300);
  } catch (err) {
    await stop();
    throw err;
  }
  return { stateDir, work, sim, at, stop };
}
