/**
 * Storage faults on real file systems: a 128 KiB tmpfs that fills up, and a read-only bind
 * mount. The caller gets STORAGE_UNAVAILABLE naming the cause, never a host path, and the old
 * value survives the failed write. Needs root for mount(8); without it the test says so and skips.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openSoftwareRoot, createTrustServices, type RootOfTrust } from '@enclave-edge/trust';
import { tempDir, identity } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let root: RootOfTrust;
const mounted: string[] = [];

function mount(args: string[]): boolean {
  try {
    execFileSync('mount', args, { stdio: 'ignore' });
    mounted.unshift(args.at(-1)!);
    return true;
  } catch {
    return false;
  }
}

let canMount = false;
beforeAll(async () => {
  t = tempDir();
  root = await openSoftwareRoot({ stateDir: join(t.dir, 'root') });
  mkdirSync(join(t.dir, 'probe'));
  canMount = mount(['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', join(t.dir, 'probe')]);
  if (!canMount) console.warn('storage-faults: mount(8) is not allowed here (needs root); disk-full and read-only tests skipped');
});
afterAll(async () => {
  for (const m of mounted) execFileSync('umount', [m], { stdio: 'ignore' });
  await root.close();
  t.cleanup();
});

describe('storage faults', () => {
  it('disk full: STORAGE_UNAVAILABLE without a path, and the old value survives', async (ctx) => {
    if (!canMount) return ctx.skip();
    const dir = join(t.dir, 'full');
    mkdirSync(dir);
    expect(mount(['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', dir])).toBe(true);
    const s = createTrustServices({ rootOfTrust: root, storageDir: dir }).storage(identity());
    await s.put('keep', Buffer.from('old value'));
    let err: any;
    for (let i = 0; i < 64 && !err; i++) await s.put(`fill${i}`, Buffer.alloc(16 * 1024, i)).catch((e: unknown) => (err = e));
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', message: expect.stringContaining('the disk is full') });
    expect(err.message).not.toContain(t.dir);
    expect(JSON.stringify(err.toJSON())).not.toContain(t.dir);
    // Overwriting with a value that no longer fits fails the same way; the old one is still there.
    await expect(s.put('keep', Buffer.alloc(64 * 1024, 7))).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(Buffer.from((await s.get('keep'))!).toString()).toBe('old value');
  });

  it('read-only: STORAGE_UNAVAILABLE without a path; reads still work and the old value survives', async (ctx) => {
    if (!canMount) return ctx.skip();
    const src = join(t.dir, 'rw');
    const ro = join(t.dir, 'ro');
    mkdirSync(src);
    mkdirSync(ro);
    await createTrustServices({ rootOfTrust: root, storageDir: src }).storage(identity()).put('keep', Buffer.from('old value'));
    expect(mount(['--bind', src, ro])).toBe(true);
    execFileSync('mount', ['-o', 'remount,bind,ro', ro], { stdio: 'ignore' });
    const s = createTrustServices({ rootOfTrust: root, storageDir: ro }).storage(identity());
    expect(Buffer.from((await s.get('keep'))!).toString()).toBe('old value');
    const err: any = await s.put('keep', Buffer.from('new value')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', message: expect.stringContaining('read-only') });
    expect(err.message).not.toContain(t.dir);
    expect(Buffer.from((await s.get('keep'))!).toString()).toBe('old value');
  });
});
