/**
 * Sealing and sealed storage against a hostile neighbour: a debug build of the same product,
 * another TA of the same signer, path tricks in storage keys, and blob tampering.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openSoftwareRoot, createTrustServices, Sealer, sealKeyInfo, taStorageDirName, type RootOfTrust } from '@enclave-edge/trust';
import { tempDir, identity, sha256hex } from './helpers.js';

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
