/**
 * Confidential calls through the real runtime core (TARuntime, emulated enclaves, a software
 * root of trust on disk): the envelope is opened only in the enclave worker, the runtime's logs
 * and events never see the plaintext, confidential-only commands refuse plain calls, envelopes
 * are single-use, and the TA key is sealed to the measurement (same after a restart, new with a
 * new version). The MQTT path through edgeHub is covered in tests/e2e/confidential.test.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime } from '@enclave-edge/ta-runtime';
import { openSoftwareRoot, createTrustServices, initDeviceIdentity, devicePaths } from '@enclave-edge/trust';
import { verifyEvidence } from '@enclave-edge/attestation';
import { ConfidentialClient, CONFIDENTIAL_COMMAND, sealRequest, type ConfidentialTransport, type JsonValue } from '@enclave-edge/confidential';
import { createLogger } from '@enclave-edge/observability';
import { newSigner, signedBundle, type TestSigner } from './bundles.js';
import { tempDir } from './helpers.js';

const VAULT_TA = `module.exports = { commands: {
  get: (ctx, p) => ({ value: 'result-' + p.key, confidential: ctx.caller.confidential }),
  how: (ctx) => ({ confidential: ctx.caller.confidential }),
  fail: (ctx, p) => { const e = new Error('no such key ' + p.key); e.code = 'ITEM_NOT_FOUND'; throw e; },
} };`;

const t = tempDir('ee-sec-confidential-');
const uuid = randomUUID();
let signer: TestSigner;
let ca: string;
let lines: string[] = [];
let events: string[] = [];

async function startRuntime(code = VAULT_TA, version = '1.0.0'): Promise<TARuntime> {
  const root = await openSoftwareRoot({ stateDir: t.dir });
  const services = createTrustServices({ rootOfTrust: root });
  const log = createLogger({ name: 'sec', level: 'debug', destination: { write: (s: string) => void lines.push(s) } });
  const rt = new TARuntime({
    backend: new EmulatedBackend(), services, log, sources: { bundleDir: '/nonexistent' }, drainMs: 200,
    events: { event: (type, body) => void events.push(JSON.stringify({ type, body })), report: (n, r) => void events.push(JSON.stringify({ n, r })) },
  });
  const bundle = await signedBundle(signer, code, { name: 'vault', uuid, version, confidentialCommands: ['get', 'fail'] });
  await rt.reconcile({ policy: { trustedSigners: { mine: signer.signerId }, allowEmulated: true }, tas: { vault: { source: 'base64:' + Buffer.from(bundle).toString('base64') } } });
  return rt;
}

/** The runtime's own request path: what host-module sends over edgeHub, minus MQTT. */
function transportTo(rt: () => TARuntime, sent: JsonValue[] = []): ConfidentialTransport {
  const deadline = () => Date.now() + 10_000;
  return {
    async attest(ta, nonce) {
      return ((await rt().dispatch({ id: randomBytes(4).toString('hex'), op: 'attest', ta, nonce, deadline: deadline() } as never)) as { token: string }).token;
    },
    async invoke(ta, command, params) {
      sent.push(params);
      return (await rt().dispatch({ id: randomBytes(4).toString('hex'), op: 'invoke', ta, command, params, deadline: deadline() } as never)) as JsonValue;
    },
  };
}

let rt: TARuntime;
const sent: JsonValue[] = [];
let client: ConfidentialClient;

beforeAll(async () => {
  signer = newSigner();
  const root = await openSoftwareRoot({ stateDir: t.dir });
  await initDeviceIdentity({ root, mode: 'self-signed' });
  ca = readFileSync(devicePaths(root.stateDir).ca, 'utf8');
  rt = await startRuntime();
  client = new ConfidentialClient({ transport: transportTo(() => rt, sent), trustAnchors: ca, allowEmulated: true });
});
afterAll(async () => {
  await rt.stop();
  t.cleanup();
});

const plain = (command: string, params: JsonValue) => rt.dispatch({ id: randomBytes(4).toString('hex'), op: 'invoke', ta: 'vault', command, params, deadline: Date.now() + 10_000 } as never);

async function evidenceKey(r: TARuntime): Promise<unknown> {
  const nonce = randomBytes(16).toString('hex');
  const { token } = (await r.dispatch({ id: 'e1', op: 'attest', ta: 'vault', nonce, deadline: Date.now() + 10_000 } as never)) as { token: string };
  const v = await verifyEvidence(token, { trustAnchors: ca, nonce, policy: { allowEmulated: true } });
  if (!v.accepted) throw new Error(v.message);
  return v.claims.cnf?.jwk;
}

