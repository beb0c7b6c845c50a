// Rollback protection of sealed storage, anchored in a TPM NV counter on a real swtpm (one per file).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { cpSync, rmSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTpmRoot, createTrustServices, taStorageDirName, FRESHNESS_MANIFEST, type TpmRootOfTrust, type MonotonicCounter } from '@enclave-edge/trust';
import { startSwtpm, type Swtpm } from '../../../tests/support/swtpm.js';
import { tempDir, identity } from './helpers.js';

let tpm: Swtpm;
const dirs: Array<ReturnType<typeof tempDir>> = [];
const fast = { maxIncrementsPerHour: 1_000_000 };

beforeAll(async () => {
  tpm = await startSwtpm();
});
afterAll(async () => {
  await tpm?.stop();
  for (const d of dirs) d.cleanup();
});

function stateDir(): string {
  const d = tempDir('ee-rollback-');
  dirs.push(d);
  return d.dir;
}

async function services(dir: string, root?: TpmRootOfTrust, freshness = fast) {
  const r = root ?? (await openTpmRoot({ stateDir: dir, tcti: tpm.tcti }));
  return createTrustServices({ rootOfTrust: r, freshness });
}

const text = (v: Uint8Array | undefined) => (v === undefined ? undefined : Buffer.from(v).toString());

