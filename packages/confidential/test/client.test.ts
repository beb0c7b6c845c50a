import 'reflect-metadata';
import { describe, it, expect, beforeAll } from 'vitest';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  issueEvidence, nodeKeySigner, createDevelopmentCa, issueDeviceCertificate, pemToX5c, type EvidenceSigner, type AttestedTA,
} from '@enclave-edge/attestation';
import {
  ConfidentialClient, CONFIDENTIAL_COMMAND, generateHpkeKeyPair, openRequest, parseRequestEnvelope, publicJwkOf,
  type ConfidentialTransport, type HpkeKeyPair, type JsonValue,
} from '@enclave-edge/confidential';

const ta: AttestedTA = {
  name: 'key-vault', uuid: '6f1c7c52-8e0b-4d0e-9d2a-1c3b5a7d9e01', version: '1.0.0',
  measurement: 'a'.repeat(64), signerId: 'b'.repeat(64), productId: 1, securityVersion: 2, debug: false,
};

let caPem: string;
let otherCaPem: string;
let chain: string[];
let signer: EvidenceSigner;

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  caPem = ca.certPem;
  otherCaPem = (await createDevelopmentCa({ subject: 'CN=not the device CA' })).certPem;
  signer = nodeKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  chain = pemToX5c((await issueDeviceCertificate({ ca, subjectSpki: signer.spki })).toString('pem'));
});

/**
 * The enclave end in this process: evidence from a real issuer, envelopes opened with the real
 * codec. The runtime's own end is covered end to end in tests/e2e/confidential.test.ts.
 */
class EnclaveEndForTests implements ConfidentialTransport {
  attests = 0;
  invokes: Array<{ command: string; params: JsonValue }> = [];
  tee = 'emulated';
  identity: AttestedTA = ta;
  nonceOverride: string | undefined;
  withKey = true;
  ttlSeconds = 300;
  iatShift = 0;
  clock: () => number = Date.now;
  constructor(public keys: HpkeKeyPair) {}

  async attest(_ta: string, nonce: string): Promise<string> {
    this.attests++;
    return issueEvidence({
      signer, chain, nonce: this.nonceOverride ?? nonce, ta: this.identity, tee: this.tee, rot: 'software', ttlSeconds: this.ttlSeconds,
      now: new Date(this.clock() + this.iatShift), ...(this.withKey ? { publicKey: publicJwkOf(this.keys.rawPublic) as unknown as Record<string, unknown> } : {}),
    });
  }

  async invoke(_ta: string, command: string, params: JsonValue): Promise<JsonValue> {
    this.invokes.push({ command, params });
    const opened = await openRequest(parseRequestEnvelope(params, { ta: this.identity.name, measurement: this.identity.measurement, now: this.clock() }), this.keys.privateKey);
    if (opened.command === 'get') return opened.sealResponse({ ok: true, result: { value: `secret-for-${(opened.params as { key: string }).key}` } }) as unknown as JsonValue;
    return opened.sealResponse({ ok: false, error: { code: 'ITEM_NOT_FOUND', message: `no command ${opened.command}` } }) as unknown as JsonValue;
  }
}

async function setup(over: Partial<ConstructorParameters<typeof ConfidentialClient>[0]> = {}) {
  const end = new EnclaveEndForTests(await generateHpkeKeyPair());
  const client = new ConfidentialClient({ transport: end, trustAnchors: caPem, allowEmulated: true, ...over });
  return { end, client };
}

