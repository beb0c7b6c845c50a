import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync, writeFileSync, utimesSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createSoftHsmToken, openToken, type SoftHsmToken } from '@enclave-edge/pkcs11';
import { startWorkloadApi } from '@enclave-edge/edge-sim/workload';
import {
  createRootOfTrust, rootOfTrustConfigFromEnv, parseRootOfTrustConfig, Sealer, workloadEncrypt,
  WORKLOAD_ROOT_FILE, type RootOfTrust,
} from '@enclave-edge/trust';
import { tempDir, identity } from './helpers.js';

let hsm: SoftHsmToken;
beforeAll(() => {
  hsm = createSoftHsmToken();
});
afterAll(() => hsm?.dispose());

async function signsVerifiably(root: RootOfTrust): Promise<boolean> {
  const data = randomBytes(100);
  const sig = await root.attestationSigner.sign(data);
  const pub = createPublicKey({ key: Buffer.from(root.attestationSigner.spki), format: 'der', type: 'spki' });
  return nodeVerify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig);
}

describe('pkcs11 root of trust (SoftHSM2)', () => {
  it('generates non-extractable keys in the token on first start, reuses them after, and seals with them', async () => {
    const t = tempDir();
    try {
      const cfg = { kind: 'pkcs11', stateDir: t.dir, uri: hsm.uri };
      const root = await createRootOfTrust(cfg);
      expect(root.kind).toBe('pkcs11');
      expect(root.developmentGrade).toBe(false);
      expect(await signsVerifiably(root)).toBe(true);
      const sealer = new Sealer(root);
      const blob = await sealer.seal(identity(), Buffer.from('in the token'), { policy: 'product' });
      const spki = Buffer.from(root.attestationSigner.spki);
      await root.close();
      // Reopen: same keys, old blob opens.
      const again = await createRootOfTrust(cfg);
      expect(Buffer.from(again.attestationSigner.spki).equals(spki)).toBe(true);
      expect(Buffer.from(await new Sealer(again).unseal(identity(), blob)).toString()).toBe('in the token');
      // The root secret is in the token, not on disk.
      const tok = await openToken({ uri: hsm.uri });
      const key = await tok.findKey({ class: 'secret', label: 'enclave-edge-seal-root' });
      expect(await tok.keyProtection(key!)).toMatchObject({ sensitive: true, extractable: false });
      await tok.close();
      await again.close();
    } finally {
      t.cleanup();
    }
  });

  it('derives different keys than a software root (derivation runs in the token)', async () => {
    const t = tempDir();
    try {
      const p = await createRootOfTrust({ kind: 'pkcs11', stateDir: t.dir, uri: hsm.uri });
      const s = await createRootOfTrust({ kind: 'software', stateDir: t.dir });
      const info = Buffer.from('i');
      expect(Buffer.from(await p.deriveKey(info)).equals(Buffer.from(await s.deriveKey(info)))).toBe(false);
      expect((await p.deriveKey(info)).length).toBe(32);
      await p.close();
      await s.close();
    } finally {
      t.cleanup();
    }
  });

  it('two runtimes starting at once create one key set (lock file), and a stale lock is taken over', async () => {
    const t = tempDir();
    try {
      const cfg = { kind: 'pkcs11', stateDir: t.dir, uri: hsm.uri, sealKeyLabel: 'race-seal', attestationKeyLabel: 'race-att' };
      writeFileSync(join(t.dir, '.pkcs11-keygen.lock'), '');
      const old = new Date(Date.now() - 60_000);
      utimesSync(join(t.dir, '.pkcs11-keygen.lock'), old, old);
      const [a, b] = await Promise.all([createRootOfTrust(cfg), createRootOfTrust(cfg)]);
      expect(Buffer.from(a.attestationSigner.spki).equals(Buffer.from(b.attestationSigner.spki))).toBe(true);
      const info = Buffer.from('same?');
      expect(Buffer.from(await a.deriveKey(info)).equals(Buffer.from(await b.deriveKey(info)))).toBe(true);
      expect(existsSync(join(t.dir, '.pkcs11-keygen.lock'))).toBe(false);
      await a.close();
      await b.close();
    } finally {
      t.cleanup();
    }
  });

  it('fails clearly with a wrong PIN or an unknown token', async () => {
    const t = tempDir();
    try {
      await expect(createRootOfTrust({ kind: 'pkcs11', stateDir: t.dir, uri: 'pkcs11:token=nope', pin: '1' })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
    } finally {
      t.cleanup();
    }
  });
});

describe('workload root of trust (against the simulator workload API)', () => {
  let api: Awaited<ReturnType<typeof startWorkloadApi>>;
  const modules = new Map([['ta-runtime', { generationId: 'gen-1', key: randomBytes(32) }]]);
  beforeAll(async () => {
    api = await startWorkloadApi({ listen: { port: 0 }, trustBundlePem: '', modules: (id) => modules.get(id), masterSecret: randomBytes(32) });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('keeps only the wrapped secret on disk and unwraps it on restart', async () => {
    const t = tempDir();
    try {
      const env = { ENCLAVE_EDGE_ROT: 'workload', ENCLAVE_EDGE_STATE_DIR: t.dir, IOTEDGE_WORKLOADURI: api.uri + '/', IOTEDGE_MODULEID: 'ta-runtime', IOTEDGE_MODULEGENERATIONID: 'gen-1' };
      const root = await createRootOfTrust(rootOfTrustConfigFromEnv(env));
      expect(root.kind).toBe('workload');
      expect(await signsVerifiably(root)).toBe(true);
      const blob = await new Sealer(root).seal(identity(), Buffer.from('wrapped'), { policy: 'unique' });
      const file = JSON.parse(readFileSync(join(t.dir, WORKLOAD_ROOT_FILE), 'utf8'));
      expect(Object.keys(file).sort()).toEqual(['attestationKey', 'createdAt', 'kind', 'moduleId', 'version', 'wrapIv', 'wrappedSecret']);
      const spki = Buffer.from(root.attestationSigner.spki);
      await root.close();
      const again = await createRootOfTrust(rootOfTrustConfigFromEnv(env));
      expect(Buffer.from(again.attestationSigner.spki).equals(spki)).toBe(true);
      expect(Buffer.from(await new Sealer(again).unseal(identity(), blob)).toString()).toBe('wrapped');
    } finally {
      t.cleanup();
    }
  });

  it('a new module generation cannot unwrap the secret (SEAL_INTEGRITY, says why)', async () => {
    const t = tempDir();
    try {
      await (await createRootOfTrust({ kind: 'workload', stateDir: t.dir, workloadUri: api.uri, moduleId: 'ta-runtime', generationId: 'gen-1' })).close();
      modules.set('ta-runtime', { generationId: 'gen-2', key: randomBytes(32) });
      await expect(createRootOfTrust({ kind: 'workload', stateDir: t.dir, workloadUri: api.uri, moduleId: 'ta-runtime', generationId: 'gen-2' }))
        .rejects.toMatchObject({ code: 'SEAL_INTEGRITY', message: expect.stringMatching(/generation id/) });
    } finally {
      modules.set('ta-runtime', { generationId: 'gen-1', key: randomBytes(32) });
      t.cleanup();
    }
  });

  it('a tampered wrapped secret or attestation key is refused', async () => {
    const t = tempDir();
    try {
      const cfg = { kind: 'workload', stateDir: t.dir, workloadUri: api.uri, moduleId: 'ta-runtime', generationId: 'gen-1' };
      await (await createRootOfTrust(cfg)).close();
      const path = join(t.dir, WORKLOAD_ROOT_FILE);
      const orig = readFileSync(path, 'utf8');
      const f = JSON.parse(orig);
      const ct = Buffer.from(f.attestationKey.ciphertext, 'base64');
      ct[3]! ^= 1;
      writeFileSync(path, JSON.stringify({ ...f, attestationKey: { ...f.attestationKey, ciphertext: ct.toString('base64') } }));
      await expect(createRootOfTrust(cfg)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
      const w = Buffer.from(f.wrappedSecret, 'base64');
      w[0]! ^= 1;
      writeFileSync(path, JSON.stringify({ ...f, wrappedSecret: w.toString('base64') }));
      await expect(createRootOfTrust(cfg)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    } finally {
      t.cleanup();
    }
  });

  it('reports an unreachable workload API and an unknown module', async () => {
    const t = tempDir();
    try {
      await expect(createRootOfTrust({ kind: 'workload', stateDir: t.dir, workloadUri: 'http://127.0.0.1:1', moduleId: 'm', generationId: 'g' }))
        .rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/ECONNREFUSED/) });
      await expect(workloadEncrypt({ uri: api.uri, moduleId: 'nobody', generationId: 'g' }, Buffer.from('x'), randomBytes(12)))
        .rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
    } finally {
      t.cleanup();
    }
  });

  it('works over a unix socket', async () => {
    const t = tempDir();
    const sock = join(t.dir, 'workload.sock');
    const unixApi = await startWorkloadApi({ listen: { socketPath: sock }, trustBundlePem: '', modules: (id) => modules.get(id), masterSecret: randomBytes(32) });
    try {
      const root = await createRootOfTrust({ kind: 'workload', stateDir: t.dir, workloadUri: `unix://${sock}`, moduleId: 'ta-runtime', generationId: 'gen-1' });
      expect(await signsVerifiably(root)).toBe(true);
      await root.close();
    } finally {
      await unixApi.close();
      t.cleanup();
    }
  });
});

describe('root-of-trust configuration', () => {
  it('validates with clear errors', () => {
    expect(() => parseRootOfTrustConfig({ kind: 'sgx', stateDir: '/x' })).toThrow(/invalid root-of-trust configuration/);
    expect(() => parseRootOfTrustConfig({ kind: 'tpm', stateDir: '/x', pcrs: 7 })).toThrow(/pcrs/);
    expect(() => parseRootOfTrustConfig({ kind: 'pkcs11', stateDir: '/x', uri: 'file:/k' })).toThrow(/uri: must be a pkcs11: URI/);
    expect(() => rootOfTrustConfigFromEnv({ ENCLAVE_EDGE_ROT: 'workload', ENCLAVE_EDGE_STATE_DIR: '/x' })).toThrow(/workloadUri/);
    expect(() => rootOfTrustConfigFromEnv({})).toThrow(/stateDir/);
    expect(rootOfTrustConfigFromEnv({}, { stateDir: '/s' })).toEqual({ kind: 'software', stateDir: '/s' });
    expect(rootOfTrustConfigFromEnv({ ENCLAVE_EDGE_ROT: 'pkcs11', ENCLAVE_EDGE_STATE_DIR: '/s', ENCLAVE_EDGE_PKCS11_URI: 'pkcs11:token=a' }))
      .toEqual({ kind: 'pkcs11', stateDir: '/s', uri: 'pkcs11:token=a' });
  });
});