describe('rollback protection (TPM NV counter)', () => {
  it('a restored older copy of the state directory is refused ROLLBACK_DETECTED, naming the TA', async () => {
    const dir = stateDir();
    const s1 = await services(dir);
    await s1.storage(identity()).put('pin-tries', Buffer.from('0'));
    await s1.close(); // clean close commits the epoch: the counter moves
    const copy = `${dir}-copy`;
    cpSync(dir, copy, { recursive: true });
    const s2 = await services(dir);
    expect(text(await s2.storage(identity()).get('pin-tries'))).toBe('0');
    await s2.storage(identity()).put('pin-tries', Buffer.from('3'));
    await s2.close();
    rmSync(dir, { recursive: true });
    cpSync(copy, dir, { recursive: true });
    rmSync(copy, { recursive: true });
    const s3 = await services(dir);
    try {
      const err = await s3.storage(identity()).get('pin-tries').catch((e) => e);
      expect(err).toMatchObject({ code: 'ROLLBACK_DETECTED', message: expect.stringContaining('TA "kv"') });
      expect(err.message).toMatch(/older copy of the state directory/);
      // Every store of that directory is refused, and stays refused (no write goes through).
      await expect(s3.storage(identity({ uuid: '00000000-0000-4000-8000-000000000001', name: 'other' })).put('x', Buffer.from('y'))).rejects.toMatchObject({ code: 'ROLLBACK_DETECTED', message: expect.stringContaining('TA "other"') });
    } finally {
      await s3.close();
    }
  });

  it('one store restored alone, a file swapped, or the manifest deleted/altered: refused', async () => {
    const dir = stateDir();
    const storeDir = join(dir, 'storage', taStorageDirName(identity()));
    const s1 = await services(dir);
    const st = s1.storage(identity());
    await st.put('a', Buffer.from('a1'));
    await st.put('b', Buffer.from('b1'));
    const oldA = readFileSync(join(storeDir, 'k_a'));
    await st.put('a', Buffer.from('a2'));
    // Swapped under the running store: the older file of the same key is not served.
    writeFileSync(join(storeDir, 'k_a'), oldA);
    await expect(st.get('a')).rejects.toMatchObject({ code: 'ROLLBACK_DETECTED', message: expect.stringContaining('key "a"') });
    await st.put('a', Buffer.from('a3'));
    await s1.close();
    // After the commit the store must match its digest exactly.
    const good = readFileSync(join(storeDir, 'k_a'));
    writeFileSync(join(storeDir, 'k_a'), oldA);
    let s = await services(dir);
    await expect(s.storage(identity()).get('b')).rejects.toMatchObject({ code: 'ROLLBACK_DETECTED', message: expect.stringContaining('differ from the last commit') });
    await s.close();
    writeFileSync(join(storeDir, 'k_a'), good);
    s = await services(dir);
    expect(text(await s.storage(identity()).get('a'))).toBe('a3');
    await s.close();
    // The manifest is MACed by a TPM-derived key and cannot be deleted while stores hold data.
    const manifest = join(dir, 'storage', FRESHNESS_MANIFEST);
    const m = readFileSync(manifest, 'utf8');
    writeFileSync(manifest, m.replace(/\\"counter\\":\\"(\d+)\\"/, (_x, n) => `\\"counter\\":\\"${Number(n) + 5}\\"`));
    s = await services(dir);
    await expect(s.storage(identity()).get('a')).rejects.toMatchObject({ code: 'SEAL_INTEGRITY', message: expect.stringContaining('freshness manifest') });
    await s.close();
    rmSync(manifest);
    s = await services(dir);
    await expect(s.storage(identity()).get('a')).rejects.toMatchObject({ code: 'ROLLBACK_DETECTED', message: expect.stringContaining('manifest') });
    await s.close();
    writeFileSync(manifest, m);
    s = await services(dir);
    expect(text(await s.storage(identity()).get('a'))).toBe('a3');
    await s.close();
  });

  it('a crash between the manifest write and the counter increment is finished on open, not reported', async () => {
    const dir = stateDir();
    const root = await openTpmRoot({ stateDir: dir, tcti: tpm.tcti });
    // Only the increment fails, after the manifest for the commit is on disk: what a crash there leaves.
    const failingCounterForTests: MonotonicCounter = { description: root.counter.description, read: () => root.counter.read(), increment: async () => { throw new Error('crash before increment'); } };
    const broken = createTrustServices({ rootOfTrust: { ...root, counter: failingCounterForTests, close: async () => undefined }, freshness: fast });
    await broken.storage(identity()).put('k', Buffer.from('v'));
    await expect(broken.freshness!.commit()).rejects.toThrow('crash before increment');
    const before = await root.counter.read();
    const s = createTrustServices({ rootOfTrust: root, freshness: fast });
    expect(text(await s.storage(identity()).get('k'))).toBe('v');
    expect(await root.counter.read()).toBe(before + 1n);
    expect(s.freshness!.incrementsMade).toBe(1);
    await s.close();
  });

  it('the wear bound defers commits; deferred epochs stay open and safe', async () => {
    const dir = stateDir();
    const s = await services(dir, undefined, { maxIncrementsPerHour: 2 });
    const st = s.storage(identity());
    const c0 = await s.rootOfTrust.counter!.read();
    for (let i = 0; i < 3; i++) {
      await st.put('k', Buffer.from(`v${i}`));
      await s.freshness!.commit();
    }
    expect(await s.rootOfTrust.counter!.read()).toBe(c0 + 2n);
    expect(s.freshness!.budget()).toBe(0);
    await s.close(); // budget spent: the epoch stays open on disk
    const again = await services(dir, undefined, { maxIncrementsPerHour: 2 });
    expect(text(await again.storage(identity()).get('k'))).toBe('v2');
    expect(await again.rootOfTrust.counter!.read()).toBe(c0 + 2n);
    await again.close();
  });

  it('a TPM reset mid-run (swtpm restart) loses nothing and keeps the counter', async () => {
    const dir = stateDir();
    const s = await services(dir);
    await s.storage(identity()).put('k', Buffer.from('before'));
    await s.freshness!.commit();
    const c = await s.rootOfTrust.counter!.read();
    await tpm.restart();
    expect(await s.rootOfTrust.counter!.read()).toBe(c);
    await s.storage(identity()).put('k', Buffer.from('after'));
    await s.close();
    const again = await services(dir);
    expect(text(await again.storage(identity()).get('k'))).toBe('after');
    await again.close();
  });
});

/** Run a writer fixture in its own process group (so a kill takes any tpm2-tools child with it, as a container stop would); kill -9 after `killAfterLines` progress lines. */
function runWriter(script: string, args: string[], killAfterLines: number | undefined): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, EE_TA_IDENTITY: JSON.stringify(identity()) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.on('data', (c: Buffer) => {
      out += c;
      // Kill after a random number of progress lines: somewhere inside a later write or commit.
      if (killAfterLines !== undefined && !killed && out.split('\n').length > killAfterLines) {
        killed = true;
        process.kill(-child.pid!, 'SIGKILL');
      }
    });
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') return reject(new Error(`writer exited ${code}: ${err}`));
      resolve(out.split('\n'));
    });
  });
}

