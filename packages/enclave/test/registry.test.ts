import { describe, it, expect } from 'vitest';
import { createBackend, registerBackend, backendKinds, probeBackend, EmulatedBackend, type EnclaveBackend } from '@enclave-edge/enclave';

describe('backend registry', () => {
  it('creates the emulated backend by kind, and closes it', async () => {
    const b = createBackend('emulated', { standby: 0 });
    expect(b).toBeInstanceOf(EmulatedBackend);
    expect(b.kind).toBe('emulated');
    await b.close?.();
  });

  it('probes: emulated is available here (with its OS bounds), sgx/optee/unknown say why not', () => {
    expect(probeBackend('emulated')).toMatchObject({ available: true, details: { isolation: 'process', os: { residentWatch: expect.any(Object) } } });
    expect(probeBackend('sgx')).toMatchObject({ available: false, reason: expect.stringContaining('SGX') });
    expect(probeBackend('optee')).toMatchObject({ available: false });
    expect(probeBackend('tpm-magic')).toMatchObject({ available: false, reason: expect.stringContaining('emulated') });
  });

  it('names sgx and optee but refuses them clearly (NOT_SUPPORTED)', () => {
    for (const kind of ['sgx', 'optee']) {
      expect(backendKinds()).toContain(kind);
      expect(() => createBackend(kind)).toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED', message: expect.stringContaining(kind) }));
    }
  });

  it('refuses unknown kinds, listing the known ones', () => {
    expect(() => createBackend('tpm-magic')).toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED', message: expect.stringContaining('emulated') }));
  });

  it('lets an adapter plug in behind the same contract', () => {
    const fake: EnclaveBackend = { kind: 'fake-tee', create: async () => Promise.reject(new Error('not in tests')) };
    registerBackend('fake-tee', () => fake);
    expect(createBackend('fake-tee')).toBe(fake);
    expect(() => registerBackend('Bad Kind', () => fake)).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS' }));
  });
});