describe('ConfidentialClient', () => {
  it('verifies, seals, sends under the reserved command, and opens the answer', async () => {
    const { end, client } = await setup();
    expect(await client.invoke('key-vault', 'get', { key: 'marker-91c2' })).toEqual({ value: 'secret-for-marker-91c2' });
    expect(end.invokes).toHaveLength(1);
    expect(end.invokes[0]!.command).toBe(CONFIDENTIAL_COMMAND);
    expect(JSON.stringify(end.invokes[0]!.params)).not.toContain('marker-91c2');
    expect(JSON.stringify(end.invokes[0]!.params)).not.toContain('get');
  });

  it('every envelope has its own HPKE encapsulation, prepared ones included, even for concurrent calls', async () => {
    const { end, client } = await setup();
    await client.invoke('key-vault', 'get', { key: 'first' });
    const answers = await Promise.all(['a', 'b', 'c', 'd'].map((key) => client.invoke('key-vault', 'get', { key })));
    expect(answers).toEqual(['a', 'b', 'c', 'd'].map((key) => ({ value: `secret-for-${key}` })));
    const encs = end.invokes.map((i) => (i.params as { enc: string }).enc);
    expect(new Set(encs).size).toBe(5);
  });

  it('caches the verified key until the evidence expires', async () => {
    const { end, client } = await setup();
    await client.invoke('key-vault', 'get', { key: 'a' });
    await client.invoke('key-vault', 'get', { key: 'b' });
    expect(end.attests).toBe(1);
    let shift = 0;
    end.clock = () => Date.now() + shift;
    const later = new ConfidentialClient({ transport: end, trustAnchors: caPem, allowEmulated: true, now: end.clock });
    end.attests = 0;
    await later.invoke('key-vault', 'get', { key: 'a' });
    shift = 299_000;
    await later.invoke('key-vault', 'get', { key: 'a' });
    expect(end.attests).toBe(1);
    shift = 301_000;
    await later.invoke('key-vault', 'get', { key: 'a' });
    expect(end.attests).toBe(2);
  });

  it('raises the TA error from inside the encrypted answer', async () => {
    const { client } = await setup();
    await expect(client.invoke('key-vault', 'nope')).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: 'no command nope' });
  });

  it('refuses emulated evidence unless allowed, and sends nothing', async () => {
    const { end, client } = await setup({ allowEmulated: false });
    await expect(client.invoke('key-vault', 'get', { key: 'k' })).rejects.toMatchObject({ code: 'POLICY_VIOLATION', detail: { reason: 'emulated' } });
    expect(end.invokes).toHaveLength(0);
  });

  it('refuses evidence from an untrusted CA or an unlisted TA signer', async () => {
    const a = await setup({ trustAnchors: otherCaPem });
    await expect(a.client.invoke('key-vault', 'get', { key: 'k' })).rejects.toMatchObject({ code: 'ATTESTATION_INVALID', detail: { reason: 'chain' } });
    const b = await setup({ policy: { allowedSigners: ['c'.repeat(64)] } });
    await expect(b.client.invoke('key-vault', 'get', { key: 'k' })).rejects.toMatchObject({ code: 'POLICY_VIOLATION', detail: { reason: 'signer' } });
    const c = await setup({ policy: { minSecurityVersion: 3 } });
    await expect(c.client.invoke('key-vault', 'get', { key: 'k' })).rejects.toMatchObject({ detail: { reason: 'svn' } });
    expect([...a.end.invokes, ...b.end.invokes, ...c.end.invokes]).toHaveLength(0);
  });

  it('refuses stale evidence and evidence over another nonce', async () => {
    const stale = await setup();
    stale.end.iatShift = -3_600_000;
    stale.end.ttlSeconds = 7200;
    await expect(stale.client.invoke('key-vault', 'get', { key: 'k' })).rejects.toMatchObject({ detail: { reason: 'too-old' } });
    const wrong = await setup();
    wrong.end.nonceOverride = randomBytes(32).toString('hex');
    await expect(wrong.client.invoke('key-vault', 'get', { key: 'k' })).rejects.toMatchObject({ code: 'ATTESTATION_INVALID', detail: { reason: 'nonce' } });
    expect([...stale.end.invokes, ...wrong.end.invokes]).toHaveLength(0);
  });

  it('refuses evidence that binds no HPKE key', async () => {
    const { end, client } = await setup();
    end.withKey = false;
    await expect(client.invoke('key-vault', 'get', { key: 'k' })).rejects.toMatchObject({ code: 'ATTESTATION_INVALID', detail: { reason: 'no-key' } });
  });

  it('after the TA was replaced (new measurement and key), verifies the new evidence once and retries', async () => {
    const { end, client } = await setup();
    await client.invoke('key-vault', 'get', { key: 'a' });
    end.identity = { ...ta, measurement: 'd'.repeat(64), version: '1.0.1' };
    end.keys = await generateHpkeKeyPair();
    expect(await client.invoke('key-vault', 'get', { key: 'b' })).toEqual({ value: 'secret-for-b' });
    expect(end.attests).toBe(2);
  });

  it('rejects an invalid policy at construction', async () => {
    const end = new EnclaveEndForTests(await generateHpkeKeyPair());
    expect(() => new ConfidentialClient({ transport: end, trustAnchors: caPem, policy: { minSecurityVersion: -1 } })).toThrow(/invalid verifier policy/);
  });
});
