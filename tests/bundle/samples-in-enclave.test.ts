/**
 * The sample TAs end to end: built by the toolchain, signed, verified by @enclave-edge/bundle,
 * and run in the real emulated enclave (worker + SES) with test trust services.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, verify } from 'node:crypto';
import { join } from 'node:path';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { admit, admittedOrThrow, canonicalJson, generateSigningKey, pemSigner, type VerifiedBundle } from '@enclave-edge/bundle';
import { runtimePolicySchema } from '@enclave-edge/protocol';
import { EmulatedBackend, type Enclave } from '@enclave-edge/enclave';
import { InMemoryTrustServicesForTests } from '@enclave-edge/enclave/testing';
import { CONFIDENTIAL_COMMAND, ENCLAVE_ATTEST_COMMAND, importHpkePublicKey, rawPublicKeyOf, sealRequest } from '@enclave-edge/confidential';
import { decodeValue, encodeValue } from '@enclave-edge/protocol';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { Value } from '@enclave-edge/ta-sdk';

const examples = join(import.meta.dirname, '..', '..', 'examples', 'tas');
const key = generateSigningKey();
const signer = pemSigner(key.privateKeyPem);
const policy = runtimePolicySchema.parse({ trustedSigners: { test: key.signerId }, allowEmulated: true });
const admitted = async (bytes: Uint8Array) => admittedOrThrow(await admit(bytes, policy, { backendKind: backend.kind, origin: 'local' }));
const backend = new EmulatedBackend();
const enclaves: Enclave[] = [];

async function load(name: string, services = new InMemoryTrustServicesForTests()): Promise<{ enclave: Enclave; bundle: VerifiedBundle }> {
  const { bundle } = await buildTA(join(examples, name), { write: false, signer });
  const verified = await admitted(bundle);
  const enclave = await backend.create(verified, { services });
  enclaves.push(enclave);
  return { enclave, bundle: verified };
}

afterAll(async () => {
  await Promise.all(enclaves.map((e) => e.destroy().catch(() => undefined)));
});

describe('sample TAs in the emulated enclave', () => {
  it('hello: ping, echo with binary, whoami reports the verified measurement', async () => {
    const { enclave, bundle } = await load('hello');
    expect(await enclave.invoke(undefined, 'ping')).toBe('pong');
    const bin = new Uint8Array([9, 8, 7]);
    expect(await enclave.invoke(undefined, 'echo', { bin, n: 1 })).toEqual({ bin, n: 1 });
    expect(await enclave.invoke(undefined, 'whoami')).toMatchObject({ name: 'hello', measurement: bundle.measurement, signerId: bundle.signerId, debug: false });
  });

  it('sensor-signer: one sealed key per TA, signatures verify with the published JWK', async () => {
    const services = new InMemoryTrustServicesForTests();
    const { enclave } = await load('sensor-signer', services);
    const jwk = (await enclave.invoke(undefined, 'publicKey')) as { kty: string; crv: string; x: string; y: string; kid: string };
    const reading = { sensor: 'pump-3', value: 4.2, unit: 'bar' };
    const out = (await enclave.invoke(undefined, 'sign', reading)) as { signature: string; keyId: string };
    expect(out.keyId).toBe(jwk.kid);
    const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
    expect(verify('sha256', Buffer.from(canonicalJson(reading)), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(out.signature, 'base64url'))).toBe(true);
    // a fresh enclave of the same TA over the same trust services unseals the same key
    await enclave.destroy();
    const again = await backend.create(await admitted((await buildTA(join(examples, 'sensor-signer'), { write: false, signer })).bundle), { services });
    enclaves.push(again);
    expect(((await again.invoke(undefined, 'publicKey')) as { kid: string }).kid).toBe(jwk.kid);
  });

  it('key-vault: put/get answer only confidential calls; list/delete plain; values through sealed storage', async () => {
    const services = new InMemoryTrustServicesForTests();
    const { enclave, bundle } = await load('key-vault', services);
    await expect(enclave.invoke(undefined, 'put', { name: 'a', value: 'alpha' })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    await expect(enclave.invoke(undefined, 'get', { name: 'a' })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    // These test services sign no evidence: the key the enclave bound is read from their record.
    await enclave.invoke(undefined, ENCLAVE_ATTEST_COMMAND, { nonce: '00'.repeat(16) });
    const recipient = await importHpkePublicKey(rawPublicKeyOf(services.attestCalls.at(-1)!.publicKey)!);
    const sealed = async (command: string, params: Value) => {
      const s = await sealRequest({ recipient, ta: 'key-vault', measurement: bundle.measurement, command, params: encodeValue(params) as never });
      const inner = await s.openResponse(await enclave.invoke(undefined, CONFIDENTIAL_COMMAND, s.envelope as never));
      if (!inner.ok) throw new EnclaveEdgeError(inner.error.code, inner.error.message);
      return decodeValue(inner.result);
    };
    await sealed('put', { name: 'a', value: 'alpha' });
    await sealed('put', { name: 'b', value: new Uint8Array([1, 2]) });
    expect(await sealed('get', { name: 'a' })).toEqual({ name: 'a', value: 'alpha' });
    expect(await sealed('get', { name: 'b' })).toEqual({ name: 'b', value: new Uint8Array([1, 2]) });
    expect(await enclave.invoke(undefined, 'list')).toEqual({ names: ['a', 'b'] });
    expect(await enclave.invoke(undefined, 'delete', { name: 'a' })).toEqual({ name: 'a', deleted: true });
    await expect(sealed('get', { name: 'a' })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
  });

  it('wasm-stats: the AssemblyScript TA through the Wasm ABI', async () => {
    const { enclave } = await load('wasm-stats');
    expect(await enclave.invoke(undefined, 'stats', [2, 4, 4, 4, 5, 5, 7, 9])).toEqual({ count: 8, min: 2, max: 9, mean: 5, stddev: 2 });
    await expect(enclave.invoke(undefined, 'stats', [])).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(enclave.invoke(undefined, 'nope', null)).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
  });
});
