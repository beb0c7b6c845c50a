/**
 * What a new user does, as child processes: `npm start` in the repository folder (in its own
 * process group, as a terminal would run it, so "Ctrl-C" is SIGINT to the whole group) and
 * `enclave-edge …` commands from "a second terminal". Only the state folder and ports differ
 * from the README: a temp folder and free ports, so the suite runs beside a user's own simulator.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { retryUntil } from '../support/eventually.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const cliBin = join(repoRoot, 'packages/cli/bin/enclave-edge.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npx enclave-edge <args>` from the repository folder; never throws on a non-zero exit. */
export function cli(args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(process.execPath, [cliBin, ...args], { cwd: repoRoot, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as { killed?: boolean }).killed) return reject(new Error(`enclave-edge ${args.join(' ')} timed out\n${stderr}`));
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** `cli` that must succeed; the failure message carries the command's stderr. */
export async function cliOk(args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  const r = await cli(args, opts);
  if (r.code !== 0) throw new Error(`enclave-edge ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

export interface Started {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `npm start -- <extra>` in its own process group; resolves once it printed what to try next. */
export function npmStart(extra: string[], readyTimeoutMs = 90_000): Promise<Started> {
  return startInGroup('npm', ['start', '--', ...extra], readyTimeoutMs);
}

/** `npx enclave-edge sim up <extra>` (what npm start ends with), in its own process group. */
export function simUp(extra: string[], readyTimeoutMs = 60_000): Promise<Started> {
  return startInGroup(process.execPath, [cliBin, 'sim', 'up', ...extra], readyTimeoutMs);
}

async function startInGroup(command: string, args: string[], readyTimeoutMs: number): Promise<Started> {
  let out = '';
  const proc = spawn(command, args, { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const deadline = Date.now() + readyTimeoutMs;
  while (!/Ctrl-C stops the simulator/.test(out)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${command} exited before the simulator came up:\n${out.slice(-4000)}`);
    if (Date.now() > deadline) {
      ctrlC(proc);
      throw new Error(`${command} did not come up within ${readyTimeoutMs} ms:\n${out.slice(-4000)}`);
    }
    await sleep(100);
  }
  return { proc, output: () => out, exited };
}

/** What Ctrl-C in a terminal does: SIGINT to the foreground process group. */
export function ctrlC(proc: ChildProcess): void {
  try {
    process.kill(-proc.pid!, 'SIGINT');
  } catch {
    /* already gone */
  }
}

/** Every process whose environment has `needle` (e.g. `IOTEDGE_WORKLOADURI=<uri>` of one simulator). */
export function pidsWithEnv(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(needle)) found.push(Number(entry));
    } catch {
      /* exited meanwhile, or not ours to read */
    }
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 20_000, stepMs = 200): Promise<T> {
  return retryUntil(fn, timeoutMs, stepMs);
}

/** A long-running `enclave-edge monitor --json …`, its lines parsed as they arrive. */
export function monitor(args: string[]): { events: () => any[]; stop: () => Promise<CliResult> } {
  let stdout = '';
  let stderr = '';
  const child = spawn(process.execPath, [cliBin, 'monitor', '--json', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((r) => child.on('exit', (code) => r({ code: code ?? 1, stdout, stderr })));
  return {
    events: () => stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGINT');
      return done;
    },
  };
}
