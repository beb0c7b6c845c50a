import 'reflect-metadata';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { verifyEvidence, createDevelopmentCa, issueDeviceCertificate } from '@enclave-edge/attestation';
import { createSoftHsmToken, type SoftHsmToken } from '@enclave-edge/pkcs11';
import { createRootOfTrust, createTrustServices, initDeviceIdentity, importDeviceCertificate, loadDeviceChain, devicePaths } from '@enclave-edge/trust';
import { tempDir, identity } from './helpers.js';

let hsm: SoftHsmToken;
beforeAll(() => {
  hsm = createSoftHsmToken();
});
afterAll(() => hsm?.dispose());

describe('attest through TrustServices', () => {
  it('software: creates a development identity on first attest; evidence verifies against its CA and says rot software', async () => {
    const t = tempDir();
    const logs: string[] = [];
    try {
      const root = await createRootOfTrust({ kind: 'software', stateDir: t.dir });
      const svc = createTrustServices({ rootOfTrust: root, log: (_l, m) => logs.push(m) });
      const nonce = randomBytes(16);
      const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
      const token = await svc.attest(identity(), { nonce, tee: 'emulated', claims: { blob: new Uint8Array([1, 2]), n: 1 }, publicKey: jwk as never });
      const ca = readFileSync(devicePaths(t.dir).ca, 'utf8');
      const v = await verifyEvidence(token, { trustAnchors: ca, nonce, policy: { allowEmulated: true } });
      expect(v.accepted).toBe(true);
      if (!v.accepted) return;
      expect(v.claims).toMatchObject({ rot: 'software', tee: 'emulated', claims: { blob: 'AQI', n: 1 }, cnf: { jwk: { kty: 'EC', crv: 'P-256' } } });
      expect(v.warnings.join()).toMatch(/development-grade/);
      expect(logs.every((m) => /development-grade root of trust: software/.test(m))).toBe(true);
      expect(logs.length).toBeGreaterThan(0);
      expect((await verifyEvidence(token, { trustAnchors: ca, nonce })).accepted).toBe(false); // strict: emulated refused
      await svc.close();
    } finally {
      t.cleanup();
    }
  });

  it('pkcs11: attestation key in the token signs evidence; without device init attest says what to run', async () => {
    const t = tempDir();
    try {
      const root = await createRootOfTrust({ kind: 'pkcs11', stateDir: t.dir, uri: hsm.uri });
      const svc = createTrustServices({ rootOfTrust: root });
      await expect(svc.attest(identity(), { nonce: randomBytes(8), tee: 'emulated' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/enclave-edge device init --rot pkcs11/) });
      const r = await initDeviceIdentity({ root, mode: 'self-signed' });
      const nonce = randomBytes(32);
      const token = await svc.attest(identity(), { nonce, tee: 'sgx' });
      const v = await verifyEvidence(token, { trustAnchors: r.caPem!, nonce, policy: { allowedRootsOfTrust: ['pkcs11'] } });
      expect(v).toMatchObject({ accepted: true, claims: { rot: 'pkcs11', tee: 'sgx' } });
      await svc.close();
    } finally {
      t.cleanup();
    }
  });
});

describe('device identity', () => {
  it('CSR for an operator CA, then import of the returned chain', async () => {
    const t = tempDir();
    try {
      const root = await createRootOfTrust({ kind: 'pkcs11', stateDir: t.dir, uri: hsm.uri, attestationKeyLabel: 'csr-test' });
      const r = await initDeviceIdentity({ root, mode: 'csr', subject: 'CN=device-7, O=Contoso' });
      const csr = new x509.Pkcs10CertificateRequest(readFileSync(r.csrPath!, 'utf8'));
      expect(await csr.verify()).toBe(true);
      expect(csr.subject).toBe('CN=device-7, O=Contoso');
      expect(await loadDeviceChain(root)).toBeUndefined();
      // The operator's CA signs it.
      const opCa = await createDevelopmentCa({ subject: 'CN=Contoso device CA' });
      const cert = await issueDeviceCertificate({ ca: opCa, subjectSpki: new Uint8Array(csr.publicKey.rawData), subject: csr.subject });
      const wrong = await issueDeviceCertificate({ ca: opCa, subjectSpki: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }) });
      await expect(importDeviceCertificate({ root, chainPem: wrong.toString('pem') })).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/not for this device/) });
      await expect(importDeviceCertificate({ root, chainPem: 'nothing' })).rejects.toMatchObject({ code: 'BAD_FORMAT' });
      const imp = await importDeviceCertificate({ root, chainPem: cert.toString('pem') + opCa.certPem });
      expect(imp.subjects).toEqual(['CN=device-7, O=Contoso', 'CN=Contoso device CA']);
      const svc = createTrustServices({ rootOfTrust: root });
      const nonce = randomBytes(8);
      const token = await svc.attest(identity(), { nonce, tee: 'sgx' });
      expect((await verifyEvidence(token, { trustAnchors: opCa.certPem, nonce })).accepted).toBe(true);
      await svc.close();
    } finally {
      t.cleanup();
    }
  });

  it('refuses to overwrite an existing chain without force', async () => {
    const t = tempDir();
    try {
      const root = await createRootOfTrust({ kind: 'software', stateDir: t.dir });
      await initDeviceIdentity({ root, mode: 'self-signed' });
      expect(existsSync(devicePaths(t.dir).chain)).toBe(true);
      await expect(initDeviceIdentity({ root, mode: 'self-signed' })).rejects.toMatchObject({ code: 'CONFLICT' });
      await initDeviceIdentity({ root, mode: 'self-signed', force: true });
      await root.close();
    } finally {
      t.cleanup();
    }
  });
});
