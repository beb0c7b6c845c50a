import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSoftwareRoot, createTrustServices, Sealer, SealedFileStore, taStorageDirName, storageEntryCost, DEFAULT_MAX_KEYS, ENTRY_OVERHEAD_BYTES, type RootOfTrust } from '@enclave-edge/trust';
import { tempDir, identity } from './helpers.js';

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

describe('sealed storage', () => {
  it('get/put/delete/list, values sealed on disk', async () => {
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's1') });
    const s = svc.storage(identity());
    expect(await s.get('a')).toBeUndefined();
    await s.put('a', Buffer.from('secret-value-1'));
    await s.put('b.c', Buffer.from('2'));
    await s.put('a', Buffer.from('secret-value-3'));
    expect(Buffer.from((await s.get('a'))!).toString()).toBe('secret-value-3');
    expect(await s.list()).toEqual(['a', 'b.c']);
    expect(await s.list('b')).toEqual(['b.c']);
    const dir = join(t.dir, 's1', taStorageDirName(identity()));
    const files = readdirSync(dir);
    expect(files.sort()).toEqual(['k_a', 'k_b.c']);
    expect(readFileSync(join(dir, 'k_a')).includes(Buffer.from('secret-value'))).toBe(false);
    expect(await s.delete('a')).toBe(true);
    expect(await s.delete('a')).toBe(false);
    expect(await s.get('a')).toBeUndefined();
    // Same instance for the same TA; another TA has its own directory.
    expect(svc.storage(identity())).toBe(s);
    expect(await svc.storage(identity({ uuid: '00000000-0000-4000-8000-000000000000' })).list()).toEqual([]);
  });

  it('concurrent puts are group-committed in call order: last write wins, a delete between puts is kept in order, quota per put', async () => {
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's-group'), quotaBytes: 6 * storageEntryCost(4096, 4096) });
    const s = svc.storage(identity());
    await s.put('warm', Buffer.from('w'));
    const big = Buffer.alloc(4000, 1);
    // Not awaited one by one: all but the first join one batch behind the running operation.
    const ops = [
      s.put('a', Buffer.from('1')),
      s.put('a', Buffer.from('2')),
      s.delete('a'),
      s.put('a', Buffer.from('3')),
      ...Array.from({ length: 8 }, (_, i) => s.put(`q${i}`, big)),
    ];
    const results = await Promise.allSettled(ops);
    expect(results.slice(0, 4).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(Buffer.from((await s.get('a'))!).toString()).toBe('3');
    // The quota holds 6 entries (warm and a are 2): of the 8 big puts the first 4 fit, the rest are refused by name.
    const big8 = results.slice(4);
    expect(big8.map((r) => r.status)).toEqual([...Array(4).fill('fulfilled'), ...Array(4).fill('rejected')]);
    expect((big8[4] as PromiseRejectedResult).reason).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(await s.list('q')).toEqual(['q0', 'q1', 'q2', 'q3']);
    // A fresh store over the same directory sees exactly what was acknowledged.
    const again = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's-group') }).storage(identity());
    expect(await again.list()).toEqual(['a', 'q0', 'q1', 'q2', 'q3', 'warm']);
  });

  it('keeps values across an upgrade (same signer/product/uuid) and refuses a downgrade', async () => {
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's2') });
    await svc.storage(identity()).put('k', Buffer.from('v1'));
    const svc2 = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's2') });
    const up = svc2.storage(identity({ measurement: 'c'.repeat(64), securityVersion: 2 }));
    expect(Buffer.from((await up.get('k'))!).toString()).toBe('v1');
    await up.put('k', Buffer.from('v2'));
    const svc3 = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's2') });
    await expect(svc3.storage(identity()).get('k')).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
  });

  it('files cannot be swapped between keys', async () => {
    const storageDir = join(t.dir, 's3');
    const s = createTrustServices({ rootOfTrust: root, storageDir }).storage(identity());
    await s.put('x', Buffer.from('X'));
    await s.put('y', Buffer.from('Y'));
    const dir = join(storageDir, taStorageDirName(identity()));
    writeFileSync(join(dir, 'k_y'), readFileSync(join(dir, 'k_x')));
    await expect(s.get('y')).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
  });

  it('enforces the quota per TA with a clear error, in whole blocks plus a per-entry overhead', async () => {
    const entry = storageEntryCost(1, 4096); // one 4 KiB block + ENTRY_OVERHEAD_BYTES
    expect(entry).toBe(4096 + ENTRY_OVERHEAD_BYTES);
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's4'), quotaBytes: 2 * entry });
    const s = svc.storage(identity());
    await s.put('a', new Uint8Array(500));
    await s.put('b', new Uint8Array(0));
    await expect(s.put('c', new Uint8Array(0))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', message: expect.stringMatching(/quota of TA "kv" exceeded: .* bytes on disk/) });
    await s.put('a', new Uint8Array(3000)); // replacing counts the old entry out; still one block
    await expect(s.put('a', new Uint8Array(5000))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' }); // two blocks
    expect((await s.get('a'))!.byteLength).toBe(3000); // the refused write changed nothing
    await s.delete('a');
    await s.put('c', new Uint8Array(100));
    // Another TA has its own quota.
    await svc.storage(identity({ uuid: '11111111-0000-4000-8000-000000000000' })).put('a', new Uint8Array(900));
    // Usage is recomputed from disk on open.
    const reopened = new SealedFileStore(join(t.dir, 's4'), identity(), new Sealer(root), 2 * entry);
    await expect(reopened.put('d', new Uint8Array(0))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
  });

  it('empty values are not free: the blocks the store really holds stay within the quota', async () => {
    const quotaBytes = 256 * 1024;
    const storageDir = join(t.dir, 's6');
    const s = createTrustServices({ rootOfTrust: root, storageDir, quotaBytes }).storage(identity());
    let n = 0;
    for (;;) {
      const r = await s.put(`k${n}`, new Uint8Array(0)).then(() => undefined, (e: { code?: string }) => e);
      if (r) {
        expect(r.code).toBe('QUOTA_EXCEEDED');
        break;
      }
      n++;
      expect(n).toBeLessThan(quotaBytes / 4096 + 1); // by sealed bytes alone this would go on for thousands
    }
    const dir = join(storageDir, taStorageDirName(identity()));
    const files = readdirSync(dir);
    expect(files).toHaveLength(n);
    const onDisk = files.reduce((sum, f) => sum + statSync(join(dir, f)).blocks * 512, 0);
    expect(onDisk).toBeLessThanOrEqual(quotaBytes);
  });

  it('caps the number of keys per TA', async () => {
    const s = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's7'), maxKeys: 3 }).storage(identity());
    for (const k of ['a', 'b', 'c']) await s.put(k, new Uint8Array(1));
    await expect(s.put('d', new Uint8Array(1))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', message: expect.stringMatching(/maximum of 3 keys/) });
    await s.put('a', new Uint8Array(2)); // overwriting is not a new key
    await s.delete('b');
    await s.put('d', new Uint8Array(1));
    expect(await s.list()).toEqual(['a', 'c', 'd']);
    expect(DEFAULT_MAX_KEYS).toBeGreaterThan(0);
  });

  it('validates keys and values', async () => {
    const s = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 's5') }).storage(identity());
    for (const bad of ['', '../x', 'a/b', 'x'.repeat(129), 'ü', 'a b']) {
      await expect(s.put(bad, new Uint8Array(1))).rejects.toThrow(/storage keys are 1\.\.128 characters/);
    }
    await expect(s.put('ok', 'string' as never)).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(s.get('..')).resolves.toBeUndefined();
  });
});

