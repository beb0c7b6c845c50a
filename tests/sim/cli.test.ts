/**
 * The `enclave-edge` commands as a user runs them: `sim up` in one process, `invoke`, `twin`,
 * `monitor`, `sim credentials` from others (finding the simulator through .edge-sim/), and
 * SIGTERM leaving no process behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, chmodSync, rmSync, existsSync, readFileSync, writeFileSync, statSync, realpathSync } from 'node:fs';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliBin, fixtureManifest, fixtureRepo, eventually, isAlive, here, startCliSim } from './helpers.js';

const run = promisify(execFile);
let cwd: string;
let up: ChildProcess;
let upOutput: () => string;

function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [cliBin, ...args], { cwd, timeout: 30_000 });
}

async function cliFails(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await cli(...args);
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error(`expected failure: ${args.join(' ')}`);
}

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'edge-sim-cli-'));
  const sim = await startCliSim(cwd);
  up = sim.proc;
  upOutput = sim.output;
});

afterAll(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
});

describe('enclave-edge CLI against a running simulator', () => {
  it('sim up prints what to try next, keeps keys private and git-ignorable state in .edge-sim/', () => {
    expect(upOutput()).toMatch(/simulator is up/);
    expect(upOutput()).toContain(`${cliBin} invoke probeA`);
    expect(upOutput()).toContain(`${cliBin} monitor`);
    // The default state folder: the hints need no --state-dir; no host-module: the generic invoke.
    expect(upOutput()).not.toMatch(/--state-dir/);
    // Outside a project that has enclave-edge in node_modules/.bin, npx would ask the registry: the hints name this installation's bin.
    expect(upOutput()).not.toMatch(/npx/);
    expect(upOutput()).toContain(`node ${cliBin} invoke probeA <method> '{}'`);
    for (const f of ['keys.json', 'server-key.pem', 'ca-key.pem', 'state.json']) expect(statSync(join(cwd, '.edge-sim', f)).mode & 0o077).toBe(0);
  });

  it('sim up serves the workload API on a 0600 unix socket in the state folder (O6)', () => {
    const sock = join(realpathSync(cwd), '.edge-sim', 'workload.sock');
    expect(upOutput()).toContain(`workload API        unix://${sock}`);
    const st = statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(statSync(join(cwd, '.edge-sim')).mode & 0o077).toBe(0);
  });

  it('sim up refuses a store bound that is not a positive whole number', async () => {
    const r = await cliFails('sim', 'up', '--store-max-messages', '0', '--state-dir', join(cwd, 'unused'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not a positive whole number: 0/);
  });

  it('invoke prints status and payload; --json for scripts', async () => {
    const human = await cli('invoke', 'probeA', 'echo', '{"hello":"world"}');
    expect(human.stdout).toMatch(/status 200/);
    expect(human.stdout).toMatch(/"hello": "world"/);
    const json = JSON.parse((await cli('--json', 'invoke', 'probeA', 'echo', '[1,2]')).stdout);
    expect(json).toEqual({ status: 200, payload: [1, 2] });
  });

  it('fails with a one-line reason and a non-zero exit', async () => {
    const missing = await cliFails('invoke', 'probeLate', 'echo');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/ITEM_NOT_FOUND.*404103/);
    const timeout = await cliFails('invoke', 'probeA', 'noHandler', '--timeout', '1');
    expect(timeout.stderr).toMatch(/TIMEOUT/);
    const badJson = await cliFails('invoke', 'probeA', 'echo', '{bad');
    expect(badJson.stderr).toMatch(/payload is not valid JSON/);
  });

  it('twin patch reaches the module and twin show shows it', async () => {
    await cli('twin', 'patch', 'probeA', '{"color":"blue"}');
    const shown = JSON.parse((await cli('--json', 'twin', 'show', 'probeA')).stdout);
    expect(shown.properties.desired.color).toBe('blue');
    await eventually(async () => {
      const r = JSON.parse((await cli('--json', 'invoke', 'probeA', 'twin')).stdout);
      expect(r.payload.patches.some((p: any) => p.color === 'blue')).toBe(true);
    });
  });

  it('monitor shows upstream messages with module, properties and body', async () => {
    const mon = spawn(process.execPath, [cliBin, '--json', 'monitor', '--count', '1', '--timeout', '20'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    mon.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => mon.once('exit', (c) => resolve(c)));
    // Keep sending until the monitor has seen one (it needs a moment to connect).
    const timer = setInterval(() => {
      cli('invoke', 'probeA', 'send', JSON.stringify({ messages: [{ output: 'telemetry', body: { t: 42 }, contentType: 'application/json', properties: { src: 'cli-test' } }] })).catch(() => {});
    }, 300);
    const code = await exited;
    clearInterval(timer);
    expect(code).toBe(0);
    const e = JSON.parse(out.trim().split('\n')[0]!);
    expect(e).toMatchObject({ moduleId: 'probeA', output: 'telemetry', properties: { src: 'cli-test' }, body: { t: 42 } });
  });

  it('sim credentials and module-credentials give working connection strings', async () => {
    const cred = JSON.parse((await cli('--json', 'sim', 'credentials')).stdout);
    expect(cred.connectionString).toMatch(/^HostName=localhost:\d+;SharedAccessKeyName=iothubowner;SharedAccessKey=/);
    // The connection string works with --connection-string too: the code path a real hub takes
    // (here trusting the simulator's CA the standard Node way).
    const viaCs = await run(process.execPath, [cliBin, '--json', 'invoke', 'probeA', 'whoami', '--connection-string', cred.connectionString, '--device', 'edge-sim-device'], {
      cwd,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cred.caCertPath },
    });
    expect(JSON.parse(viaCs.stdout).payload.moduleId).toBe('probeA');
    const noDevice = await cliFails('invoke', 'probeA', 'whoami', '--connection-string', cred.connectionString);
    expect(noDevice.stderr).toMatch(/--device is required/);
    const mod = JSON.parse((await cli('--json', 'sim', 'module-credentials', 'debugMe')).stdout);
    expect(mod.EdgeHubConnectionString).toMatch(/DeviceId=edge-sim-device;ModuleId=debugMe;SharedAccessKey=.+;GatewayHostName=localhost:\d+/);
    expect(existsSync(mod.EdgeModuleCACertificateFile)).toBe(true);
  });

  it('refuses a second simulator on the same state folder', async () => {
    const second = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [cliBin, 'sim', 'up', '--manifest', fixtureManifest, '--mqtt-port', '0', '--https-port', '0'], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      p.once('exit', (code) => resolve({ code, stderr }));
    });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/CONFLICT: a simulator \(pid \d+\) already uses/);
  });

  it('SIGTERM stops the simulator and every module process', async () => {
    const status = JSON.parse((await cli('--json', 'sim', 'status')).stdout) as { modules: Array<{ name: string; process: { pid?: number } | null }> };
    const pids = status.modules.map((m) => m.process?.pid).filter((p): p is number => typeof p === 'number');
    expect(pids.length).toBe(2);
    expect(pids.every(isAlive)).toBe(true);
    const exited = new Promise<number | null>((resolve) => up.once('exit', (c) => resolve(c)));
    up.kill('SIGTERM');
    expect(await exited).toBe(0);
    await eventually(() => expect(pids.filter(isAlive)).toEqual([]), 10_000);
    expect(existsSync(join(cwd, '.edge-sim', 'state.json'))).toBe(false);
    const after = await cliFails('invoke', 'probeA', 'whoami');
    expect(after.stderr).toMatch(/no simulator is running/);
  });
});

describe('sim up refuses what it cannot run', () => {
  it('exits non-zero naming the bad field of an invalid manifest', async () => {
    const bad = JSON.parse(readFileSync(fixtureManifest, 'utf8'));
    bad.modulesContent.$edgeAgent['properties.desired'].modules.probeA.restartPolicy = 'sometimes';
    const dir = mkdtempSync(join(tmpdir(), 'edge-sim-bad-'));
    try {
      writeFileSync(join(dir, 'deployment.template.json'), JSON.stringify(bad));
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, [cliBin, 'sim', 'up', '--mqtt-port', '0', '--https-port', '0'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        p.once('exit', (code) => resolve({ code, stderr }));
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/CONFIG_INVALID/);
      expect(r.stderr).toMatch(/probeA\.restartPolicy/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `sim up` in its own process that is expected to exit; its exit code and stderr. */
