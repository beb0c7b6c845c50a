/**
 * A real software TPM (swtpm) for one test file or benchmark, on Unix sockets in its own state
 * folder (TCTI `swtpm:path=…`): nothing to pick and then bind, so parallel test files cannot race for ports.
 * `restart()` stops and starts it on the same state: a TPM reset, as a reboot would cause.
 * Every swtpm-using test and bench starts its TPM through this one helper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Swtpm {
  tcti: string;
  /** The data socket (the control socket is beside it, `.ctrl`, where tpm2-tss looks for it). */
  socket: string;
  stateDir: string;
  /** Kill it (the TPM is gone; its state stays). */
  down(): Promise<void>;
  /** Start it again on the same state (a TPM reset). */
  up(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export async function startSwtpm(): Promise<Swtpm> {
  // Short (AF_UNIX paths are limited to 107 bytes): the state folder directly under the temp dir.
  const stateDir = mkdtempSync(join(tmpdir(), 'ee-swtpm-'));
  const socket = join(stateDir, 'tpm.sock');
  if (socket.length + '.ctrl'.length > 107) throw new Error(`swtpm socket path too long for AF_UNIX: ${socket}`);
  let child: ChildProcess | undefined;
  let stderr = '';

  async function start(): Promise<void> {
    stderr = '';
    // A killed swtpm leaves its socket files; swtpm would refuse to bind over them.
    rmSync(socket, { force: true });
    rmSync(`${socket}.ctrl`, { force: true });
    const c = spawn('swtpm', [
      'socket', '--tpm2', '--tpmstate', `dir=${stateDir}`,
      '--server', `type=unixio,path=${socket}`, '--ctrl', `type=unixio,path=${socket}.ctrl`,
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
      if (await canConnect(socket)) return;
      if (Date.now() > deadline) throw new Error(`swtpm did not listen on ${socket}: ${stderr}`);
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
    tcti: `swtpm:path=${socket}`,
    socket,
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