describe('crash safety (kill -9 during writes, real child processes)', () => {
  const writer = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));

  function runChild(stateDir: string, start: number, count: number, killAfterAcks: number | undefined): Promise<{ acked: number[]; started: number[]; finished: boolean }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [writer, stateDir, String(start), String(count)], {
        env: { ...process.env, EE_TA_IDENTITY: JSON.stringify(identity()) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c));
      child.stderr.on('data', (c: Buffer) => (err += c));
      // Kill after a random number of acknowledged writes (not after a time, which a fast disk
      // can outrun): the child is then somewhere inside a later write.
      if (killAfterAcks !== undefined) {
        child.stdout.on('data', () => {
          if (!child.killed && out.split('\n').filter((l) => l.startsWith('done ')).length >= killAfterAcks) child.kill('SIGKILL');
        });
      }
      child.on('error', reject);
      child.on('close', (code, signal) => {
        if (code !== 0 && signal !== 'SIGKILL') return reject(new Error(`writer exited ${code}: ${err}`));
        const lines = out.split('\n');
        resolve({
          acked: lines.filter((l) => l.startsWith('done ')).map((l) => Number(l.slice(5))),
          started: lines.filter((l) => l.startsWith('start ')).map((l) => Number(l.slice(6))),
          finished: lines.includes('finished'),
        });
      });
    });
  }

  it('every key holds its old or new value, never garbage, and the store opens', async () => {
    const c = tempDir('ee-crash-');
    try {
      const expected = new Map<string, Set<number>>(); // key -> acceptable seqs
      const lastAcked = new Map<string, number>();
      let seq = 0;
      let kills = 0;
      const total = 1000;
      while (seq < total) {
        // Up to four killed rounds of at most ~130 writes each, then one round that finishes the rest.
        const killRound = kills < 4 && total - seq > 300;
        const count = killRound ? 250 : total - seq;
        const r = await runChild(c.dir, seq, count, killRound ? 10 + Math.floor(Math.random() * 110) : undefined);
        if (!r.finished) kills++;
        for (const s of r.acked) lastAcked.set(`k${s % 10}`, s);
        const inflight = r.started.filter((s) => !r.acked.includes(s));
        expected.clear();
        for (const [k, s] of lastAcked) expected.set(k, new Set([s]));
        for (const s of inflight) {
          const k = `k${s % 10}`;
          (expected.get(k) ?? expected.set(k, new Set()).get(k)!).add(s);
        }
        // Check the store after each round, as the next process would find it.
        const store = new SealedFileStore(join(c.dir, 'storage'), identity(), new Sealer(await openSoftwareRoot({ stateDir: c.dir })), 1 << 30);
        for (const [k, ok] of expected) {
          const v = await store.get(k);
          if (v === undefined) {
            // Only possible if this key's first write was the one in flight.
            expect(lastAcked.has(k), `key ${k} lost an acknowledged value`).toBe(false);
            continue;
          }
          const got = JSON.parse(Buffer.from(v).toString()).seq as number;
          expect(ok.has(got), `key ${k}: got seq ${got}, expected one of ${[...ok]}`).toBe(true);
          lastAcked.set(k, got);
        }
        // No temp files survive a reopen.
        expect(readdirSync(join(c.dir, 'storage', taStorageDirName(identity()))).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
        seq = Math.max(seq, ...r.started.map((s) => s + 1));
      }
      expect(kills).toBeGreaterThanOrEqual(3);
      expect(seq).toBe(total);
    } finally {
      c.cleanup();
    }
  });
});
