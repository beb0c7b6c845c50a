/**
 * The "Done when" of issues 2 and 6, as a new user does it: `npm start`, then from a second
 * terminal `enclave-edge invoke`, `monitor`, `twin`, `verify`; Ctrl-C leaves nothing running.
 * Everything goes through the real CLI in child processes against the repository's own
 * deployment.template.json; only the state folder (a temp dir) and the ports (free ones) differ.
 */
import { createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '@enclave-edge/ta-sdk';
import { cli, cliOk, ctrlC, eventually, isAlive, monitor, npmStart, pidsWithEnv, simUp, type Started } from './user.js';

let stateDir: string;
let work: string;
let sim: Started;
let runtime: { pid: number; workloadUri: string };
const at = (): string[] => ['--state-dir', stateDir];
const SAMPLE_TAS = ['hello', 'sensor-signer', 'key-vault', 'wasm-stats'];

/** The method's answer; exit 0 for a 2xx status and 3 for any other (the answer is on stdout either way). */
async function invoke(module: string, method: string, payload: unknown): Promise<{ status: number; payload: any }> {
  const r = await cli(['--json', 'invoke', module, method, JSON.stringify(payload), ...at()]);
  const answer = JSON.parse(r.stdout);
  expect(r.code, r.stderr).toBe(answer.status >= 200 && answer.status < 300 ? 0 : 3);
  return answer;
}

async function deviceCaPath(): Promise<string> {
  const twin = JSON.parse((await cliOk(['--json', 'twin', 'show', 'ta-runtime', ...at()])).stdout);
  const path = twin.properties?.reported?.runtime?.rootOfTrust?.deviceCaPath;
  expect(typeof path, `ta-runtime reports no runtime.rootOfTrust.deviceCaPath: ${JSON.stringify(twin.properties?.reported?.runtime)}`).toBe('string');
  return path as string;
}

/** `npm start` (or `sim up` directly, once the bundles are built) on the current state folder; resolves once hello.ping answers (a user would retry too) and the sample TAs have settled. */
async function up(via: 'npm start' | 'sim up' = 'npm start'): Promise<void> {
  const args = ['--state-dir', stateDir, '--mqtt-port', '0', '--https-port', '0'];
  sim = await (via === 'npm start' ? npmStart(args) : simUp(args));
  runtime = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));
  await eventually(async () => {
    const r = await invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' });
    if (r.status !== 200) throw new Error(`hello.ping not answered yet: ${JSON.stringify(r)}`);
  }, 45_000, 500);
  // TAs load one by one after the module connects: hello answering says nothing of key-vault.
  // Wait until each sample TA has settled (loaded, or rejected/failed for the tests to report).
  await eventually(async () => {
    const r = await invoke('host-module', 'listTAs', {});
    const status = new Map<string, string>((r.payload?.tas ?? []).map((t: { name: string; status: string }) => [t.name, t.status]));
    const settled = SAMPLE_TAS.filter((n) => ['loaded', 'rejected', 'failed'].includes(status.get(n) ?? ''));
    if (settled.length < SAMPLE_TAS.length) throw new Error(`sample TAs settled so far: ${settled.join(', ') || 'none'}; listTAs: ${JSON.stringify(r).slice(0, 2000)}`);
  }, 45_000, 300);
}

/** Ctrl-C, then wait until the simulator and every process it started are gone. */
async function down(): Promise<void> {
  const needle = `IOTEDGE_WORKLOADURI=${runtime.workloadUri}`;
  ctrlC(sim.proc);
  await Promise.race([sim.exited, new Promise((_, rej) => setTimeout(() => rej(new Error(`npm start still running 20 s after Ctrl-C:\n${sim.output().slice(-2000)}`)), 20_000))]);
  await eventually(() => {
    expect(isAlive(runtime.pid), 'simulator process').toBe(false);
    expect(pidsWithEnv(needle), 'module processes').toEqual([]);
  }, 15_000);
}

