/**
 * Sealing and sealed storage against a hostile neighbour: a debug build of the same product,
 * another TA of the same signer, path tricks in storage keys, and blob tampering.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openSoftwareRoot, createTrustServices, Sealer, sealKeyInfo, taStorageDirName, type RootOfTrust } from '@enclave-edge/trust';
import { tempDir, identity, runtimeWithDevice, sha256hex } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let root: RootOfTrust;

beforeAll(async () => {
  t = tempDir();
  root = await openSoftwareRoot({ stateDir: t.dir });
});
afterAll(async () => {
  await root.close();
  t.cleanup();
});

const release = identity();
// A debug build of the same product by the same signer: its own measurement, debug: true.
const debugBuild = identity({ measurement: sha256hex('debug-build'), debug: true });

describe('debug builds never reach release secrets (fixed: H5 trust)', () => {
  it('product seal keys differ between debug and release builds of one signer and product', async () => {
    expect(sealKeyInfo('product', debugBuild)).not.toBe(sealKeyInfo('product', release));
    const sealer = new Sealer(root);
    const blob = await sealer.seal(release, new TextEncoder().encode('production secret'), { policy: 'product' });
    await expect(sealer.unseal(debugBuild, blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    // ...while a release upgrade of the product still opens it
    const upgrade = identity({ measurement: sha256hex('release-build-2'), securityVersion: 2 });
    expect(new TextDecoder().decode(await sealer.unseal(upgrade, blob))).toBe('production secret');
  });

  it('a debug build gets its own sealed-storage directory and cannot read release values', async () => {
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 'storage-debug') });
    expect(taStorageDirName(debugBuild)).not.toBe(taStorageDirName(release));
    await svc.storage(release).put('api-key', new TextEncoder().encode('prod-api-key'));
    const dbg = svc.storage(debugBuild);
    expect(await dbg.list()).toEqual([]);
    expect(await dbg.get('api-key')).toBeUndefined();
  });

  it('an identity without a boolean debug flag is refused (fail closed)', async () => {
    const sealer = new Sealer(root);
    const { debug: _omit, ...noDebug } = release;
    await expect(sealer.seal(noDebug as typeof release, new Uint8Array(1))).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });
});

describe('sealed storage keys cannot leave the TA directory', () => {
  it('refuses separators, traversal and empty keys; "." and ".." stay file names inside the store', async () => {
    const base = join(t.dir, 'storage-keys');
    const svc = createTrustServices({ rootOfTrust: root, storageDir: base });
    const s = svc.storage(release);
    for (const bad of ['../x', '/etc/passwd', 'a/b', 'a\\b', '', 'x'.repeat(129), 'nul\0byte', 'späce']) {
      await expect(s.put(bad, new Uint8Array(1))).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    }
    await s.put('..', new Uint8Array([1]));
    await s.put('.', new Uint8Array([2]));
    const dir = join(base, taStorageDirName(release));
    expect(readdirSync(base)).toEqual([taStorageDirName(release)]);
    expect(readdirSync(dir).sort()).toEqual(['k_.', 'k_..']);
    expect([...(await s.get('..'))!]).toEqual([1]);
  });

  it('store directories are private to the runtime user (0700) and values are sealed on disk', async () => {
    const base = join(t.dir, 'storage-perm');
    const s = createTrustServices({ rootOfTrust: root, storageDir: base }).storage(release);
    await s.put('secret', new TextEncoder().encode('plaintext-marker'));
    const dir = join(base, taStorageDirName(release));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(join(dir, 'k_secret')).includes(Buffer.from('plaintext-marker'))).toBe(false);
  });

  it('a value file moved to another key or another TA does not open (AAD binds uuid and key)', async () => {
    const base = join(t.dir, 'storage-swap');
    const svc = createTrustServices({ rootOfTrust: root, storageDir: base });
    const a = svc.storage(release);
    await a.put('one', new TextEncoder().encode('1'));
    await a.put('two', new TextEncoder().encode('2'));
    const { copyFileSync } = await import('node:fs');
    const dir = join(base, taStorageDirName(release));
    copyFileSync(join(dir, 'k_one'), join(dir, 'k_two'));
    await expect(a.get('two')).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });
});

describe('sealed storage belongs to the identity running now (SVN rule across in-place changes)', () => {
  it('services: a store view per identity; the lower SVN cannot open what the higher one wrote', async () => {
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 'storage-svn') });
    const v1 = identity({ measurement: sha256hex('svn-1'), securityVersion: 1 });
    const v2 = identity({ measurement: sha256hex('svn-2'), securityVersion: 2 });
    await svc.storage(v1).put('old', new TextEncoder().encode('from v1'));
    await svc.storage(v2).put('new', new TextEncoder().encode('from v2'));
    expect(new TextDecoder().decode(await svc.storage(v2).get('old'))).toBe('from v1'); // upgrades read older data
    await expect(svc.storage(v1).get('new')).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/sealed at security version 2/) });
    expect((await svc.storage(v1).list()).sort()).toEqual(['new', 'old']); // one directory, one quota
  });

  it('runtime: upgrade SVN 1 → 2 (writes), point the source back at SVN 1: the downgrade cannot read it, with POLICY_VIOLATION', async () => {
    const dir = join(t.dir, 'runtime-svn');
    const { rt, deploy } = await runtimeWithDevice(dir, {});
    try {
      const code = `module.exports = { commands: {
        put: (ctx, p) => ctx.storage.put('k', new Uint8Array([p])),
        get: async (ctx) => { const v = await ctx.storage.get('k'); return v ? v[0] : null; },
      } };`;
      const call = (command: string, params?: number) => rt.dispatch({ id: `${command}${Math.random()}`, op: 'invoke', ta: 'kv', command, ...(params === undefined ? {} : { params }), deadline: Date.now() + 10_000 });
      await deploy({ kv: { code, securityVersion: 1 } });
      await call('put', 1);
      await deploy({ kv: { code, securityVersion: 2 } });
      expect(await call('get')).toBe(1);
      await call('put', 2);
      await deploy({ kv: { code, securityVersion: 1 } });
      await expect(call('get')).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/sealed at security version 2/) });
    } finally {
      await rt.stop();
    }
  });
});
