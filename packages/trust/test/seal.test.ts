import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSoftwareRoot, Sealer, inspectSealedBlob, SEAL_OVERHEAD, sealKeyInfo, type RootOfTrust } from '@enclave-edge/trust';
import { tempDir, identity } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let root: RootOfTrust;
let sealer: Sealer;
const logs: string[] = [];

beforeAll(async () => {
  t = tempDir();
  root = await openSoftwareRoot({ stateDir: t.dir, log: (_l, m) => logs.push(m) });
  sealer = new Sealer(root);
});
afterAll(async () => {
  await root.close();
  t.cleanup();
});

const h = (s: string) => createHash('sha256').update(s).digest('hex');

describe('software root of trust', () => {
  it('creates its key file 0600 on first start, reuses it, and says development-grade', async () => {
    const st = statSync(join(t.dir, 'software-root.json'));
    expect(st.mode & 0o777).toBe(0o600);
    expect(root.developmentGrade).toBe(true);
    expect(logs.join()).toMatch(/DEVELOPMENT-GRADE/);
    const again = await openSoftwareRoot({ stateDir: t.dir });
    const info = Buffer.from('x');
    expect(Buffer.from(await again.deriveKey(info)).equals(Buffer.from(await root.deriveKey(info)))).toBe(true);
    expect(Buffer.from(again.attestationSigner.spki).equals(Buffer.from(root.attestationSigner.spki))).toBe(true);
    expect(readFileSync(join(t.dir, 'software-root.json'), 'utf8')).toMatch(/"kind":"software"/);
  });
});