/** Cleanup after a failed test: never leave a simulator or module processes behind. */
async function forceDown(): Promise<void> {
  if (sim && sim.proc.exitCode === null && sim.proc.signalCode === null) {
    ctrlC(sim.proc);
    await Promise.race([sim.exited, new Promise((r) => setTimeout(r, 10_000))]);
    try {
      process.kill(-sim.proc.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (runtime) for (const pid of pidsWithEnv(`IOTEDGE_WORKLOADURI=${runtime.workloadUri}`)) process.kill(pid, 'SIGKILL');
}

describe('a new user on a fresh clone', () => {
  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'ee-accept-state-'));
    work = mkdtempSync(join(tmpdir(), 'ee-accept-work-'));
    await up();
  }, 150_000);

  afterAll(async () => {
    await forceDown();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  }, 30_000);

  it('npm start brings the simulator up with the repository manifest and prints what to try next', () => {
    const out = sim.output();
    expect(out).toMatch(/simulator is up/);
    expect(out).toMatch(/modules +ta-runtime \(running\), host-module \(running\), SimulatedTemperatureSensor \(running\)/);
    expect(out).toMatch(/npx enclave-edge monitor/);
    expect(out).toMatch(/npx enclave-edge invoke /);
    expect(out).toMatch(/Ctrl-C stops the simulator/);
    expect(isAlive(runtime.pid)).toBe(true);
  });

  it('every sample TA of the manifest is loaded (the bundles were built and DEV-signed by npm start)', async () => {
    const r = await invoke('host-module', 'listTAs', {});
    expect(r.status).toBe(200);
    const byName = Object.fromEntries((r.payload.tas as Array<{ name: string; status: string; lastError: unknown }>).map((t) => [t.name, t]));
    for (const name of SAMPLE_TAS) expect(byName[name]?.status, `${name}: ${JSON.stringify(byName[name])}`).toBe('loaded');
    // …and the module twin says so too (reported properties are what a fleet operator sees).
    await eventually(async () => {
      const reported = JSON.parse((await cliOk(['--json', 'twin', 'show', 'ta-runtime', ...at()])).stdout).properties.reported;
      for (const name of SAMPLE_TAS) expect(reported.tas?.[name]?.status, `reported tas.${name}`).toBe('loaded');
      expect(reported.runtime).toMatchObject({ backend: 'emulated', simulated: true, rootOfTrust: { kind: 'workload' } });
    }, 10_000);
  });

  it('invoke host-module invokeTA hello.ping answers, in human output and with --json', async () => {
    const human = await cliOk(['invoke', 'host-module', 'invokeTA', '{"ta":"hello","command":"ping"}', ...at()]);
    expect(human.stdout).toMatch(/^status 200\n/);
    expect(human.stdout).toMatch(/"result": "pong"/);
    expect(await invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' })).toEqual({ status: 200, payload: { result: 'pong' } });
  });

  it('a wrong call fails with a clear status and the error taxonomy, not a hang', async () => {
    const unknownTa = await invoke('host-module', 'invokeTA', { ta: 'no-such-ta', command: 'ping' });
    expect(unknownTa.status).toBe(404);
    expect(unknownTa.payload.error.code).toMatch(/[A-Z_]+/);
    expect(unknownTa.payload.error.message).toMatch(/no-such-ta/);
    const bad = await invoke('host-module', 'invokeTA', { command: 'ping' });
    expect(bad.status).toBe(400);
  });

  it('attest gives a token that verify accepts when emulated evidence is allowed, and rejects under the strict default', async () => {
    const nonce = randomBytes(16).toString('hex');
    const human = await cliOk(['invoke', 'host-module', 'attest', JSON.stringify({ ta: 'hello', nonce }), ...at()]);
    expect(human.stdout).toMatch(/^status 200\n/);
    const token = (JSON.parse(human.stdout.slice(human.stdout.indexOf('\n') + 1)) as { token: string }).token;
    expect(token.split('.')).toHaveLength(3);
    const trust = await deviceCaPath();

    const strict = await cli(['verify', token, '--trust', trust, '--nonce', nonce]);
    expect(strict.code).not.toBe(0);
    expect(strict.stdout).toMatch(/^REJECTED \(emulated\)/);
    expect(strict.stderr.trim().split('\n')).toHaveLength(1);
    expect(strict.stderr).toMatch(/emulated/);

    const policyFile = join(work, 'dev-policy.json');
    writeFileSync(policyFile, JSON.stringify({ allowEmulated: true }));
    const ok = await cli(['verify', token, '--trust', trust, '--nonce', nonce, '--policy', policyFile]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ACCEPTED/);
    expect(ok.stdout).toMatch(/"name": "hello"/);
    expect((await cli(['verify', token, '--trust', trust, '--nonce', nonce, '--allow-emulated'])).code).toBe(0);

    // The nonce binds the token to this request: another nonce is refused even when emulated is allowed.
    const replay = await cli(['verify', token, '--trust', trust, '--nonce', randomBytes(16).toString('hex'), '--allow-emulated']);
    expect(replay.code).not.toBe(0);
    expect(replay.stdout).toMatch(/^REJECTED/);
  });

  it('verify reads the token from a saved `invoke` answer (--json or human; file and stdin)', async () => {
    const nonce = randomBytes(16).toString('hex');
    const saved = (await cliOk(['--json', 'invoke', 'host-module', 'attest', JSON.stringify({ ta: 'hello', nonce }), ...at()])).stdout;
    const file = join(work, 'attest.json');
    writeFileSync(file, saved);
    const trust = await deviceCaPath();
    const fromFile = await cli(['verify', file, '--trust', trust, '--nonce', nonce, '--allow-emulated']);
    expect(fromFile.code, fromFile.stdout + fromFile.stderr).toBe(0);
    const fromStdin = await cli(['verify', '-', '--trust', trust, '--nonce', nonce, '--allow-emulated'], { input: saved });
    expect(fromStdin.code, fromStdin.stdout + fromStdin.stderr).toBe(0);
    // …and the human answer saved as it is (`invoke … attest > att.txt`: "status 200" then the payload).
    const humanNonce = randomBytes(16).toString('hex');
    const humanSaved = (await cliOk(['invoke', 'host-module', 'attest', JSON.stringify({ ta: 'hello', nonce: humanNonce }), ...at()])).stdout;
    expect(humanSaved).toMatch(/^status 200\n/);
    const humanFile = join(work, 'attest.txt');
    writeFileSync(humanFile, humanSaved);
    const fromHuman = await cli(['verify', humanFile, '--trust', trust, '--nonce', humanNonce, '--allow-emulated']);
    expect(fromHuman.code, fromHuman.stdout + fromHuman.stderr).toBe(0);
  });

  it('monitor shows the signed temperature readings (verifiable with the attested key) and TA lifecycle events', async () => {
    const m = monitor(at());
    try {
      // A signed reading shows the stream is live (the sensor sends every 5 s).
      const first = await eventually(() => {
        const s = m.events().find((e) => e.moduleId === 'host-module' && e.output === 'signed');
        if (!s) throw new Error(`no signed reading in monitor yet; got ${JSON.stringify(m.events().slice(-3))}`);
        return s;
      }, 20_000);
      expect(first.properties).toMatchObject({ type: 'signed', pipeline: 'signTemperature', ta: 'sensor-signer' });
      const body = typeof first.body === 'string' ? JSON.parse(first.body) : first.body;
      expect(typeof body.reading.machine.temperature).toBe('number');
      expect(typeof body.reading.ambient.humidity).toBe('number');

      // The reading's signature verifies with the key that verified attestation evidence vouches for.
      const nonce = randomBytes(16).toString('hex');
      const token = (await invoke('host-module', 'attest', { ta: 'sensor-signer', nonce })).payload.token as string;
      const verdict = JSON.parse((await cliOk(['--json', 'verify', token, '--trust', await deviceCaPath(), '--nonce', nonce, '--allow-emulated'])).stdout);
      const key = createPublicKey({ key: verdict.claims.cnf.jwk, format: 'jwk' });
      const sig = Buffer.from(body.signature, 'base64url');
      expect(verifySignature('sha256', Buffer.from(canonicalJson(body.reading)), { key, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      expect(verifySignature('sha256', Buffer.from(canonicalJson({ ...body.reading, forged: true })), { key, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);

      // Lifecycle: a TA with a missing bundle is rejected with its reason, hello is unloaded and loaded again.
      await cliOk(['twin', 'patch', 'ta-runtime', '{"tas":{"ghost":{"source":"ghost.tab","enabled":true},"hello":{"source":"hello.tab","enabled":false}}}', ...at()]);
      await eventually(() => {
        const types = m.events().filter((e) => e.moduleId === 'ta-runtime').map((e) => `${e.properties.type}:${(typeof e.body === 'string' ? JSON.parse(e.body) : e.body).ta}`);
        expect(types).toContain('ta.rejected:ghost');
        expect(types).toContain('ta.unloaded:hello');
      }, 20_000);
      await cliOk(['twin', 'patch', 'ta-runtime', '{"tas":{"ghost":null,"hello":{"source":"hello.tab","enabled":true}}}', ...at()]);
      const loaded = await eventually(() => {
        const e = m.events().find((x) => x.moduleId === 'ta-runtime' && x.properties.type === 'ta.loaded');
        if (!e) throw new Error('no ta.loaded event yet');
        return e;
      }, 20_000);
      expect(loaded.systemProperties).toMatchObject({ '$.ct': 'application/json', '$.ce': 'utf-8' });
      const rejected = m.events().find((x) => x.properties.type === 'ta.rejected');
      expect(JSON.stringify(rejected.body)).toMatch(/ghost\.tab/);
      expect((await invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' })).status).toBe(200);
    } finally {
      await m.stop();
    }
  });

  it('Ctrl-C stops the simulator and every module process; the CLI then says no simulator is running', async () => {
    const modulePids = pidsWithEnv(`IOTEDGE_WORKLOADURI=${runtime.workloadUri}`);
    expect(modulePids.length, 'ta-runtime, host-module and the sensor run as processes').toBeGreaterThanOrEqual(3);
    await down();
    expect(sim.output()).toMatch(/stopped/);
    expect(existsSync(join(stateDir, 'state.json'))).toBe(false);
    const after = await cli(['invoke', 'host-module', 'health', '{}', ...at()]);
    expect(after.code).not.toBe(0);
    expect(after.stderr.trim().split('\n')).toHaveLength(1);
    expect(after.stderr).toMatch(/no simulator is running/);
  });
});

describe('the second day: stop, start again, reset', () => {
  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'ee-accept-state-'));
    await up();
  }, 150_000);

  afterAll(async () => {
    await forceDown();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }, 30_000);

  /** key-vault's put and get answer confidential calls only: sealed to the TA's attested key, verified against the device CA. */
  async function vault(command: 'put' | 'get', params: Record<string, string>): Promise<{ status: number; payload: any }> {
    const r = await cli(['--json', 'invoke', 'host-module', 'invokeTA', JSON.stringify({ ta: 'key-vault', command, params }), '--confidential', '--trust', await deviceCaPath(), '--allow-emulated', ...at()]);
    const answer = JSON.parse(r.stdout);
    expect(r.code, r.stderr).toBe(answer.status === 200 ? 0 : 3);
    return answer;
  }

  it('sealed secrets and the device identity survive a restart; deleting the state folder starts over cleanly', async () => {
    const secret = `s-${randomBytes(8).toString('hex')}`;
    expect((await vault('put', { name: 'acceptance', value: secret })).status).toBe(200);
    const ca1 = readFileSync(await deviceCaPath(), 'utf8');
    await down();

    await up('sim up'); // same state folder: the next day
    expect(await vault('get', { name: 'acceptance' })).toMatchObject({ status: 200, payload: { result: { name: 'acceptance', value: secret } } });
    expect(readFileSync(await deviceCaPath(), 'utf8')).toBe(ca1);
    await down();

    rmSync(stateDir, { recursive: true, force: true }); // the documented reset
    await up('sim up');
    const gone = await vault('get', { name: 'acceptance' });
    expect(gone.status).toBe(404);
    const trust = await deviceCaPath();
    expect(readFileSync(trust, 'utf8')).not.toBe(ca1);
    const nonce = randomBytes(16).toString('hex');
    const token = (await invoke('host-module', 'attest', { ta: 'hello', nonce })).payload.token as string;
    const verdict = await cli(['verify', token, '--trust', trust, '--nonce', nonce, '--allow-emulated']);
    expect(verdict.code, verdict.stdout + verdict.stderr).toBe(0);
    await down();
  });
});
