/**
 * O8 (fixed, security: H5 attestation): when the relying party's anchor also issues unrelated
 * certificates (a device CA that certifies module server keys too), any key certified under it
 * could sign evidence. The verifier policy can now pin the issuing attestation CA
 * (`attestationIssuers`, SHA-256 fingerprints) and require leaf EKUs (`requiredLeafEku`).
 * O9 (fixed): the replay cache refuses (fail closed) instead of evicting a live entry when full.
 */
import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { issueEvidence, verifyEvidence, nodeKeySigner, MemoryReplayCache, parsePolicy, type EvidenceSigner } from '@enclave-edge/attestation';
import { identity } from './helpers.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const ATTEST_EKU = '1.3.6.1.4.1.99999.1.1'; // a test OID standing for "your PKI's attestation EKU"
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

type Pair = CryptoKeyPair;
const newPair = () => webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as Promise<Pair>;
const der = (c: x509.X509Certificate) => Buffer.from(c.rawData).toString('base64');
async function signerOf(p: Pair): Promise<EvidenceSigner> {
  return nodeKeySigner(new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', p.privateKey)));
}
async function cert(o: { subject: string; issuer: string; pub: CryptoKey; signKey: CryptoKey; ca: boolean; eku?: string[] }) {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'), subject: o.subject, issuer: o.issuer,
    notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
    publicKey: o.pub, signingKey: o.signKey, signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(o.ca, undefined, true),
      new x509.KeyUsagesExtension(o.ca ? x509.KeyUsageFlags.keyCertSign : x509.KeyUsageFlags.digitalSignature, true),
      ...(o.eku ? [new x509.ExtendedKeyUsageExtension(o.eku, false)] : []),
    ],
  }, webcrypto as unknown as Crypto);
}

let rootPem: string;
let attestCaFp: string;
let good: { signer: EvidenceSigner; chain: string[] };
let server: { signer: EvidenceSigner; chain: string[] };

beforeAll(async () => {
  const root = await newPair();
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=device CA (issues attestation CA and module server certs)', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
    keys: root, signingAlgorithm: ALG, extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  }, webcrypto as unknown as Crypto);
  rootPem = rootCert.toString('pem');
  const attCa = await newPair();
  const attCaCert = await cert({ subject: 'CN=attestation CA', issuer: rootCert.subject, pub: attCa.publicKey, signKey: root.privateKey, ca: true });
  attestCaFp = Buffer.from(await attCaCert.getThumbprint('SHA-256', webcrypto as unknown as Crypto)).toString('hex');
  const leaf = await newPair();
  const leafCert = await cert({ subject: 'CN=device attestation key', issuer: attCaCert.subject, pub: leaf.publicKey, signKey: attCa.privateKey, ca: false, eku: [ATTEST_EKU] });
  good = { signer: await signerOf(leaf), chain: [der(leafCert), der(attCaCert)] };
  // A module server key the device CA certified directly: its holder (a module) can sign too.
  const srv = await newPair();
  const srvCert = await cert({ subject: 'CN=edgeHub server', issuer: rootCert.subject, pub: srv.publicKey, signKey: root.privateKey, ca: false, eku: [SERVER_AUTH] });
  server = { signer: await signerOf(srv), chain: [der(srvCert)] };
});

const issue = (d: { signer: EvidenceSigner; chain: string[] }, nonce: string) =>
  issueEvidence({ signer: d.signer, chain: d.chain, nonce, ta: identity(), tee: 'sgx', rot: 'pkcs11' });

describe('pinning the attestation issuer (O8)', () => {
  it('without constraints, a module server key under the same anchor can sign evidence (the finding)', async () => {
    const nonce = randomBytes(16).toString('hex');
    expect((await verifyEvidence(await issue(server, nonce), { trustAnchors: rootPem, nonce })).accepted).toBe(true);
  });

  it('attestationIssuers refuses a leaf not issued by the pinned attestation CA, accepts one that is', async () => {
    const nonce = randomBytes(16).toString('hex');
    const policy = { attestationIssuers: [attestCaFp.toUpperCase().match(/../g)!.join(':')] }; // colon form accepted
    const bad = await verifyEvidence(await issue(server, nonce), { trustAnchors: rootPem, nonce, policy });
    expect(bad).toMatchObject({ accepted: false, reason: 'issuer', code: 'POLICY_VIOLATION', message: expect.stringMatching(/not by one of attestationIssuers/) });
    expect((await verifyEvidence(await issue(good, nonce), { trustAnchors: rootPem, nonce, policy })).accepted).toBe(true);
  });

  it('requiredLeafEku refuses a leaf without the attestation EKU', async () => {
    const nonce = randomBytes(16).toString('hex');
    const policy = { requiredLeafEku: [ATTEST_EKU] };
    expect(await verifyEvidence(await issue(server, nonce), { trustAnchors: rootPem, nonce, policy })).toMatchObject({ accepted: false, reason: 'issuer', message: expect.stringContaining(ATTEST_EKU) });
    expect((await verifyEvidence(await issue(good, nonce), { trustAnchors: rootPem, nonce, policy })).accepted).toBe(true);
  });

  it('malformed constraints are a configuration error', () => {
    expect(() => parsePolicy({ attestationIssuers: ['abc'] })).toThrow(/CONFIG_INVALID|SHA-256 certificate fingerprint/);
    expect(() => parsePolicy({ requiredLeafEku: ['not an oid'] })).toThrow(/dotted OID/);
  });
});

describe('replay cache when full (O9)', () => {
  it('refuses a new token rather than evicting a live one, so no remembered token can be replayed', async () => {
    const cache = new MemoryReplayCache(3);
    const tokens = await Promise.all([0, 1, 2, 3].map(async () => {
      const nonce = randomBytes(16).toString('hex');
      return { nonce, token: await issue(good, nonce) };
    }));
    for (const t of tokens.slice(0, 3)) expect((await verifyEvidence(t.token, { trustAnchors: rootPem, nonce: t.nonce, replayCache: cache })).accepted).toBe(true);
    const fourth = await verifyEvidence(tokens[3]!.token, { trustAnchors: rootPem, nonce: tokens[3]!.nonce, replayCache: cache });
    expect(fourth).toMatchObject({ accepted: false, reason: 'replay-cache-full', code: 'ATTESTATION_INVALID' });
    // The oldest is still remembered: replaying it is refused as a replay (it was evicted before the fix).
    expect(await verifyEvidence(tokens[0]!.token, { trustAnchors: rootPem, nonce: tokens[0]!.nonce, replayCache: cache })).toMatchObject({ accepted: false, reason: 'replay' });
  });

  it('makes room again once entries expire', () => {
    const cache = new MemoryReplayCache(2);
    expect(cache.checkAndRemember('a', 1000, 0)).toBe(false);
    expect(cache.checkAndRemember('b', 5000, 0)).toBe(false);
    expect(cache.checkAndRemember('c', 5000, 10)).toBe('full');
    expect(cache.checkAndRemember('c', 5000, 2000)).toBe(false); // 'a' expired at 1000
    expect(cache.checkAndRemember('b', 5000, 2000)).toBe(true);
  });
});
