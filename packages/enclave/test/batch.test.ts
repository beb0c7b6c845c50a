/**
 * invokeBatch: a shared-instance TA gets a batch as one message to its worker, and each item is
 * answered as invoke() answers it alone — over a TA process's channel and over a thread's port.
 */
import { describe, it, expect, afterAll, vi } from 'vitest';
import { EmulatedBackend, type BatchItemOutcome, type EmulatedEnclave, type EnclaveCreateOptions } from '@enclave-edge/enclave';
import { makeTestBundle, type ManifestOverrides } from '@enclave-edge/enclave/testing';
import type { Value } from '@enclave-edge/ta-sdk';

const TA = `
let n = 0;
module.exports = { commands: {
  work: async (ctx, p) => {
    if (p.throw) throw new Error('bad item ' + p.i);
    if (p.hang) for (;;) {}
    if (p.slow) await ctx.host.call('slow', null);
    if (p.big) return 'x'.repeat(p.big);
    n++;
    return { i: p.i, n };
  },
  secret: () => 'shh',
  count: () => n,
} };`;

const MANIFEST: ManifestOverrides = { name: 'batcher', hostCalls: ['slow'], confidentialCommands: ['secret'] };

/** An outcome as a caller compares it: the value, or the error's code and message. */
function seen(o: BatchItemOutcome): unknown {
  if (o.ok) return { ok: true, value: o.value };
  const e = o.error as Error & { code?: string };
  return { ok: false, code: e.code, message: e.message };
}

async function singly(e: EmulatedEnclave, command: string, params: Array<Value | undefined>): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const p of params) {
    out.push(seen(await e.invoke(undefined, command, p).then((value): BatchItemOutcome => ({ ok: true, value }), (error: Error): BatchItemOutcome => ({ ok: false, error }))));
  }
  return out;
}

describe.each(['process', 'thread'] as const)('invokeBatch (%s isolation)', (isolation) => {
  const backend = new EmulatedBackend({ isolation, restart: { backoffMs: 5, backoffMaxMs: 20 } });
  const live: EmulatedEnclave[] = [];
  afterAll(async () => {
    await Promise.all(live.map((e) => e.destroy()));
    await backend.destroy();
  });
  const create = async (m: ManifestOverrides = {}, o: EnclaveCreateOptions = {}) => {
    const e = await backend.create(makeTestBundle(TA, { ...MANIFEST, ...m }), { maxPayloadBytes: 4096, hostCalls: { slow: () => null }, ...o });
    live.push(e);
    return e;
  };

  it('answers every item as a single call would: values, a throw, over-limit params and result', async () => {
    const items: Array<Value | undefined> = [{ i: 1 }, { i: 2, throw: true }, { i: 3, pad: 'y'.repeat(5000) }, { i: 4, big: 5000 }, { i: 5 }, undefined, { i: 7, slow: true }];
    const [a, b] = await Promise.all([create(), create()]);
    const one = await singly(a, 'work', items);
    const batch = (await b.invokeBatch('work', items)).map(seen);
    expect(batch).toEqual(one);
    expect(one[0]).toEqual({ ok: true, value: { i: 1, n: 1 } });
    expect(one[1]).toMatchObject({ ok: false, code: 'TA_ERROR', message: expect.stringContaining('bad item 2') });
    expect(one[2]).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
    expect(one[3]).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
    expect(one[4]).toEqual({ ok: true, value: { i: 5, n: 2 } });
    expect(one[5]).toMatchObject({ ok: false, code: 'TA_ERROR' }); // null params: the TA's own TypeError
    expect(one[6]).toEqual({ ok: true, value: { i: 7, n: 3 } });
    // The items ran in order, once each; the bad ones did not stop the rest.
    expect(await b.invoke(undefined, 'count')).toBe(3);
    expect(b.stats()).toMatchObject({ calls: 6 + 1, errors: 3 });
  });

  it('refuses a confidential-only command per item with ACCESS_DENIED, as a single call', async () => {
    const e = await create();
    const single = await singly(e, 'secret', [null]);
    const batch = (await e.invokeBatch('secret', [null, { x: 1 }])).map(seen);
    expect(single[0]).toMatchObject({ ok: false, code: 'ACCESS_DENIED' });
    expect(batch).toEqual([single[0], single[0]]);
  });

  it('an unknown command or a bad caller timeout fails as invoke does', async () => {
    const e = await create();
    expect((await e.invokeBatch('', [1])).map(seen)).toEqual(await singly(e, '', [1]));
    await expect(e.invokeBatch('work', [{ i: 1 }], { timeoutMs: -1 })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('a hanging item ends the batch by callTimeoutMs: items answered before it keep their results, it and the rest get TIMEOUT, the TA serves again', async () => {
    // The slow item's host call answers after 20 ms, so its answer leaves before the next item starts (batchReportMs).
    const e = await create({ limits: { callTimeoutMs: 300 } }, { hostCalls: { slow: () => new Promise((r) => setTimeout(() => r(null), 20)) } });
    const out = (await e.invokeBatch('work', [{ i: 1 }, { i: 2, slow: true }, { i: 3, hang: true }, { i: 4 }])).map(seen);
    expect(out.slice(0, 2)).toEqual([{ ok: true, value: { i: 1, n: 1 } }, { ok: true, value: { i: 2, n: 2 } }]);
    for (const o of out.slice(2)) expect(o).toMatchObject({ ok: false, code: 'TIMEOUT', message: expect.stringContaining('the instance was terminated') });
    // A single call that hangs ends the same way; the restarted instance answers.
    await expect(e.invoke(undefined, 'work', { hang: true })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await vi.waitUntil(() => e.stats().restarts >= 2, { timeout: 10_000, interval: 10 });
    expect(await e.invokeBatch('work', [{ i: 9 }])).toEqual([{ ok: true, value: { i: 9, n: 1 } }]);
  });

  it("the caller's own timeout ends its wait per item, not the TA's calls", async () => {
    let release!: () => void;
    const gate = new Promise<null>((r) => (release = () => r(null)));
    let asked = 0;
    const e = await create({}, { hostCalls: { slow: () => (asked++, gate) } });
    const waiting = e.invokeBatch('work', [{ i: 1 }, { i: 2, slow: true }], { timeoutMs: 50 });
    const out = (await waiting).map(seen);
    expect(out[1]).toMatchObject({ ok: false, code: 'TIMEOUT', message: expect.stringContaining("the caller's 50 ms") });
    expect(asked).toBe(1);
    expect(out[0]).toEqual({ ok: true, value: { i: 1, n: 1 } });
    release();
    // The TA's call went on and finished after the caller stopped waiting.
    await vi.waitUntil(async () => (await e.invoke(undefined, 'count')) === 2, { timeout: 10_000, interval: 10 });
  });

  it('an instance-per-session TA answers a batch item by item', async () => {
    const e = await create({ session: { singleInstance: false, multiSession: false, keepAlive: false } });
    const out = (await e.invokeBatch('work', [{ i: 1 }, { i: 2, throw: true }])).map(seen);
    expect(out).toEqual([{ ok: true, value: { i: 1, n: 1 } }, { ok: false, code: 'TA_ERROR', message: expect.stringContaining('bad item 2') }]);
  });
});
