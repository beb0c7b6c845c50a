/**
 * `enclave-edge ta run` as a developer uses it: real child processes, real signed bundles, the real
 * emulated enclave and the real software root of trust in a state dir that persists across runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTA, newTA } from '@enclave-edge/ta-toolchain';
import { generateSigningKey, pemSigner } from '@enclave-edge/bundle';

const CLI = join(import.meta.dirname, '..', '..', 'packages', 'cli', 'bin', 'enclave-edge.js');
const examples = join(import.meta.dirname, '..', '..', 'examples', 'tas');

interface Result { code: number; stdout: string; stderr: string }

function ee(cwd: string, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, timeout: 30_000, env: { ...process.env, ENCLAVE_EDGE_DEBUG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Failure: non-zero exit and the reason as the last stderr line (TA logs may come before it), no JS stack. */
function expectFailure(r: Result, pattern: RegExp): void {
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines[lines.length - 1]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/);
}

const SPINNER = `import { defineTA, TAError } from '@enclave-edge/ta-sdk';
export default defineTA({
  onOpenSession(ctx, params) { ctx.session!.state.user = (params as { user?: string } | null)?.user ?? 'nobody'; ctx.session!.state.calls = 0; },
  commands: {
    who(ctx) { const s = ctx.session!.state as { user: string; calls: number }; s.calls += 1; return { user: s.user, calls: s.calls }; },
    spin() { for (;;) {} },
    fail() { throw new Error('deliberate failure in the TA'); },
    attest(ctx, p) { return ctx.attest({ nonce: p as string, claims: { purpose: 'ta-run test' } }); },
    refuse() { throw new TAError('BAD_PARAMETERS', 'refused on purpose'); },
    bytes(ctx, p) { ctx.log.info('got bytes', { n: (p as Uint8Array).length }); return (p as Uint8Array).map((b) => b + 1); },
  },
});
`;

let dir: string;
const key = generateSigningKey();
const signer = pemSigner(key.privateKeyPem);