describe('Sealer', () => {
  const id = identity();

  it('round-trips with context, any size', async () => {
    for (const size of [0, 1, 16 * 1024, 16 * 1024 + 1, 100_000]) {
      const data = randomBytes(size);
      const blob = await sealer.seal(id, data, { policy: 'product', context: Buffer.from('ctx') });
      expect(blob.length).toBe(size + SEAL_OVERHEAD);
      const out = await sealer.unseal(id, blob, { context: Buffer.from('ctx') });
      expect(Buffer.from(out).equals(data)).toBe(true);
    }
    const u = await sealer.seal(id, Buffer.from('x'), { policy: 'unique' });
    expect(inspectSealedBlob(u)).toMatchObject({ version: 1, policy: 'unique', securityVersion: 1, ciphertextBytes: 1 });
  });

  it('any tampered byte is SEAL_INTEGRITY', async () => {
    const data = randomBytes(64);
    const blob = Buffer.from(await sealer.seal(id, data, { policy: 'product', context: Buffer.from('c') }));
    for (let i = 0; i < blob.length; i++) {
      const bad = Buffer.from(blob);
      bad[i]! ^= 0x01;
      await expect(sealer.unseal(id, bad, { context: Buffer.from('c') }), `byte ${i}`).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    }
    await expect(sealer.unseal(id, blob.subarray(0, blob.length - 1), { context: Buffer.from('c') })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    await expect(sealer.unseal(id, blob.subarray(0, 10))).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    await expect(sealer.unseal(id, Buffer.concat([blob, Buffer.from([0])]), { context: Buffer.from('c') })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });

  it('refuses a different context', async () => {
    const blob = await sealer.seal(id, Buffer.from('s'), { policy: 'product', context: Buffer.from('a') });
    await expect(sealer.unseal(id, blob, { context: Buffer.from('b') })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    await expect(sealer.unseal(id, blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });

  it('refuses another TA (signer or product) for product blobs', async () => {
    const blob = await sealer.seal(id, Buffer.from('s'), { policy: 'product' });
    await expect(sealer.unseal(identity({ signerId: h('signer-B') }), blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY', message: expect.stringMatching(/another signer\/product/) });
    await expect(sealer.unseal(identity({ productId: 2 }), blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });

  it('an upgraded TA (same signer and product, SVN+1, new build) unseals product blobs of the old version', async () => {
    const blob = await sealer.seal(id, Buffer.from('keep me'), { policy: 'product' });
    const v2 = identity({ measurement: h('build-2'), version: '1.1.0', securityVersion: 2 });
    expect(Buffer.from(await sealer.unseal(v2, blob)).toString()).toBe('keep me');
  });

  it('a TA at a lower SVN cannot open a blob sealed at a higher one (POLICY_VIOLATION)', async () => {
    const v2 = identity({ measurement: h('build-2'), securityVersion: 2 });
    const blob = await sealer.seal(v2, Buffer.from('new'), { policy: 'product' });
    await expect(sealer.unseal(id, blob)).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/security version 2.*at 1/) });
  });

  it('a unique blob opens for no other build, even of the same signer and product', async () => {
    const blob = await sealer.seal(id, Buffer.from('only me'), { policy: 'unique' });
    expect(Buffer.from(await sealer.unseal(id, blob)).toString()).toBe('only me');
    await expect(sealer.unseal(identity({ measurement: h('build-2') }), blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY', message: expect.stringMatching(/another build/) });
    await expect(sealer.unseal(identity({ measurement: h('build-2'), securityVersion: 5 }), blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });

  it('policy is not interchangeable: product and unique keys differ', async () => {
    expect(sealKeyInfo('unique', id)).not.toBe(sealKeyInfo('product', id));
    const blob = Buffer.from(await sealer.seal(id, Buffer.from('p'), { policy: 'product' }));
    blob[5] = 1; // relabel as unique: header is AAD and the key differs
    await expect(sealer.unseal(id, blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });

  it('another root of trust (another device) cannot open the blob', async () => {
    const t2 = tempDir();
    try {
      const other = new Sealer(await openSoftwareRoot({ stateDir: t2.dir }));
      const blob = await sealer.seal(id, Buffer.from('s'), { policy: 'product' });
      await expect(other.unseal(id, blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    } finally {
      t2.cleanup();
    }
  });

  it('takes string contexts as UTF-8 and never coerces other types', async () => {
    const blob = await sealer.seal(id, Buffer.from('s'), { context: 'ctx-a' });
    expect(Buffer.from(await sealer.unseal(id, blob, { context: Buffer.from('ctx-a') })).toString()).toBe('s');
    await expect(sealer.unseal(id, blob, { context: 'ctx-b' })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    await expect(sealer.seal(id, Buffer.from('s'), { context: 42 as never })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(sealer.seal(id, 'text' as never)).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('writes into a caller buffer when asked (reused by sealed storage)', async () => {
    const scratch = Buffer.alloc(200, 0xee);
    const blob = await sealer.seal(id, Buffer.from('into scratch'), { output: scratch });
    expect(blob.buffer).toBe(scratch.buffer);
    expect(blob.length).toBe(12 + SEAL_OVERHEAD);
    expect(Buffer.from(await sealer.unseal(id, Buffer.from(blob))).toString()).toBe('into scratch');
    await expect(sealer.seal(id, Buffer.alloc(200), { output: scratch })).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/too small/) });
  });

  it('validates identities and policies', async () => {
    await expect(sealer.seal(identity({ measurement: 'nothex' }), Buffer.from('x'))).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(sealer.seal(id, Buffer.from('x'), { policy: 'bogus' as never })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('refuses a key file readable by others', async () => {
    const t3 = tempDir();
    try {
      await openSoftwareRoot({ stateDir: t3.dir });
      const { chmodSync } = await import('node:fs');
      chmodSync(join(t3.dir, 'software-root.json'), 0o644);
      await expect(openSoftwareRoot({ stateDir: t3.dir })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/chmod 600/) });
    } finally {
      t3.cleanup();
    }
  });
});

describe('software HKDF-Expand', () => {
  it('matches RFC 5869 A.1', async () => {
    const { hkdfExpandSha256 } = await import('@enclave-edge/trust');
    const prk = Buffer.from('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5', 'hex');
    const okm = hkdfExpandSha256(prk, Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex'), 42);
    expect(Buffer.from(okm).toString('hex')).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });
});

describe('first start', () => {
  it('concurrent first starts of the software root agree on one key file', async () => {
    const t4 = tempDir();
    try {
      const roots = await Promise.all(Array.from({ length: 8 }, () => openSoftwareRoot({ stateDir: t4.dir })));
      const first = Buffer.from(roots[0]!.attestationSigner.spki);
      for (const r of roots) expect(Buffer.from(r.attestationSigner.spki).equals(first)).toBe(true);
    } finally {
      t4.cleanup();
    }
  });
});
