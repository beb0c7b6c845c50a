/**
 * O13 (fixed, security: H5 for cli deploy / ta-runtime): the templates trust the public DEV
 * signer, whose private key is in git. `deploy generate` now refuses such a deployment unless
 * --allow-dev-signer, --trusted-signer replaces the signers, and ta-runtime warns and reports
 * `devSignerTrusted` whenever its policy trusts the DEV signer.
 */
import { execFile } from 'node:child_process';
import { createPublicKey, createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_SIGNER_ID } from '@enclave-edge/bundle';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime } from '@enclave-edge/ta-runtime';
import { createLogger } from '@enclave-edge/observability';
import { tempDir } from './helpers.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(repoRoot, 'packages/cli/bin/enclave-edge.js');
const run = promisify(execFile);
const tmp = tempDir('ee-sec-devsigner-');
afterAll(() => tmp.cleanup());

async function cli(args: string[]) {
  try {
    const r = await run(process.execPath, [bin, ...args], { cwd: repoRoot, env: { ...process.env, TPM_GROUP_ID: '113' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const policyOf = (file: string) => JSON.parse(readFileSync(file, 'utf8')).modulesContent['ta-runtime']['properties.desired'].policy;

describe('deploy generate and the public DEV signer', () => {
  it('the DEV signer id constant is the hash of the committed dev public key', () => {
    const spki = createPublicKey(readFileSync(join(repoRoot, 'modules/ta-runtime/dev/dev-signer.pub.pem'))).export({ type: 'spki', format: 'der' });
    expect(createHash('sha256').update(spki).digest('hex')).toBe(DEV_SIGNER_ID);
  });

  it.each(['deployment.template.json', 'deployment.hsm.template.json'])('refuses %s as is (it trusts the DEV signer) and writes nothing', async (template) => {
    const out = join(tmp.dir, 'refused');
    const r = await cli(['deploy', 'generate', '--template', template, '--out-dir', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/POLICY_VIOLATION: ta-runtime policy\.trustedSigners\.dev is the public DEV signer/);
    expect(r.stderr).toMatch(/--trusted-signer/);
    expect(existsSync(out)).toBe(false);
  });

  it('--trusted-signer pub.pem (and a bare signer_id) replace the trusted signers', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pemPath = join(tmp.dir, 'release.pub.pem');
    writeFileSync(pemPath, publicKey.export({ type: 'spki', format: 'pem' }));
    const expected = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    const other = 'ab'.repeat(32);
    const r = await cli(['deploy', 'generate', '--out-dir', join(tmp.dir, 'own'), '--trusted-signer', pemPath, '--trusted-signer', `backup=${other}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.devSignerTrusted).toBe(false);
    expect(policyOf(out.path).trustedSigners).toEqual({ release: expected, backup: other });
  });

  it('--allow-dev-signer lets a throwaway test device trust it, with a warning', async () => {
    const r = await cli(['deploy', 'generate', '--out-dir', join(tmp.dir, 'dev'), '--allow-dev-signer', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/enclave-edge: warning: .*public DEV signer/);
    const out = JSON.parse(r.stdout);
    expect(out.devSignerTrusted).toBe(true);
    expect(policyOf(out.path).trustedSigners.dev).toBe(DEV_SIGNER_ID);
  });

  it('--trusted-signer refuses a private key file and a bogus value, naming it', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPath = join(tmp.dir, 'oops.key.pem');
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const priv = await cli(['deploy', 'generate', '--out-dir', join(tmp.dir, 'x'), '--trusted-signer', keyPath]);
    expect(priv.code).not.toBe(0);
    expect(priv.stderr).toMatch(/BAD_PARAMETERS: --trusted-signer .*oops\.key\.pem: give the public key/);
    const bogus = await cli(['deploy', 'generate', '--out-dir', join(tmp.dir, 'x'), '--trusted-signer', 'abc123']);
    expect(bogus.stderr).toMatch(/BAD_PARAMETERS: --trusted-signer abc123: not a 64-hex signer_id/);
  });
});

describe('ta-runtime and the public DEV signer', () => {
  it('warns loudly and reports devSignerTrusted while the policy trusts it, and clears it after', async () => {
    const lines: string[] = [];
    const reports: Array<Record<string, unknown>> = [];
    const events: string[] = [];
    const log = createLogger({ name: 'sec', level: 'info', destination: { write: (l: string) => lines.push(l) } });
    const rt = new TARuntime({
      backend: new EmulatedBackend(), log, sources: { bundleDir: '/nonexistent' }, drainMs: 100,
      events: { event: (t) => events.push(t), report() {}, runtimeReport: (p) => reports.push(p) },
    });
    try {
      await rt.reconcile({ policy: { trustedSigners: { dev: DEV_SIGNER_ID }, allowEmulated: true }, tas: {} });
      expect(reports.at(-1)).toMatchObject({ devSignerTrusted: true });
      expect(lines.some((l) => l.includes('SECURITY WARNING') && l.includes('public DEV signer'))).toBe(true);
      expect(events).toContain('policy.devSignerTrusted');
      await rt.reconcile({ policy: { trustedSigners: { mine: 'cd'.repeat(32) }, allowEmulated: true }, tas: {} });
      expect(reports.at(-1)).toMatchObject({ devSignerTrusted: false });
    } finally {
      await rt.stop();
    }
  });
});