async function buildTo(project: string, out: string, opts: { debug?: boolean; sign?: boolean } = {}): Promise<string> {
  const { bundle } = await buildTA(project, { write: false, ...(opts.debug ? { debug: true } : {}), ...(opts.sign === false ? {} : { signer }) });
  const file = join(dir, out);
  writeFileSync(file, bundle);
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ee-ta-run-'));
  writeFileSync(join(dir, 'key.pub.pem'), key.publicKeyPem);
  await buildTo(join(examples, 'key-vault'), 'kv.tab');
  await buildTo(join(examples, 'key-vault'), 'kv-unsigned.tab', { sign: false });
  const spinner = newTA('spinner', join(dir, 'spinner')).dir;
  writeFileSync(join(spinner, 'ta.json'), readFileSync(join(spinner, 'ta.json'), 'utf8').replace(/"callTimeoutMs":\s*\d+/, '"callTimeoutMs": 60000'));
  writeFileSync(join(spinner, 'src', 'index.ts'), SPINNER);
  await buildTo(spinner, 'spinner.tab');
  await buildTo(spinner, 'spinner-debug.tab', { debug: true });
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('enclave-edge ta run', () => {
  it('key-vault: put in one process, get in the next — sealed storage persists in the state dir', async () => {
    const put = await ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'kv.tab', 'put', '{"name":"db-password","value":"s3cr3t"}']);
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toEqual({ name: 'db-password', created: true });
    expect(put.stderr).toMatch(/^enclave-edge: warning: running key-vault 1\.0\.0 in the emulated enclave — DEVELOPMENT-GRADE root of trust/m);
    expect(put.stderr).toContain('[key-vault] info  secret stored {"name":"db-password"}');
    expect(put.stderr).not.toContain('s3cr3t');

    const keyFile = join(dir, '.enclave-edge', 'dev', 'software-root.json');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, '.enclave-edge', 'dev', '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    expect(readFileSync(join(dir, '.enclave-edge', 'dev', 'README.txt'), 'utf8')).toMatch(/DEVELOPMENT-GRADE/);

    const get = await ee(dir, ['--json', 'ta', 'run', '--signer', 'key.pub.pem', 'kv.tab', 'get', '{"name":"db-password"}']);
    expect(get.code).toBe(0);
    const out = JSON.parse(get.stdout);
    expect(out).toMatchObject({
      command: 'get', backend: 'emulated', calls: 1, session: false,
      result: { name: 'db-password', value: 's3cr3t' },
      ta: { name: 'key-vault', debug: false, signerId: expect.stringMatching(/^[0-9a-f]{64}$/) },
      rootOfTrust: { kind: 'software', developmentGrade: true, keyFile },
    });
    // The value on disk is sealed, not plain.
    const stateFiles = readdirSync(join(dir, '.enclave-edge'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    expect(stateFiles.length).toBeGreaterThan(3);
    for (const f of stateFiles) expect(readFileSync(join(f.parentPath, f.name)).includes('s3cr3t')).toBe(false);
  }, 20_000);

  it('another state dir has other keys: the secret is not there', async () => {
    const r = await ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'kv.tab', 'get', '{"name":"db-password"}', '--state-dir', 'other-state']);
    expectFailure(r, /^enclave-edge: ITEM_NOT_FOUND: no secret named "db-password"$/);
    expect(existsSync(join(dir, 'other-state', 'software-root.json'))).toBe(true);
  });

  it('binary params and results as {"$binary"}, --session with --repeat', async () => {
    const r = await ee(dir, ['--json', 'ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'bytes', '{"$binary":"AAEC"}', '--session', '--repeat', '3']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ session: true, calls: 3, result: { $binary: 'AQID' } });
    expect(out.results).toHaveLength(3);
    expect(r.stderr.match(/\[spinner\] info {2}got bytes \{"n":3\}/g)).toHaveLength(3);

    // One session for all calls (its state carries over) vs. an implicit session per call; human output is the last result.
    const inSession = await ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'who', '--session', '--session-params', '{"user":"dev"}', '--repeat', '2']);
    expect(inSession.stdout).toBe('{"user":"dev","calls":2}\n');
    expect(inSession.stderr).toMatch(/2 calls in [\d.]+ ms/);
    const implicit = await ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'who', '--repeat', '2']);
    expect(implicit.stdout).toBe('{"user":"nobody","calls":1}\n');
  });

  it('attest: evidence from the local run verifies with `enclave-edge verify` against the development device CA', async () => {
    const nonce = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const r = await ee(dir, ['--json', 'ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'attest', JSON.stringify(nonce), '--state-dir', 'attest-state']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.rootOfTrust.deviceCaPath).toBe(join(dir, 'attest-state', 'device', 'ca.pem'));
    writeFileSync(join(dir, 'evidence.jwt'), out.result);
    const ok = await ee(dir, ['--json', 'verify', 'evidence.jwt', '--trust', out.rootOfTrust.deviceCaPath, '--nonce', nonce, '--allow-emulated']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ accepted: true });
    expect(ok.stdout).toContain(out.ta.measurement);
    // …and not against another development device's CA.
    await ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'attest', JSON.stringify(nonce), '--state-dir', 'attest-other']);
    const other = await ee(dir, ['verify', 'evidence.jwt', '--trust', join(dir, 'attest-other', 'device', 'ca.pem'), '--nonce', nonce, '--allow-emulated']);
    expect(other.code).toBe(1);
  }, 20_000);

  it('an unknown command fails with ITEM_NOT_FOUND naming it', async () => {
    expectFailure(await ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'kv.tab', 'no-such-command']), /^enclave-edge: ITEM_NOT_FOUND: TA "key-vault" has no command "no-such-command"$/);
  });

  it('TA errors: a TAError keeps its code, a thrown Error is TA_ERROR, a debug build prints the TypeScript stack', async () => {
    const [refuse, fail, dbg] = await Promise.all([
      ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'refuse']),
      ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'fail']),
      ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner-debug.tab', 'fail', '--allow-debug']),
    ]);
    expectFailure(refuse!, /^enclave-edge: BAD_PARAMETERS: refused on purpose$/);
    expectFailure(fail!, /^enclave-edge: TA_ERROR: .*deliberate failure in the TA/);
    expect(fail!.stderr).not.toContain('TA stack');
    expectFailure(dbg!, /^enclave-edge: TA_ERROR: .*deliberate failure in the TA/);
    expect(dbg.stderr).toMatch(/running spinner 0\.1\.0 \(DEBUG\)/);
    expect(dbg.stderr).toMatch(/TA stack \(debug build\):[\s\S]*src\/index\.ts:\d+/);
  });

  it('a runaway call ends with TIMEOUT at --timeout and the process exits', async () => {
    expectFailure(await ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner.tab', 'spin', '--timeout', '300']), /^enclave-edge: TIMEOUT: /);
  });

  it('refuses before anything runs: tampered, unsigned, untrusted signer, no signer named, debug without --allow-debug', async () => {
    const bytes = readFileSync(join(dir, 'kv.tab'));
    const at = bytes.indexOf(Buffer.from('secret stored'));
    expect(at).toBeGreaterThan(0);
    bytes[at]! ^= 0x20;
    writeFileSync(join(dir, 'kv-tampered.tab'), bytes);
    const fresh = (n: string) => ['--state-dir', join(dir, `never-${n}`)];

    const [tampered, unsigned, untrusted, noSigner, debug, badParams] = await Promise.all([
      ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'kv-tampered.tab', 'list', ...fresh('t')]),
      ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'kv-unsigned.tab', 'list', ...fresh('u')]),
      ee(dir, ['ta', 'run', 'kv.tab', 'list', '--signer', 'f'.repeat(64), ...fresh('s')]),
      ee(dir, ['ta', 'run', 'kv.tab', 'list', ...fresh('n')]),
      ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'spinner-debug.tab', 'bytes', ...fresh('d')]),
      ee(dir, ['ta', 'run', '--signer', 'key.pub.pem', 'kv.tab', 'put', '{name:', ...fresh('p')]),
    ]);
    expectFailure(tampered!, /^enclave-edge: (MEASUREMENT_MISMATCH|SIGNATURE_INVALID): /);
    expectFailure(unsigned!, /^enclave-edge: SIGNATURE_INVALID: bundle is unsigned/);
    expectFailure(untrusted!, /^enclave-edge: POLICY_VIOLATION: signer [0-9a-f]{64} is not one of the trusted signers/);
    expectFailure(noSigner!, /^enclave-edge: BAD_PARAMETERS: name the signer you trust: --signer/);
    expectFailure(debug!, /^enclave-edge: POLICY_VIOLATION: TA spinner is a debug build.*; pass --allow-debug/);
    expectFailure(badParams!, /^enclave-edge: BAD_PARAMETERS: params are not JSON/);
    // Refused before the enclave or the root of trust exist: no banner, no state dir.
    for (const r of [tampered, unsigned, untrusted, noSigner, debug, badParams]) expect(r!.stderr).not.toContain('running');
    for (const n of ['t', 'u', 's', 'n', 'd', 'p']) expect(existsSync(join(dir, `never-${n}`))).toBe(false);
  }, 20_000);
});
