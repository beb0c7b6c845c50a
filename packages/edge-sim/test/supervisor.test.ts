import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { isEnclaveEdgeError } from '@enclave-edge/errors';
import { Supervisor, type ExitEvent } from '@enclave-edge/edge-sim/supervisor';

const node = process.execPath;
const env = { PATH: process.env.PATH ?? '' };
const sups: Supervisor[] = [];

function make(graceMs = 2000) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const logs: string[] = [];
  const sup = new Supervisor({ output: out, color: false, graceMs, backoff: { initialMs: 40, maxMs: 200, resetAfterMs: 60_000 }, log: (l) => logs.push(l) });
  sups.push(sup);
  return { sup, output: () => text, logs };
}

afterEach(async () => {
  await Promise.all(sups.splice(0).map((s) => s.stopAll()));
});

/** Alive = exists and is not a zombie (a container's PID 1 may never reap orphans). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function nextExit(sup: Supervisor, name: string): Promise<ExitEvent> {
  return new Promise((resolve) => {
    const on = (e: ExitEvent) => {
      if (e.name !== name) return;
      sup.off('exit', on);
      resolve(e);
    };
    sup.on('exit', on);
  });
}

describe('Supervisor restart policies', () => {
  it('always: restarts a crashing child with doubling back-off up to the cap', async () => {
    const { sup, logs } = make();
    const delays: number[] = [];
    sup.on('backoff', (e) => delays.push(e.delayMs));
    sup.start('crash', { command: node, args: ['-e', 'process.exit(2)'], env, restartPolicy: 'always' });
    await until(() => delays.length >= 4, 'four back-offs');
    expect(delays.slice(0, 4)).toEqual([40, 80, 160, 200]);
    const st = sup.status()[0]!;
    expect(st.restarts).toBeGreaterThanOrEqual(3);
    expect(st.lastExit?.code).toBe(2);
    expect(logs.some((l) => l.startsWith('crash exited (code 2); restarting in 40 ms'))).toBe(true);
  });

  it('on-failure: restarts after a non-zero exit, not after a clean one', async () => {
    const { sup } = make();
    const restarted = once(sup, 'restart');
    sup.start('fails', { command: node, args: ['-e', 'process.exit(1)'], env, restartPolicy: 'on-failure' });
    const [r] = (await restarted) as [{ name: string; restarts: number }];
    expect(r).toEqual({ name: 'fails', restarts: 1 });

    const exit = nextExit(sup, 'clean');
    sup.start('clean', { command: node, args: ['-e', 'process.exit(0)'], env, restartPolicy: 'on-failure' });
    expect(await exit).toEqual({ name: 'clean', code: 0, signal: null, requested: false, willRestart: false });
    expect(sup.status().find((s) => s.name === 'clean')).toMatchObject({ state: 'exited', restarts: 0 });
  });

  it('never: a crashed child stays down', async () => {
    const { sup, logs } = make();
    const exit = nextExit(sup, 'once');
    sup.start('once', { command: node, args: ['-e', 'process.exit(3)'], env, restartPolicy: 'never' });
    expect(await exit).toMatchObject({ code: 3, willRestart: false });
    const st = sup.status()[0]!;
    expect(st).toMatchObject({ state: 'exited', restarts: 0, restartPolicy: 'never' });
    expect(st.pid).toBeUndefined();
    expect(logs).toContain('once exited (code 3); restart policy never: not restarting');
  });

  it('on-unhealthy acts as always (a clean exit is restarted)', async () => {
    const { sup } = make();
    const restarted = once(sup, 'restart');
    sup.start('u', { command: node, args: ['-e', 'process.exit(0)'], env, restartPolicy: 'on-unhealthy' });
    await restarted;
    expect(sup.status()[0]!.restarts).toBe(1);
  });

  it('a command that cannot start is reported and, with never, left down', async () => {
    const { sup, logs } = make();
    const err = once(sup, 'spawnError');
    const exit = nextExit(sup, 'missing');
    sup.start('missing', { command: '/nonexistent/definitely-not-here', env, restartPolicy: 'never' });
    const [e] = (await err) as [{ name: string; error: Error }];
    expect(e.error.message).toMatch(/ENOENT/);
    await exit;
    expect(sup.status()[0]!.state).toBe('exited');
    expect(logs.some((l) => l.startsWith('missing: cannot start /nonexistent/definitely-not-here'))).toBe(true);
  });
});

describe('Supervisor output and control', () => {
  it('prefixes every stdout and stderr line with the module name', async () => {
    const { sup, output } = make();
    const exit = nextExit(sup, 'talker');
    sup.start('talker', {
      command: node,
      args: ['-e', 'process.stdout.write("one\\ntwo\\r\\nparti"); process.stdout.write("al"); console.error("<3> oops")'],
      env,
      restartPolicy: 'never',
    });
    await exit;
    await until(() => output().includes('[talker] partial'), 'all lines');
    const lines = output().trim().split('\n').sort();
    expect(lines).toEqual(['[talker] <3> oops', '[talker] one', '[talker] partial', '[talker] two']);
  });

  it('passes env and cwd, and nothing else of the parent environment', async () => {
    const { sup, output } = make();
    const dir = mkdtempSync(join(tmpdir(), 'sup-cwd-'));
    try {
      const exit = nextExit(sup, 'env');
      process.env.SUPERVISOR_TEST_LEAK = 'leak';
      sup.start('env', { command: node, args: ['-e', 'console.log(process.env.FOO, process.cwd(), process.env.SUPERVISOR_TEST_LEAK)'], env: { ...env, FOO: 'bar' }, cwd: dir, restartPolicy: 'never' });
      await exit;
      await until(() => output().includes('[env] '), 'output');
      expect(output().trim()).toBe(`[env] bar ${dir} undefined`);
    } finally {
      delete process.env.SUPERVISOR_TEST_LEAK;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a second start of a running module and unknown names', async () => {
    const { sup } = make();
    sup.start('s', { command: node, args: ['-e', 'setInterval(() => {}, 1000)'], env });
    expect(() => sup.start('s', { command: node, args: [], env })).toThrow(/module s is already running/);
    await expect(sup.stop('nobody')).rejects.toSatisfy((e) => isEnclaveEdgeError(e, 'ITEM_NOT_FOUND'));
  });

  it('restart() replaces the process; stop() does not trigger the restart policy', async () => {
    const { sup } = make();
    const spawned = once(sup, 'spawn');
    sup.start('r', { command: node, args: ['-e', 'setInterval(() => {}, 1000)'], env, restartPolicy: 'always' });
    const [{ pid: first }] = (await spawned) as [{ pid: number }];
    await sup.restart('r');
    const second = sup.status()[0]!.pid!;
    expect(second).not.toBe(first);
    await until(() => !isAlive(first), 'old process gone');
    const exit = nextExit(sup, 'r');
    await sup.stop('r');
    expect(await exit).toMatchObject({ requested: true, willRestart: false, signal: 'SIGTERM' });
    expect(sup.status()[0]).toMatchObject({ state: 'stopped', restarts: 0 });
    expect(isAlive(second)).toBe(false);
  });
});

describe('no process outlives the supervisor', () => {
  // Child that ignores SIGTERM and has a grandchild (sleep) in its process group.
  const stubborn = `
    const { spawn } = require('node:child_process');
    process.on('SIGTERM', () => {});
    const gc = spawn('sleep', ['60'], { stdio: 'ignore' });
    console.log('pids ' + process.pid + ' ' + gc.pid);
    setInterval(() => {}, 1000);`;

  it('stopAll kills children, their grandchildren, and SIGTERM-ignorers after the grace period', async () => {
    const { sup, output } = make(300);
    sup.start('a', { command: node, args: ['-e', stubborn], env });
    sup.start('b', { command: node, args: ['-e', stubborn], env, restartPolicy: 'on-failure' });
    await until(() => (output().match(/pids/g) ?? []).length === 2, 'both children up');
    const pids = [...output().matchAll(/pids (\d+) (\d+)/g)].flatMap((m) => [Number(m[1]), Number(m[2])]);
    expect(pids.every(isAlive)).toBe(true);
    await sup.stopAll();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(sup.status().map((s) => s.state)).toEqual(['stopped', 'stopped']);
  });

  it('children die when the supervising process is killed with SIGKILL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sup-parent-'));
    try {
      const supUrl = 'file://' + createRequire(import.meta.url).resolve('@enclave-edge/edge-sim/supervisor');
      const script = join(dir, 'parent.mjs');
      writeFileSync(
        script,
        `import { Supervisor } from ${JSON.stringify(supUrl)};
         const sup = new Supervisor({ color: false });
         sup.start('kid', { command: process.execPath, args: ['-e', ${JSON.stringify(stubborn)}], env: { PATH: process.env.PATH } });
         setInterval(() => {}, 1000);`,
      );
      const parent = spawn(node, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      parent.stdout.on('data', (c: Buffer) => (text += c.toString()));
      await until(() => /pids \d+ \d+/.test(text), 'child up');
      const m = /pids (\d+) (\d+)/.exec(text)!;
      const pids = [Number(m[1]), Number(m[2])];
      expect(pids.every(isAlive)).toBe(true);
      parent.kill('SIGKILL');
      await until(() => pids.every((p) => !isAlive(p)), 'orphans to be gone');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