describe('confidential calls in the runtime', () => {
  it('runtime-issued evidence binds the TA HPKE key (OKP X25519) in cnf.jwk', async () => {
    expect(await evidenceKey(rt)).toMatchObject({ kty: 'OKP', crv: 'X25519', x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
  });

  it('the TA reads plain params, says the call was confidential, and only the caller reads the result; runtime logs and events never see either', async () => {
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    expect(await client.invoke('vault', 'get', { key: marker })).toEqual({ value: `result-${marker}`, confidential: true });
    expect(JSON.stringify(sent.at(-1))).not.toContain(marker);
    expect(lines.join('\n')).not.toContain(marker);
    expect(events.join('\n')).not.toContain(marker);
  });

  it('a plain call to a confidential-only command is refused ACCESS_DENIED; other commands say confidential: false', async () => {
    await expect(plain('get', { key: 'k' })).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/answers only confidential calls/) });
    expect(await plain('how', null)).toEqual({ confidential: false });
    expect(await client.invoke('vault', 'how')).toEqual({ confidential: true });
  });

  it('the TA error travels inside the sealed answer', async () => {
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    await expect(client.invoke('vault', 'fail', { key: marker })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: `no such key ${marker}` });
    expect(lines.join('\n')).not.toContain(marker);
    expect(events.join('\n')).not.toContain(marker);
  });

  it('a replayed envelope is refused CONFLICT (single use), and the runtime keeps serving', async () => {
    await client.invoke('vault', 'get', { key: 'once' });
    const envelope = sent.at(-1)!;
    await expect(plain(CONFIDENTIAL_COMMAND, envelope)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/\(replay\)/) });
    expect(await client.invoke('vault', 'get', { key: 'after' })).toMatchObject({ value: 'result-after' });
  });

  it('tampered, truncated and wrong-suite envelopes are refused with a code and reason; a tampered copy does not spend the genuine one', async () => {
    const k = await client.attestedKey('vault');
    const fresh = async () => (await sealRequest({ recipient: k.key, ta: k.ta, measurement: k.measurement, command: 'how', params: null })).envelope;
    const env = await fresh();
    const ct = Buffer.from(env.ct, 'base64url');
    ct[5]! ^= 0x40;
    await expect(plain(CONFIDENTIAL_COMMAND, { ...env, ct: ct.toString('base64url') })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY', message: expect.stringMatching(/\(integrity\)/) });
    // Its request id was reserved as it entered the enclave and freed when it did not open.
    expect(await plain(CONFIDENTIAL_COMMAND, env as never)).toMatchObject({ v: 1 });
    await expect(plain(CONFIDENTIAL_COMMAND, env as never)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/\(replay\)/) });
    await expect(plain(CONFIDENTIAL_COMMAND, { ...(await fresh()), ct: env.ct.slice(0, 8) })).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    const h = JSON.parse(Buffer.from(env.h, 'base64url').toString());
    await expect(plain(CONFIDENTIAL_COMMAND, { ...env, h: Buffer.from(JSON.stringify({ ...h, aead: 3 })).toString('base64url') })).rejects.toMatchObject({ code: 'NOT_SUPPORTED', message: expect.stringMatching(/\(suite\)/) });
    await expect(plain(CONFIDENTIAL_COMMAND, { ...env, h: Buffer.from(JSON.stringify({ ...h, ta: 'other' })).toString('base64url') })).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/\(ta\)/) });
    await expect(plain(CONFIDENTIAL_COMMAND, 'not an envelope')).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    expect(await client.invoke('vault', 'how')).toEqual({ confidential: true });
  });

  it('the TA key survives a runtime restart, changes with a new TA version, and old envelopes are refused MEASUREMENT_MISMATCH', async () => {
    const before = await evidenceKey(rt);
    await client.invoke('vault', 'how');
    const oldEnvelope = sent.at(-1)!;
    await rt.stop();
    rt = await startRuntime();
    expect(await evidenceKey(rt)).toEqual(before);
    expect(await client.invoke('vault', 'get', { key: 'again' })).toMatchObject({ value: 'result-again' });
    await rt.stop();
    rt = await startRuntime(VAULT_TA.replace("'result-'", "'v2-'"), '1.0.1');
    const after = await evidenceKey(rt);
    expect(after).not.toEqual(before);
    await expect(plain(CONFIDENTIAL_COMMAND, oldEnvelope)).rejects.toMatchObject({ code: 'MEASUREMENT_MISMATCH' });
    // The client notices, verifies the new evidence once, and retries.
    expect(await client.invoke('vault', 'get', { key: 'k2' })).toMatchObject({ value: 'v2-k2' });
  });
});
