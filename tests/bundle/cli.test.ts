/** The `enclave-edge ta` commands as a user runs them: real child processes, real files, real SoftHSM2 token. */
import { describe, expect, it, beforeAll, afterAll, onTestFinished } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as jose from 'jose';
import { decodeBundle } from '@enclave-edge/bundle';
import { createSoftHsmToken } from '@enclave-edge/pkcs11';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'packages', 'cli', 'bin', 'enclave-edge.js');

interface Result { code: number; stdout: string; stderr: string }

async function ee(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env, NO_COLOR: '1' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

function expectOneLineFailure(r: Result, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('enclave-edge ta (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ee-cli-ta-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('new → build → keygen → sign → inspect → verify, and the bundle verifies with jose alone', async () => {
    expect((await ee(dir, ['ta', 'new', 'first-ta'])).code).toBe(0);
    const p = join(dir, 'first-ta');
    const built = await ee(p, ['ta', 'build']);
    expect(built.stdout).toMatch(/Built dist\/first-ta\.tab .*release, unsigned/);
    const key = await ee(p, ['ta', 'keygen', '--out', 'key.pem']);
    expect(key.code).toBe(0);
    expect(statSync(join(p, 'key.pem')).mode & 0o777).toBe(0o600);
    const signerId = /signer_id\s+([0-9a-f]{64})/.exec(key.stdout)![1]!;
    expect((await ee(p, ['ta', 'keygen', '--out', 'key.pem'])).stderr).toMatch(/CONFLICT: key\.pem exists/);

    const signed = await ee(p, ['ta', 'sign', 'dist/first-ta.tab', '--key', 'key.pem']);
    expect(signed.stdout).toContain(signerId);
    const inspect = await ee(p, ['ta', 'inspect', 'dist/first-ta.tab']);
    expect(inspect.stdout).toMatch(/name\s+first-ta 0\.1\.0 \(js\)/);
    expect(inspect.stdout).toMatch(/signature\s+valid \(ES256\)/);
    expect(inspect.stdout).not.toContain('DEBUG TA');
    const json = JSON.parse((await ee(p, ['--json', 'ta', 'inspect', 'dist/first-ta.tab'])).stdout);
    expect(json).toMatchObject({ signed: true, signerId, verification: { ok: true }, manifest: { name: 'first-ta' } });
    expect(json.measurement).toMatch(/^[0-9a-f]{64}$/);

    expect((await ee(p, ['ta', 'verify', 'dist/first-ta.tab', '--signer', 'key.pub.pem'])).stdout).toMatch(/^OK first-ta 0\.1\.0: .*signer trusted/);
    expect((await ee(p, ['ta', 'verify', 'dist/first-ta.tab', '--signer', signerId])).code).toBe(0);
    expectOneLineFailure(await ee(p, ['ta', 'verify', 'dist/first-ta.tab', '--signer', 'f'.repeat(64)]), /POLICY_VIOLATION: signer [0-9a-f]{64} is not one of the trusted signers/);

    const jws = decodeBundle(readFileSync(join(p, 'dist', 'first-ta.tab'))).signature!;
    const { payload } = await jose.compactVerify(jws, jose.EmbeddedJWK);
    expect(JSON.parse(new TextDecoder().decode(payload)).measurement).toBe(json.measurement);
  });

  it('debug builds are marked loudly by inspect and can be refused by verify --no-debug', async () => {
    const p = join(dir, 'first-ta');
    await ee(p, ['ta', 'build', '--debug', '--out', 'debug.tab', '--key', 'key.pem']);
    const inspect = await ee(p, ['ta', 'inspect', 'debug.tab']);
    expect(inspect.stdout.split('\n')[0]).toMatch(/^!!! DEBUG TA/);
    expect(inspect.stdout).toMatch(/debug\s+YES \(DEBUG\)/);
    expect(inspect.stdout).toMatch(/source map [1-9]\d*/);
    expect((await ee(p, ['ta', 'verify', 'debug.tab', '--signer', 'key.pub.pem'])).stdout).toMatch(/\(DEBUG\)/);
    expectOneLineFailure(await ee(p, ['ta', 'verify', 'debug.tab', '--signer', 'key.pub.pem', '--no-debug']), /POLICY_VIOLATION: TA first-ta is a debug build.*\(policy\.allowDebug\)/);
    expectOneLineFailure(await ee(p, ['ta', 'verify', 'debug.tab']), /BAD_PARAMETERS: name the trusted signer: --signer/);
    // --policy: the device's own rules, as ta-runtime's admission applies them.
    writeFileSync(join(p, 'policy.json'), JSON.stringify({ allowDebug: true, allowEmulated: true, minSvn: { 'first-ta': 9 } }));
    expectOneLineFailure(await ee(p, ['ta', 'verify', 'debug.tab', '--signer', 'key.pub.pem', '--policy', 'policy.json']), /POLICY_VIOLATION: securityVersion \d+ is below the minimum 9 \(policy\.minSvn\.first-ta\)/);
    writeFileSync(join(p, 'bad-policy.json'), JSON.stringify({ maxLimits: { heapMb: 'lots' } }));
    expectOneLineFailure(await ee(p, ['ta', 'verify', 'debug.tab', '--signer', 'key.pub.pem', '--policy', 'bad-policy.json']), /CONFIG_INVALID: policy bad-policy\.json: maxLimits\.heapMb: /);
  });

  it('offline signing: digest → openssl signs → attach-signature → verify', async () => {
    const p = join(dir, 'first-ta');
    await ee(p, ['ta', 'build', '--out', 'offline.tab']);
    const d = await ee(p, ['ta', 'digest', 'offline.tab', '--public-key', 'key.pub.pem', '--out', 'to-sign.txt']);
    expect(d.stdout).toMatch(/sha256\s+[0-9a-f]{64}/);
    await run('openssl', ['dgst', '-sha256', '-sign', join(p, 'key.pem'), '-out', join(p, 'sig.der'), join(p, 'to-sign.txt')]);
    const a = await ee(p, ['ta', 'attach-signature', 'offline.tab', '--signature', 'sig.der', '--public-key', 'key.pub.pem']);
    expect(a.stdout).toMatch(/Signature attached and verified/);
    expect((await ee(p, ['ta', 'verify', 'offline.tab', '--signer', 'key.pub.pem'])).code).toBe(0);
    // a signature over something else is refused, and the bundle is left untouched
    writeFileSync(join(p, 'other.txt'), 'not the signing input');
    await run('openssl', ['dgst', '-sha256', '-sign', join(p, 'key.pem'), '-out', join(p, 'bad.der'), join(p, 'other.txt')]);
    await ee(p, ['ta', 'build', '--out', 'offline2.tab']);
    const before = readFileSync(join(p, 'offline2.tab'));
    expectOneLineFailure(await ee(p, ['ta', 'attach-signature', 'offline2.tab', '--signature', 'bad.der', '--public-key', 'key.pub.pem']), /SIGNATURE_INVALID: the signature does not verify/);
    expect(readFileSync(join(p, 'offline2.tab')).equals(before)).toBe(true);
  });

  it('signs with a key generated inside a SoftHSM2 token; PIN from the environment or a pin-source file', async () => {
    const token = createSoftHsmToken({ label: 'cli-signing', pin: '2468' });
    onTestFinished(() => token.dispose());
    const env = { SOFTHSM2_CONF: token.conf };
    const p = join(dir, 'first-ta');
    const uri = `pkcs11:token=cli-signing;object=ta-release?module-path=${token.modulePath}`;
    const kg = await ee(p, ['ta', 'keygen', '--out', uri], { ...env, PKCS11_PIN: '2468' });
    expect(kg.stdout).toMatch(/non-extractable P-256 key "ta-release" in token "cli-signing"/);
    const signerId = /signer_id\s+([0-9a-f]{64})/.exec(kg.stdout)![1]!;
    await ee(p, ['ta', 'build', '--out', 'hsm.tab']);
    const s = await ee(p, ['ta', 'sign', 'hsm.tab', '--key', uri], { ...env, PKCS11_PIN: '2468' });
    expect(s.stdout).toMatch(/with a PKCS#11 token key/);
    expect((await ee(p, ['ta', 'verify', 'hsm.tab', '--signer', signerId])).code).toBe(0);

    writeFileSync(join(p, 'pin.txt'), '2468\n', { mode: 0o600 });
    const viaFile = await ee(p, ['ta', 'sign', 'hsm.tab', '--key', `${uri}&pin-source=file:${join(p, 'pin.txt')}`], env);
    expect(viaFile.code).toBe(0);
    expect(viaFile.stdout).toContain(signerId);
    expectOneLineFailure(await ee(p, ['ta', 'sign', 'hsm.tab', '--key', uri], { ...env, PKCS11_PIN: '0000' }), /ACCESS_DENIED: PKCS#11 .*PIN_INCORRECT/);
  });

  it('refuses bad input with a one-line reason and a non-zero exit', async () => {
    const p = join(dir, 'first-ta');
    writeFileSync(join(p, 'junk.tab'), 'PK\x03\x04 definitely not a bundle, but long enough to have a header');
    expectOneLineFailure(await ee(p, ['ta', 'verify', 'junk.tab', '--signer', 'key.pub.pem']), /BAD_FORMAT: bundle format: wrong magic/);
    expectOneLineFailure(await ee(p, ['ta', 'inspect', 'missing.tab']), /ITEM_NOT_FOUND: cannot read bundle missing\.tab/);
    // Files named by options: a missing one is ITEM_NOT_FOUND naming it (not INTERNAL: ENOENT).
    const bundle = join('dist', 'first-ta.tab');
    expectOneLineFailure(await ee(p, ['ta', 'digest', bundle, '--public-key', 'nope.pub.pem']), /ITEM_NOT_FOUND: cannot read public key nope\.pub\.pem: ENOENT/);
    expectOneLineFailure(await ee(p, ['ta', 'digest', bundle, '--cert', 'nope-chain.pem']), /ITEM_NOT_FOUND: cannot read certificate chain nope-chain\.pem: ENOENT/);
    expectOneLineFailure(await ee(p, ['ta', 'attach-signature', bundle, '--signature', bundle, '--cert', 'nope-chain.pem']), /ITEM_NOT_FOUND: cannot read certificate chain nope-chain\.pem/);
    expectOneLineFailure(await ee(p, ['ta', 'sign', bundle, '--key', 'nope.pem']), /ITEM_NOT_FOUND: cannot read key file nope\.pem/);
    expectOneLineFailure(await ee(p, ['ta', 'sign', bundle, '--key', 'key.pem', '--cert', 'nope-chain.pem']), /ITEM_NOT_FOUND: cannot read certificate chain nope-chain\.pem/);
    expectOneLineFailure(await ee(p, ['ta', 'build', '--key', 'key.pem', '--cert', 'nope-chain.pem']), /ITEM_NOT_FOUND: cannot read certificate chain nope-chain\.pem/);
    const tampered = readFileSync(join(p, 'dist', 'first-ta.tab'));
    tampered[tampered.indexOf('pong') + 1]! ^= 1;
    writeFileSync(join(p, 'tampered.tab'), tampered);
    expectOneLineFailure(await ee(p, ['ta', 'verify', 'tampered.tab', '--signer', 'key.pub.pem']), /MEASUREMENT_MISMATCH: bundle measurement/);
    const json = await ee(p, ['--json', 'ta', 'verify', 'tampered.tab', '--signer', 'key.pub.pem']);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'MEASUREMENT_MISMATCH' } });
    writeFileSync(join(p, 'src', 'index.ts'), "import net from 'node:net';\nexport default net;\n");
    expectOneLineFailure(await ee(p, ['ta', 'build']), /POLICY_VIOLATION: TA build failed: .*Node built-in "node:net" \(import chain: src\/index\.ts → node:net\)/);
    expectOneLineFailure(await ee(dir, ['ta', 'new', 'Not Valid']), /BAD_PARAMETERS: TA name/);
  });
});

