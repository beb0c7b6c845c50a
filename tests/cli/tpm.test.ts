/**
 * The CLI with the tpm root of trust against a real swtpm (one for the file): device init/show,
 * `ta run --rot tpm` storing a key-vault value, a restored older state dir refused
 * ROLLBACK_DETECTED, and attest evidence verified with its TPM quote by `enclave-edge verify`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { generateSigningKey, pemSigner } from '@enclave-edge/bundle';
import { startSwtpm, type Swtpm } from '../support/swtpm.js';

const CLI = join(import.meta.dirname, '..', '..', 'packages', 'cli', 'bin', 'enclave-edge.js');
const examples = join(import.meta.dirname, '..', '..', 'examples', 'tas');

interface Result { code: number; stdout: string; stderr: string }

let dir: string;
let tpm: Swtpm;

function ee(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: dir, timeout: 60_000, env: { ...process.env, ENCLAVE_EDGE_DEBUG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const lastLine = (r: Result) => r.stderr.trim().split('\n').pop();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ee-cli-tpm-'));
  tpm = await startSwtpm();
  const key = generateSigningKey();
  const signer = pemSigner(key.privateKeyPem);
  writeFileSync(join(dir, 'key.pub.pem'), key.publicKeyPem);
  for (const [ta, file] of [['key-vault', 'kv.tab'], ['sensor-signer', 'signer.tab']] as const) {
    const { bundle } = await buildTA(join(examples, ta), { write: false, signer });
    writeFileSync(join(dir, file), bundle);
  }
}, 120_000);
afterAll(async () => {
  await tpm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('CLI with --rot tpm (swtpm)', () => {
  it('device init and show: keys in the TPM, manufacturer, firmware, counter state', async () => {
    const init = await ee(['--json', 'device', 'init', '--rot', 'tpm', '--tcti', tpm.tcti, '--state-dir', 'st']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ mode: 'self-signed', rot: 'tpm' });
    const show = await ee(['--json', 'device', 'show', '--rot', 'tpm', '--tcti', tpm.tcti, '--state-dir', 'st']);
    expect(show.code, show.stderr).toBe(0);
    const v = JSON.parse(show.stdout);
    expect(v).toMatchObject({
      rot: 'tpm',
      developmentGrade: false,
      tpm: { manufacturer: 'IBM', firmwareVersion: expect.stringMatching(/^[0-9a-f]{8}\.[0-9a-f]{8}$/), pcrSelection: 'sha256:0-7' },
      rollbackCounter: { name: expect.stringContaining('TPM NV counter 0x01500ee0'), counter: expect.stringMatching(/^\d+$/), state: 'no sealed storage yet' },
    });
    const human = await ee(['device', 'show', '--rot', 'tpm', '--tcti', tpm.tcti, '--state-dir', 'st']);
    expect(human.stdout).toMatch(/^TPM: IBM/m);
    expect(human.stdout).toMatch(/^rollback counter: TPM NV counter 0x01500ee0 = \d+/m);
  });

  it('ta run --rot tpm stores a key-vault value; a restored older state dir is refused ROLLBACK_DETECTED', async () => {
    const tpmArgs = ['--rot', 'tpm', '--tcti', tpm.tcti, '--state-dir', 'st'];
    const run = [...tpmArgs, '--signer', 'key.pub.pem'];
    const put = await ee(['ta', 'run', 'kv.tab', 'put', '{"name":"api-key","value":"v1"}', ...run]);
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toEqual({ name: 'api-key', created: true });
    expect(put.stderr).toMatch(/root of trust "tpm": keys in the TPM/);
    cpSync(join(dir, 'st'), join(dir, 'st-copy'), { recursive: true });
    const put2 = await ee(['ta', 'run', 'kv.tab', 'put', '{"name":"api-key","value":"v2"}', ...run]);
    expect(put2.code, put2.stderr).toBe(0);
    const get = await ee(['ta', 'run', 'kv.tab', 'get', '{"name":"api-key"}', ...run]);
    expect(JSON.parse(get.stdout)).toEqual({ name: 'api-key', value: 'v2' });

    rmSync(join(dir, 'st'), { recursive: true });
    cpSync(join(dir, 'st-copy'), join(dir, 'st'), { recursive: true });
    const old = await ee(['ta', 'run', 'kv.tab', 'get', '{"name":"api-key"}', ...run]);
    expect(old.code).toBe(1);
    expect(lastLine(old)).toMatch(/^enclave-edge: ROLLBACK_DETECTED: sealed storage of TA "key-vault" refused: .*older copy of the state directory was restored/);
    const show = await ee(['--json', 'device', 'show', ...tpmArgs]);
    expect(JSON.parse(show.stdout).rollbackCounter.state).toMatch(/^ROLLBACK/);
  });

  it('attest evidence from the tpm root verifies with its quote checked', async () => {
    const st = ['--rot', 'tpm', '--tcti', tpm.tcti, '--state-dir', 'st2'];
    expect((await ee(['device', 'init', ...st])).code).toBe(0);
    const nonce = randomBytes(16).toString('hex');
    const r = await ee(['ta', 'run', 'signer.tab', 'attest', JSON.stringify({ nonce }), ...st, '--signer', 'key.pub.pem']);
    expect(r.code, r.stderr).toBe(0);
    const token = JSON.parse(r.stdout).evidence as string;
    const v = await ee(['verify', token, '--trust', join('st2', 'device', 'ca.pem'), '--nonce', nonce, '--allow-emulated']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^ACCEPTED/);
    expect(v.stdout).toMatch(/^TPM quote: verified/m);
    const other = await ee(['verify', token, '--trust', join('st2', 'device', 'ca.pem'), '--nonce', randomBytes(16).toString('hex'), '--allow-emulated']);
    expect(other.code).toBe(1);
  });

  it('bad input: wrong TCTI, absent TPM, --tcti without --rot tpm', async () => {
    const noTpm = await ee(['ta', 'run', 'kv.tab', 'get', '{"name":"x"}', '--rot', 'tpm', '--tcti', 'swtpm:host=127.0.0.1,port=1', '--state-dir', 'st3', '--signer', 'key.pub.pem']);
    expect(lastLine(noTpm)).toMatch(/^enclave-edge: UNAVAILABLE: no TPM answers at TCTI "swtpm:host=127.0.0.1,port=1"/);
    const bogus = await ee(['device', 'show', '--rot', 'tpm', '--tcti', 'nonsense', '--state-dir', 'st3']);
    expect(lastLine(bogus)).toMatch(/^enclave-edge: CONFIG_INVALID: TCTI "nonsense" is not understood/);
    const noRot = await ee(['ta', 'run', 'kv.tab', 'get', '{"name":"x"}', '--tcti', tpm.tcti, '--signer', 'key.pub.pem']);
    expect(lastLine(noRot)).toMatch(/^enclave-edge: BAD_PARAMETERS: --tcti needs --rot tpm/);
  });
});
