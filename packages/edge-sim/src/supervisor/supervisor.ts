/**
 * Runs module processes the way edgeAgent runs containers: restart policy with exponential
 * back-off, prefixed output, and no child left behind (own process group per child, killed as
 * a group; see guard.ts for the parent-died case).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { escapeLogText } from '@enclave-edge/observability/escape';
import { splitLines } from './line-splitter.js';
import type { ChildState, ChildStatus, RestartPolicy, StartOptions, SupervisorEvents, SupervisorOptions } from './types.js';

/** The built guard.js; absent when this file runs from sources (tsx), then children go unguarded. */
const GUARD_PATH = [fileURLToPath(new URL('./guard.js', import.meta.url)), fileURLToPath(new URL('./guard.js', import.meta.url)).replace(/\/src\/supervisor\/guard\.js$/, '/dist/supervisor/guard.js')].find((p) => existsSync(p));
const GUARD_URL = GUARD_PATH ? pathToFileURL(GUARD_PATH).href : undefined;
const COLOURS = [36, 33, 35, 32, 34, 91, 96, 93, 95, 92];

interface Child {
  name: string;
  opts: StartOptions;
  policy: RestartPolicy;
  proc?: ChildProcess;
  state: ChildState;
  restarts: number;
  consecutiveFailures: number;
  startedAt: number;
  lastRestartAt?: number;
  timer?: NodeJS.Timeout;
  lastExit?: ChildStatus['lastExit'];
  /** Resolvers waiting for the current process to be gone. */
  waiters: (() => void)[];
  colour: number;
}

