/**
 * `enclave-edge console`: the local web console for one edge (the running simulator by default,
 * or a hub with --hub/--connection-string and --device), on 127.0.0.1 behind a random token.
 * `console --url` prints the running console's URL (from a 0600 file in the state folder).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { isAlive } from '@enclave-edge/edge-sim/state';
import { action, emit, type GlobalOptions } from '../output.js';
import { addTargetOptions, type TargetOptions } from './target-options.js';
import { cliCommand, shellQuote } from './cli-hint.js';

const FILE = 'console.json';

function runningUrl(stateDir: string): string {
  let saved: { url?: unknown; pid?: unknown };
  try {
    saved = JSON.parse(readFileSync(join(stateDir, FILE), 'utf8'));
  } catch {
    saved = {};
  }
  if (typeof saved.url !== 'string' || typeof saved.pid !== 'number' || !isAlive(saved.pid)) {
    throw new EnclaveEdgeError('UNAVAILABLE', `no console is running for ${stateDir}; start one with \`${cliCommand()} console${stateDir === '.edge-sim' ? '' : ` --state-dir ${shellQuote(stateDir)}`}\``);
  }
  return saved.url;
}

export function register(program: Command): void {
  addTargetOptions(
    program
      .command('console')
      .description('serve the local web console (modules, TAs, telemetry, latency, attestation, twins) on 127.0.0.1 behind a random token')
      .option('--port <n>', 'port on 127.0.0.1 (default: a free one)', (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 65535) throw new EnclaveEdgeError('BAD_PARAMETERS', `--port must be 0..65535, got ${v}`);
        return n;
      })
      .option('--url', 'print the URL of the console already running for this state folder, and exit'),
  ).action(action(async (o: TargetOptions & GlobalOptions & { port?: number; url?: boolean }, cmd: Command) => {
    const g = cmd.optsWithGlobals() as GlobalOptions & TargetOptions & { port?: number; url?: boolean };
    const stateDir = g.stateDir ?? '.edge-sim';
    if (g.url) return emit(g, { url: runningUrl(stateDir) }, (v: { url: string }) => v.url);
    const [{ resolveTarget }, { startConsole }] = await Promise.all([import('./hub-target.js'), import('@enclave-edge/console')]);
    const t = await resolveTarget(g);
    const c = await startConsole({ client: t.client, deviceId: t.deviceId, simulator: t.simulator, ...(g.port !== undefined ? { port: g.port } : {}) });
    const file = t.simulator ? join(stateDir, FILE) : undefined;
    if (file) writeFileSync(file, JSON.stringify({ url: c.url, pid: process.pid }), { mode: 0o600 });
    emit(g, { url: c.url, deviceId: t.deviceId }, (v: { url: string }) => `enclave-edge console for ${t.deviceId}: ${v.url}\nOpen it in a browser on this machine (the token in the URL is the only key). Ctrl-C stops it.`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    if (file) rmSync(file, { force: true });
    await c.close();
    t.client.close();
    process.exit(0);
  }));
}
