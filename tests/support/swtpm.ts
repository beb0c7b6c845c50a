/**
 * A real software TPM (swtpm) on free local TCP ports, for one test file or benchmark.
 * `restart()` stops and starts it on the same state: a TPM reset, as a reboot would cause.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Swtpm {
  tcti: string;
  port: number;
  stateDir: string;
  /** Kill it (the TPM is gone; its state stays). */
  down(): Promise<void>;
  /** Start it again on the same state (a TPM reset). */
  up(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export async function startSwtpm(): Promise<Swtpm> {
  let port = 0;
  for (let i = 0; i < 20 && !port; i++) {
    const p = await freePort();
    if (p < 65535 && (await portFree(p + 1))) port = p;
  }
  if (!port) throw new Error('no two adjacent free ports for swtpm');
  const stateDir = mkdtempSync(join(tmpdir(), 'ee-swtpm-'));
  let child: ChildProcess | undefined;
  let stderr = '';

  async function start(): Promise<void> {
    stderr = '';
    const c = spawn('swtpm', [
      'socket', '--tpm2', '--tpmstate', `dir=${stateDir}`,
      '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      '--flags', 'not-need-init,startup-clear',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr!.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<never>((_, reject) => c.once('exit', (code) => reject(new Error(`swtpm exited (${code}): ${stderr}`))));
    exited.catch(() => undefined);
    // Ready when it accepts connections; a test connection is harmless to swtpm.
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (c.exitCode !== null) await exited;
      if (await canConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`swtpm did not listen on ${port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function stopChild(): Promise<void> {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }

  await start();
  return {
    tcti: `swtpm:host=127.0.0.1,port=${port}`,
    port,
    stateDir,
    down: stopChild,
    up: start,
    async restart() {
      await stopChild();
      await start();
    },
    async stop() {
      await stopChild();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