describe('verifying with jose alone (packages/bundle/examples/verify-with-jose.mjs)', () => {
  it('accepts a CLI-signed bundle and names the same measurement and signer; refuses a tampered one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ee-jose-'));
    try {
      const script = join(import.meta.dirname, '..', '..', 'packages', 'bundle', 'examples', 'verify-with-jose.mjs');
      const hello = join(import.meta.dirname, '..', '..', 'examples', 'tas', 'hello');
      await ee(dir, ['ta', 'keygen', '--out', 'k.pem']);
      const built = JSON.parse((await ee(dir, ['--json', 'ta', 'build', hello, '--out', join(dir, 'hello.tab'), '--key', 'k.pem'])).stdout);
      const verified = JSON.parse((await ee(dir, ['--json', 'ta', 'verify', 'hello.tab', '--signer', 'k.pub.pem'])).stdout);
      const r = await run(process.execPath, [script, join(dir, 'hello.tab'), verified.signerId], { cwd: dir });
      expect(r.stdout).toContain(`measurement ${built.measurement}`);
      expect(r.stdout).toContain(`signer_id   ${verified.signerId}`);
      const tampered = readFileSync(join(dir, 'hello.tab'));
      tampered[tampered.indexOf('pong')]! ^= 1;
      writeFileSync(join(dir, 'bad.tab'), tampered);
      await expect(run(process.execPath, [script, join(dir, 'bad.tab')], { cwd: dir })).rejects.toMatchObject({ stderr: expect.stringMatching(/measurement [0-9a-f]{64} does not match/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