/** Every live process group of every Supervisor in this process, for the exit hook. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly children = new Map<string, Child>();
  private readonly out: NodeJS.WritableStream;
  private readonly color: boolean;
  private readonly graceMs: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly resetAfterMs: number;
  private readonly logFn: (line: string) => void;
  private nextColour = 0;
  private closed = false;

  constructor(opts: SupervisorOptions = {}) {
    super();
    this.out = opts.output ?? process.stdout;
    this.color = opts.color ?? Boolean((this.out as { isTTY?: boolean }).isTTY);
    this.graceMs = opts.graceMs ?? 5000;
    this.initialMs = opts.backoff?.initialMs ?? 1000;
    this.maxMs = opts.backoff?.maxMs ?? 60_000;
    this.resetAfterMs = opts.backoff?.resetAfterMs ?? 10_000;
    this.logFn = opts.log ?? ((line) => this.out.write(`${this.prefix('supervisor', 90)} ${line}\n`));
    installExitHook();
  }

  /** Starts `name`. Throws CONFLICT if it is already running or waiting to restart. */
  start(name: string, opts: StartOptions): void {
    if (this.closed) throw new EnclaveEdgeError('UNAVAILABLE', 'supervisor is shut down');
    const existing = this.children.get(name);
    if (existing && existing.state !== 'stopped' && existing.state !== 'exited') {
      throw new EnclaveEdgeError('CONFLICT', `module ${name} is already ${existing.state}`);
    }
    const child: Child = {
      name,
      opts,
      policy: opts.restartPolicy ?? 'always',
      state: 'running',
      restarts: 0,
      consecutiveFailures: 0,
      startedAt: 0,
      waiters: [],
      colour: existing?.colour ?? COLOURS[this.nextColour++ % COLOURS.length]!,
    };
    this.children.set(name, child);
    this.spawn(child);
  }

  /** Stops `name` (SIGTERM to its group, SIGKILL after the grace period); resolves when it is gone. */
  async stop(name: string): Promise<void> {
    const child = this.children.get(name);
    if (!child) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no module named ${name}`);
    await this.stopChild(child);
  }

  /** Stops and starts `name` again with the same options (restart count kept). */
  async restart(name: string): Promise<void> {
    const child = this.children.get(name);
    if (!child) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no module named ${name}`);
    await this.stopChild(child);
    if (this.closed) return;
    child.state = 'running';
    child.consecutiveFailures = 0;
    child.lastRestartAt = Date.now();
    this.spawn(child);
  }

  /** Stops every child; resolves when all of them (and their process groups) are gone. */
  async stopAll(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.children.values()].map((c) => this.stopChild(c)));
    this.closed = false;
  }

  /** Forgets a stopped child (for redeploys that remove a module). */
  remove(name: string): void {
    const c = this.children.get(name);
    if (c && (c.state === 'stopped' || c.state === 'exited')) this.children.delete(name);
  }

  status(): ChildStatus[] {
    return [...this.children.values()].map((c) => {
      const s: ChildStatus = { name: c.name, state: c.state, restarts: c.restarts, restartPolicy: c.policy };
      if (c.proc?.pid !== undefined && c.proc.exitCode === null && c.proc.signalCode === null) s.pid = c.proc.pid;
      if (c.lastExit) s.lastExit = c.lastExit;
      if (c.startedAt) s.startedAt = new Date(c.startedAt).toISOString();
      if (c.lastRestartAt) s.lastRestartAt = new Date(c.lastRestartAt).toISOString();
      return s;
    });
  }

  private prefix(name: string, colour: number): string {
    return this.color ? `\x1b[${colour}m[${name}]\x1b[0m` : `[${name}]`;
  }

  private spawn(child: Child): void {
    const { command, args = [], env = {}, cwd } = child.opts;
    const childEnv: Record<string, string> = { ...env };
    const isNode = GUARD_URL !== undefined && (command === process.execPath || /(^|\/)node$/.test(command));
    // Node children get the guard preloaded and an IPC channel whose closing means "parent died".
    if (isNode) childEnv.NODE_OPTIONS = `${env.NODE_OPTIONS ? env.NODE_OPTIONS + ' ' : ''}--import=${GUARD_URL}`;
    const proc = spawn(command, args, {
      cwd,
      env: childEnv,
      detached: true, // own process group: stop() kills the group, Ctrl-C in a terminal does not reach it directly
      stdio: isNode ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      serialization: 'json',
    });
    child.proc = proc;
    child.startedAt = Date.now();
    const pre = this.prefix(child.name, child.colour);
    const onLine = (stream: 'stdout' | 'stderr') => (line: string) => {
      this.out.write(`${pre} ${escapeLogText(line)}\n`);
      this.emit('line', { name: child.name, stream, line });
    };
    if (proc.stdout) splitLines(proc.stdout, onLine('stdout'));
    if (proc.stderr) splitLines(proc.stderr, onLine('stderr'));
    if (proc.pid !== undefined) {
      liveGroups.add(proc.pid);
      this.emit('spawn', { name: child.name, pid: proc.pid });
    }
    proc.channel?.unref();
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (done) return;
      done = true;
      if (proc.pid !== undefined) {
        killGroup(proc.pid, 'SIGKILL'); // leftovers in the group (grandchildren) go with it
        liveGroups.delete(proc.pid);
      }
      if (error) {
        this.emit('spawnError', { name: child.name, error });
        this.logFn(`${child.name}: cannot start ${command}: ${error.message}`);
      }
      this.onExit(child, proc, code, signal);
    };
    proc.once('exit', (code, signal) => finish(code, signal));
    proc.once('error', (err) => finish(null, null, err));
  }

  private onExit(child: Child, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child.proc !== proc) return;
    child.lastExit = { code, signal, at: new Date().toISOString() };
    const requested = child.state === 'stopping' || child.state === 'stopped';
    const failed = code !== 0;
    const willRestart =
      !requested && !this.closed && (child.policy === 'always' || child.policy === 'on-unhealthy' || (child.policy === 'on-failure' && failed));
    this.emit('exit', { name: child.name, code, signal, requested, willRestart });
    const waiters = child.waiters.splice(0);
    if (!willRestart) {
      child.state = requested ? 'stopped' : 'exited';
      if (!requested) this.logFn(`${child.name} exited (${signal ?? `code ${code}`}); restart policy ${child.policy}: not restarting`);
      for (const w of waiters) w();
      return;
    }
    for (const w of waiters) w();
    const healthy = Date.now() - child.startedAt >= this.resetAfterMs;
    child.consecutiveFailures = healthy ? 1 : child.consecutiveFailures + 1;
    const delayMs = Math.min(this.maxMs, this.initialMs * 2 ** (child.consecutiveFailures - 1));
    child.state = 'backoff';
    this.emit('backoff', { name: child.name, delayMs, restarts: child.restarts });
    this.logFn(`${child.name} exited (${signal ?? `code ${code}`}); restarting in ${delayMs} ms (restart policy ${child.policy})`);
    child.timer = setTimeout(() => {
      child.timer = undefined;
      if (child.state !== 'backoff' || this.closed) return;
      child.restarts++;
      child.state = 'running';
      child.lastRestartAt = Date.now();
      this.emit('restart', { name: child.name, restarts: child.restarts });
      this.spawn(child);
    }, delayMs);
  }

  private stopChild(child: Child): Promise<void> {
    if (child.timer) {
      clearTimeout(child.timer);
      child.timer = undefined;
    }
    const proc = child.proc;
    const alive = proc !== undefined && proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined && liveGroups.has(proc.pid);
    if (!alive) {
      child.state = 'stopped';
      return Promise.resolve();
    }
    child.state = 'stopping';
    return new Promise<void>((resolve) => {
      child.waiters.push(resolve);
      killGroup(proc.pid!, 'SIGTERM');
      const kill = setTimeout(() => killGroup(proc.pid!, 'SIGKILL'), this.graceMs);
      kill.unref();
      proc.once('exit', () => clearTimeout(kill));
    });
  }
}