describe('crash safety with epochs (kill -9 of real child processes at random points)', () => {
  const writer = fileURLToPath(new URL('./fixtures/tpm-crash-writer.mjs', import.meta.url));

  async function runChild(dir: string, start: number, count: number, killAfterLines: number | undefined): Promise<{ lines: string[]; finished: boolean }> {
    const lines = await runWriter(writer, [dir, tpm.tcti, String(start), String(count), '4'], killAfterLines);
    return { lines, finished: lines.includes('finished') };
  }

  it('every key holds its old or new value, and the store opens without a false rollback', async () => {
    const dir = stateDir();
    const acked = new Map<string, string>(); // key -> "v<seq>" | "none"
    let seq = 0;
    let kills = 0;
    const total = 120;
    const outcome = (s: number) => (s % 11 === 5 ? 'none' : `v${s}`);
    while (seq < total) {
      const killRound = kills < 4 && total - seq > 30;
      const count = killRound ? 40 : total - seq;
      const r = await runChild(dir, seq, count, killRound ? 6 + Math.floor(Math.random() * 60) : undefined);
      if (!r.finished) kills++;
      const done = r.lines.filter((l) => l.startsWith('done ')).map((l) => Number(l.slice(5)));
      const started = r.lines.filter((l) => l.startsWith('start ')).map((l) => Number(l.slice(6)));
      for (const s of done) acked.set(`k${s % 7}`, outcome(s));
      const expected = new Map<string, Set<string>>();
      for (const [k, o] of acked) expected.set(k, new Set([o]));
      for (const s of started.filter((x) => !done.includes(x))) {
        const k = `k${s % 7}`;
        (expected.get(k) ?? expected.set(k, new Set(['none'])).get(k)!).add(outcome(s));
      }
      // Open as the next process would: no ROLLBACK_DETECTED, each key old or new.
      const svc = await services(dir);
      const store = svc.storage(identity());
      for (const [k, ok] of expected) {
        const v = await store.get(k);
        const got = v === undefined ? 'none' : `v${JSON.parse(Buffer.from(v).toString()).seq}`;
        expect(ok.has(got), `key ${k}: got ${got}, expected one of ${[...ok]}`).toBe(true);
        acked.set(k, got);
      }
      await svc.close();
      expect(readdirSync(join(dir, 'storage', taStorageDirName(identity()))).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
      seq = Math.max(seq, ...started.map((s) => s + 1));
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    // Rollback is still detected after all that.
    const copy = `${dir}-old`;
    cpSync(dir, copy, { recursive: true });
    const s = await services(dir);
    await s.storage(identity()).put('k0', Buffer.from(JSON.stringify({ seq: 999 })));
    await s.close();
    rmSync(dir, { recursive: true });
    cpSync(copy, dir, { recursive: true });
    rmSync(copy, { recursive: true });
    const restored = await services(dir);
    await expect(restored.storage(identity()).get('k0')).rejects.toMatchObject({ code: 'ROLLBACK_DETECTED' });
    await restored.close();
  });
});

describe('crash safety of group-committed puts (kill -9 during bursts of concurrent puts)', () => {
  const writer = fileURLToPath(new URL('./fixtures/tpm-burst-writer.mjs', import.meta.url));

  const runBurst = (dir: string, start: number, rounds: number, killAfterLines: number | undefined) =>
    runWriter(writer, [dir, tpm.tcti, String(start), String(rounds)], killAfterLines);

  it('every acknowledged put is there after reopen, and no false ROLLBACK_DETECTED', async () => {
    const dir = stateDir();
    const seqOf = (v: Uint8Array | undefined) => (v === undefined ? -1 : (JSON.parse(Buffer.from(v).toString()) as { seq: number }).seq);
    let seq = 0;
    let kills = 0;
    const lastAcked = new Map<string, number>();
    for (let run = 0; run < 4; run++) {
      const lines = await runBurst(dir, seq, 6, run < 3 ? 20 + Math.floor(Math.random() * 120) : undefined);
      if (!lines.includes('finished')) kills++;
      const done = lines.filter((l) => l.startsWith('done ')).map((l) => Number(l.slice(5)));
      const started = lines.filter((l) => l.startsWith('start ')).map((l) => Number(l.slice(6)));
      for (const s of done) lastAcked.set(`b${s % 16}`, Math.max(lastAcked.get(`b${s % 16}`) ?? -1, s));
      const svc = await services(dir);
      const store = svc.storage(identity());
      for (let i = 0; i < 16; i++) {
        const k = `b${i}`;
        const got = seqOf(await store.get(k));
        // The acknowledged value, or a later put that was in flight when the process died.
        const acked = lastAcked.get(k) ?? -1;
        expect(got === acked || (got > acked && started.includes(got)), `key ${k}: got seq ${got}, last acknowledged ${acked}`).toBe(true);
        if (got >= 0) lastAcked.set(k, got);
      }
      await svc.close();
      seq = Math.max(seq, ...started.map((s) => s + 1));
    }
    expect(kills).toBeGreaterThanOrEqual(2);
  });
});
