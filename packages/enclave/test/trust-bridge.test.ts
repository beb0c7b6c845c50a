/** The host side of service calls re-checks what arrives from a worker and binds the enclave's identity. */
import { describe, it, expect } from 'vitest';
import { TrustBridge, decodeNonce } from '@enclave-edge/enclave/internals';
import { InMemoryTrustServicesForTests } from '@enclave-edge/enclave/testing';
import type { TAIdentity } from '@enclave-edge/enclave';

const identity: TAIdentity = { name: 'bridge-ta', uuid: 'u', version: '1.0.0', measurement: 'm'.repeat(64), signerId: 's'.repeat(64), productId: 7, securityVersion: 2, debug: false };

describe('TrustBridge', () => {
  const services = new InMemoryTrustServicesForTests();
  const seen: TAIdentity[] = [];
  const bridge = new TrustBridge(identity, 'emulated', ['echo'], {
    services,
    hostCalls: {
      echo: (ta, args) => {
        seen.push(ta);
        return { got: args };
      },
      hidden: () => 'never',
    },
  }, 1024);

  it('refuses malformed service arguments instead of guessing', async () => {
    await expect(bridge.handle('seal', ['not bytes', 'product', null])).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(bridge.handle('seal', [new Uint8Array(1), 'weird', null])).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(bridge.handle('storage.get', ['../escape'])).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(bridge.handle('storage.put', ['ok', 'not bytes'])).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('seals with the enclave identity (another identity cannot unseal a unique blob)', async () => {
    const blob = (await bridge.handle('seal', [new Uint8Array([5]), 'unique', null])) as Uint8Array;
    expect(await services.unseal(identity, blob, {})).toEqual(new Uint8Array([5]));
    await expect(services.unseal({ ...identity, measurement: 'x'.repeat(64) }, blob, {})).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });

  it('dispatches host calls only when both the manifest and the runtime allow them, with the enclave identity', async () => {
    expect(await bridge.handle('host', ['echo', { a: 1 }])).toEqual({ got: { a: 1 } });
    expect(seen.at(-1)).toBe(identity);
    await expect(bridge.handle('host', ['hidden', null])).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    await expect(bridge.handle('host', ['echo', 'x'.repeat(2000)])).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('attests with the backend kind as tee', async () => {
    const ev = JSON.parse((await bridge.handle('attest', ['0011223344556677', null])) as string);
    expect(ev.tee).toBe('emulated');
    expect(services.attestCalls.at(-1)?.id).toBe(identity);
  });

  it('decodes nonces as bytes, hex or base64url, 8..55 bytes', () => {
    expect(decodeNonce('0011223344556677')).toEqual(new Uint8Array([0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]));
    expect(decodeNonce('AAECAwQFBgc')).toHaveLength(8);
    expect(() => decodeNonce('abcd')).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS' }));
    expect(() => decodeNonce(new Uint8Array(65))).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS' }));
    expect(() => decodeNonce('not a nonce!')).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS' }));
  });
});