/** The CLI's one failure line (`enclave-edge: CODE: reason`). */
const failureLine = (stderr: string) => stderr.split('\n').find((l) => l.startsWith('enclave-edge: ')) ?? '';

function simUpExits(args: string[], opts: { cwd: string }): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cliBin, 'sim', 'up', '--manifest', fixtureManifest, ...args], { ...opts, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('exit', (code) => resolve({ code, stderr }));
  });
}

describe('sim up names what blocks it', () => {
  let dir: string;
  let holder: Server;
  let busy: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edge-sim-blocked-'));
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    busy = (holder.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => holder.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('an explicit --mqtt-port that is taken is CONFLICT naming the port and the option', async () => {
    const r = await simUpExits(['--mqtt-port', String(busy), '--https-port', '0', '--state-dir', join(dir, 'mqtt')], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`enclave-edge: CONFLICT: MQTT port ${busy} is in use (--mqtt-port); stop what holds it or pass --mqtt-port 0`);
    expect(failureLine(r.stderr)).not.toMatch(/INTERNAL|EADDRINUSE/); // warnings may name other ports another simulator holds
  });

  it('an explicit --https-port that is taken is CONFLICT naming the port and the option', async () => {
    const r = await simUpExits(['--mqtt-port', '0', '--https-port', String(busy), '--state-dir', join(dir, 'https')], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`enclave-edge: CONFLICT: HTTPS port ${busy} is in use (--https-port); stop what holds it or pass --https-port 0`);
    expect(failureLine(r.stderr)).not.toMatch(/INTERNAL|EADDRINUSE/); // warnings may name other ports another simulator holds
    expect(existsSync(join(dir, 'https', 'state.json'))).toBe(false);
  });

  // Needs a folder owned by someone else: as root, make one and run the CLI as nobody. The CLI
  // is loaded before it drops to nobody, so this holds whatever the checkout's permissions are.
  it.skipIf(process.getuid?.() !== 0)('a state folder of another user is ACCESS_DENIED naming the folder', async () => {
    chmodSync(dir, 0o755);
    const theirs = join(dir, 'root-owned');
    mkdirSync(theirs, { mode: 0o700 });
    // A manifest without local modules, beside the folder: nobody may not read the checkout.
    const manifest = JSON.parse(readFileSync(fixtureManifest, 'utf8'));
    manifest.modulesContent = { $edgeAgent: manifest.modulesContent.$edgeAgent, $edgeHub: manifest.modulesContent.$edgeHub };
    manifest.modulesContent.$edgeAgent['properties.desired'].modules = {};
    manifest.modulesContent.$edgeHub['properties.desired'].routes = {};
    const manifestPath = join(dir, 'no-modules.json');
    writeFileSync(manifestPath, JSON.stringify(manifest), { mode: 0o644 });
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const args = ['sim', 'up', '--manifest', manifestPath, '--mqtt-port', '0', '--https-port', '0', '--state-dir', theirs];
      const p = spawn(process.execPath, [join(here, 'fixtures', 'cli-as-user.mjs'), '65534', '65534', ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      p.once('exit', (code) => resolve({ code, stderr }));
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`enclave-edge: ACCESS_DENIED: state folder ${theirs} belongs to another user (uid 0); pass --state-dir`);
    expect(r.stderr).not.toMatch(/INTERNAL|EPERM/);
    expect(statSync(theirs).mode & 0o777).toBe(0o700);
  });
});

describe('sim up banner', () => {
  it('names a non-default state folder in every hint and suggests hello.ping when host-module is deployed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-sim-banner-'));
    try {
      const manifest = JSON.parse(readFileSync(fixtureManifest, 'utf8'));
      const modules = manifest.modulesContent.$edgeAgent['properties.desired'].modules;
      modules['host-module'] = { ...modules.probeA, status: 'stopped' };
      writeFileSync(join(dir, 'deployment.template.json'), JSON.stringify(manifest));
      const p = spawn(process.execPath, [cliBin, 'sim', 'up', '--repo-root', fixtureRepo, '--state-dir', 'my state', '--mqtt-port', '0', '--https-port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => p.once('exit', (c) => resolve(c)));
      try {
        await eventually(() => expect(out).toMatch(/Ctrl-C stops the simulator/), 30_000);
      } finally {
        p.kill('SIGTERM');
        expect(await exited).toBe(0);
      }
      const hints = out.split('\n').filter((l) => l.startsWith(`  node ${cliBin} `));
      expect(hints.length).toBe(6);
      for (const h of hints) expect(h).toContain(" --state-dir 'my state'");
      expect(out).toContain(`node ${cliBin} invoke host-module invokeTA '{"ta":"hello","command":"ping"}' --state-dir 'my state'`);
      expect(out).not.toMatch(/<method>/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
