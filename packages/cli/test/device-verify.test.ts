import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, createHash } from 'node:crypto';
import { createRootOfTrust, createTrustServices } from '@enclave-edge/trust';
import { createDevelopmentCa, issueDeviceCertificate } from '@enclave-edge/attestation';
import { createSoftHsmToken, type SoftHsmToken } from '@enclave-edge/pkcs11';
import { X509Certificate } from 'node:crypto';

const bin = fileURLToPath(new URL('../bin/enclave-edge.js', import.meta.url));
let dir: string;
let hsm: SoftHsmToken;

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: dir, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const h = (s: string) => createHash('sha256').update(s).digest('hex');
const ta = { name: 'kv', uuid: '6f1c7c52-8e0b-4d0e-9d2a-1c3b5a7d9e01', version: '1.0.0', measurement: h('m'), signerId: h('s'), productId: 1, securityVersion: 2, debug: false };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ee-cli-'));
  hsm = createSoftHsmToken();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  hsm?.dispose();
});

describe('enclave-edge device + verify', () => {
  it('device init (software) then verify evidence: accepted, strict rejection, wrong nonce, policy file', async () => {
    const init = await cli(['--json', 'device', 'init', '--rot', 'software', '--state-dir', 'sw']);
    expect(init.code).toBe(0);
    const r = JSON.parse(init.stdout);
    expect(r).toMatchObject({ mode: 'self-signed', rot: 'software' });
    expect(init.stderr).toMatch(/DEVELOPMENT-GRADE/);
    const ca = join(dir, 'sw', 'device', 'ca.pem');
    expect(existsSync(ca)).toBe(true);

    const root = await createRootOfTrust({ kind: 'software', stateDir: join(dir, 'sw') });
    const svc = createTrustServices({ rootOfTrust: root });
    const nonce = randomBytes(16);
    const token = await svc.attest(ta, { nonce, tee: 'emulated', claims: { hello: 'world' } });
    await svc.close();
    writeFileSync(join(dir, 'token.jwt'), token);

    const ok = await cli(['--json', 'verify', 'token.jwt', '--trust', ca, '--nonce', nonce.toString('hex'), '--allow-emulated']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ accepted: true, claims: { rot: 'software', claims: { hello: 'world' }, security_version: 2 } });

    const strict = await cli(['verify', token, '--trust', ca, '--nonce', nonce.toString('hex')]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/^REJECTED \(emulated\)/);
    expect(strict.stderr).toMatch(/POLICY_VIOLATION: evidence rejected \(emulated\)/);

    const wrongNonce = await cli(['verify', 'token.jwt', '--trust', ca, '--nonce', randomBytes(16).toString('hex'), '--allow-emulated']);
    expect(wrongNonce.code).toBe(1);
    expect(wrongNonce.stderr).toMatch(/ATTESTATION_INVALID: evidence rejected \(nonce\)/);

    writeFileSync(join(dir, 'policy.json'), JSON.stringify({ allowEmulated: true, minSecurityVersion: 3 }));
    const svn = await cli(['--json', 'verify', 'token.jwt', '--trust', ca, '--policy', 'policy.json']);
    expect(svn.code).toBe(1);
    expect(JSON.parse(svn.stdout)).toMatchObject({ accepted: false, reason: 'svn' });

    writeFileSync(join(dir, 'bad-policy.json'), JSON.stringify({ allowEmulated: 'sure' }));
    const bad = await cli(['verify', 'token.jwt', '--trust', ca, '--policy', 'bad-policy.json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/CONFIG_INVALID: invalid verifier policy: allowEmulated/);

    const missing = await cli(['verify', 'token.jwt', '--trust', 'nope.pem']);
    expect(missing.stderr).toMatch(/ITEM_NOT_FOUND: cannot read trust anchors nope.pem/);

    const show = await cli(['device', 'show', '--rot', 'software', '--state-dir', 'sw']);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/root of trust: software \(DEVELOPMENT-GRADE\)/);
    expect(show.stdout).toMatch(/rollback protection: None/);
  });

  it('device init --csr with a PKCS#11 token, then import-cert', async () => {
    const args = ['--rot', 'pkcs11', '--pkcs11-uri', hsm.uri, '--state-dir', 'hsm'];
    const init = await cli(['device', 'init', ...args, '--csr', 'device.csr', '--subject', 'CN=device-9']);
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/CSR written to device.csr/);
    const { Pkcs10CertificateRequest } = await import('@peculiar/x509');
    const csr = new Pkcs10CertificateRequest(readFileSync(join(dir, 'device.csr'), 'utf8'));
    const opCa = await createDevelopmentCa({ subject: 'CN=Operator CA' });
    const cert = await issueDeviceCertificate({ ca: opCa, subjectSpki: new Uint8Array(csr.publicKey.rawData), subject: 'CN=device-9' });
    writeFileSync(join(dir, 'chain.pem'), cert.toString('pem') + '\n' + opCa.certPem);
    const imp = await cli(['device', 'import-cert', 'chain.pem', ...args]);
    expect(imp.code).toBe(0);
    expect(imp.stdout).toMatch(/stored 2 certificate\(s\)/);
    const wrong = await cli(['device', 'import-cert', join(dir, 'sw', 'device', 'chain.pem'), ...args]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/not for this device's attestation key/);
    const stored = readFileSync(join(dir, 'hsm', 'device', 'chain.pem'), 'utf8');
    expect(new X509Certificate(stored).subject).toBe('CN=device-9');
  });

  it('fails clearly on a bad root-of-trust choice', async () => {
    const r = await cli(['device', 'init', '--rot', 'nonsense', '--state-dir', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CONFIG_INVALID: invalid root-of-trust configuration: kind: .*'software' \| 'pkcs11' \| 'workload' \| 'tpm'/);
    // tpm is a valid choice; with no TPM behind the TCTI it says so and how to fix it.
    const t = await cli(['device', 'init', '--rot', 'tpm', '--tcti', 'device:/dev/no-such-tpm', '--state-dir', 'x']);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/UNAVAILABLE: TPM absent: the device of TCTI "device:\/dev\/no-such-tpm" cannot be opened/);
    const p = await cli(['device', 'init', '--rot', 'pkcs11', '--state-dir', 'x']);
    expect(p.stderr).toMatch(/CONFIG_INVALID/);
  });
});
