/**
 * How free identifiers resolve inside a JS TA's compartment: the globals it starts with are
 * bound once (fixed, so they cannot be swapped), everything else behaves as SES's strict
 * scope does. Real worker, real SES.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { EmulatedBackend, type EmulatedEnclave } from '@enclave-edge/enclave';
import { makeTestBundle } from '@enclave-edge/enclave/testing';

const SCOPE_TA = String.raw`
'use strict';
const probe = (f) => { try { return f(); } catch (e) { return e.name + ': ' + e.message; } };
const hash = (n) => { let h = 2166136261; for (let i = 0; i < n; i++) h = Math.imul(h ^ (i & 255), 16777619); return h >>> 0; };
const hashHoisted = (n) => { const imul = Math.imul; let h = 2166136261; for (let i = 0; i < n; i++) h = imul(h ^ (i & 255), 16777619); return h >>> 0; };
module.exports = { commands: {
  undeclaredWrite: () => probe(() => { undeclaredName = 1; return 'assigned'; }),
  undeclaredRead: () => probe(() => String(notDeclaredAnywhere)),
  typeofMissing: () => [typeof process, typeof require, typeof notDeclaredAnywhere, typeof Buffer],
  globalThisShape: () => ({
    self: globalThis.globalThis === globalThis,
    math: globalThis.Math === Math,
    encoder: typeof globalThis.TextEncoder,
    frozen: Object.isFrozen(globalThis),
  }),
  shadow: () => { const Math = { imul: () => 42 }; const Uint8Array = 'mine'; return [Math.imul(2, 3), Uint8Array]; },
  newGlobal: (ctx, p) => { globalThis.added = p; return [added, globalThis.added]; },
  swapBuiltin: () => [
    probe(() => { globalThis.Math = { imul: () => 0 }; return 'swapped'; }),
    probe(() => { Math = 1; return 'swapped'; }),
    probe(() => delete globalThis.Uint8Array),
    probe(() => { Object.defineProperty(globalThis, 'JSON', { value: 1 }); return 'redefined'; }),
    Math.imul(3, 5),
    typeof Uint8Array,
  ],
  mutateIntrinsic: () => probe(() => { Array.prototype.push = () => 0; return 'mutated'; }),
  escape: () => [
    probe(() => Function('return typeof process')()),
    probe(() => (0, eval)('typeof require')),
    probe(() => globalThis.Function('return this')() === undefined),
  ],
  floatArrays: () => {
    const f64 = new Float64Array([1.5, -2.25]);
    const f32 = Float32Array.from([0.5]);
    return {
      values: [f64[0] + f64[1], f32[0], new Float64Array(new Uint8Array(f64.buffer).slice().buffer)[1]],
      shared: Object.getPrototypeOf(Float64Array.prototype) === Object.getPrototypeOf(Uint8Array.prototype),
      frozen: [Float64Array, Float64Array.prototype, Float32Array, Float32Array.prototype].every(Object.isFrozen),
      mutate: probe(() => { Float64Array.prototype.fill = () => 0; return 'mutated'; }),
      swap: probe(() => { Float64Array = Array; return 'swapped'; }),
      stillMissing: [typeof SharedArrayBuffer, typeof Atomics, typeof WeakRef, typeof FinalizationRegistry],
    };
  },
  hardened: () => {
    const o = harden({ a: { b: [1] } });
    return [Object.isFrozen(o), Object.isFrozen(o.a), Object.isFrozen(o.a.b), Function.prototype.toString.call(Object.freeze).includes('[native code]'), probe(() => { o.a.b.push(2); return 'pushed'; })];
  },
  stores: (ctx, p) => {
    const a = new Uint32Array(1024);
    let t0 = ctx.untrustedTime.now();
    for (let i = 0; i < p.n; i++) a[i & 1023] = i;
    const store = ctx.untrustedTime.now() - t0;
    let s = 0;
    t0 = ctx.untrustedTime.now();
    for (let i = 0; i < p.n; i++) s = (s + a[i & 1023]) | 0;
    const load = ctx.untrustedTime.now() - t0;
    const view = new DataView(a.buffer);
    t0 = ctx.untrustedTime.now();
    for (let i = 0; i < p.n; i++) s = (s + view.getUint32((i & 1023) * 4, true)) | 0;
    return { store, load, view: ctx.untrustedTime.now() - t0, s };
  },
  hash: (ctx, p) => { const t0 = ctx.untrustedTime.now(); const h = hash(p.n); return { h, ms: ctx.untrustedTime.now() - t0 }; },
  hashHoisted: (ctx, p) => { const t0 = ctx.untrustedTime.now(); const h = hashHoisted(p.n); return { h, ms: ctx.untrustedTime.now() - t0 }; },
}};`;

const backend = new EmulatedBackend();
let e: EmulatedEnclave;
let other: EmulatedEnclave;
beforeAll(async () => {
  e = await backend.create(makeTestBundle(SCOPE_TA, { name: 'scope-ta' }));
  other = await backend.create(makeTestBundle(SCOPE_TA, { name: 'scope-other' }));
});
afterAll(async () => {
  await Promise.all([e?.destroy(), other?.destroy()]);
});

describe('what keeps working', () => {
  it('assigning to an undeclared name is a ReferenceError (strict mode), reading one gives undefined as in SES', async () => {
    expect(await e.invoke(undefined, 'undeclaredWrite')).toBe('ReferenceError: undeclaredName is not defined');
    expect(await e.invoke(undefined, 'undeclaredRead')).toBe('undefined');
  });

  it('typeof of missing globals is "undefined"', async () => {
    expect(await e.invoke(undefined, 'typeofMissing')).toEqual(['undefined', 'undefined', 'undefined', 'undefined']);
  });

  it('globalThis is the compartment global, holds the same bindings, and stays extensible', async () => {
    expect(await e.invoke(undefined, 'globalThisShape')).toEqual({ self: true, math: true, encoder: 'function', frozen: false });
    expect(await e.invoke(undefined, 'newGlobal', 'v1')).toEqual(['v1', 'v1']);
    expect(await e.invoke(undefined, 'newGlobal', 'v2')).toEqual(['v2', 'v2']);
  });

  it('the float typed arrays are there, share the frozen %TypedArray% of the others, and cannot be changed', async () => {
    const r = (await e.invoke(undefined, 'floatArrays')) as Record<string, unknown>;
    expect(r.values).toEqual([-0.75, 0.5, -2.25]);
    expect(r.shared).toBe(true);
    expect(r.frozen).toBe(true);
    expect(r.mutate).toBe('TypeError: Cannot define property fill, object is not extensible');
    expect(r.swap).toBe('TypeError: Assignment to constant variable.');
    // endowing them widened nothing else: shared memory and GC observation stay out
    expect(r.stillMissing).toEqual(['undefined', 'undefined', 'undefined', 'undefined']);
  });

  it('local declarations shadow globals', async () => {
    expect(await e.invoke(undefined, 'shadow')).toEqual([42, 'mine']);
  });
});

describe('what keeps failing', () => {
  it('the built-in global bindings cannot be swapped, deleted or redefined, and keep their values', async () => {
    // its own enclave: if a swap ever succeeded it must not disturb the other tests
    const swapper = await backend.create(makeTestBundle(SCOPE_TA, { name: 'scope-swapper' }));
    const [viaGlobal, bare, del, redefine, imul, u8] = (await swapper.invoke(undefined, 'swapBuiltin').finally(() => swapper.destroy())) as string[];
    expect(viaGlobal).toMatch(/^TypeError: .*read only property 'Math'/);
    expect(bare).toBe('TypeError: Assignment to constant variable.');
    expect(del).toMatch(/^TypeError: Cannot delete property 'Uint8Array'/);
    expect(redefine).toMatch(/^TypeError: Cannot redefine property: JSON/);
    expect([imul, u8]).toEqual([15, 'function']);
  });

  it('intrinsics stay frozen, Function and indirect eval stay confined', async () => {
    expect(await e.invoke(undefined, 'mutateIntrinsic')).toMatch(/^TypeError: .*read only property 'push'/);
    expect(await e.invoke(undefined, 'escape')).toEqual(['undefined', 'undefined', true]);
  });

  it('a global added by one TA is invisible to another', async () => {
    await e.invoke(undefined, 'newGlobal', 'secret');
    expect(await other.invoke(undefined, 'typeofMissing')).toEqual(['undefined', 'undefined', 'undefined', 'undefined']);
    expect(await other.invoke(undefined, 'newGlobal', 'own')).toEqual(['own', 'own']);
  });
});

describe('hardening', () => {
  it('harden still freezes deeply and TA code sees the native Object.freeze', async () => {
    expect(await e.invoke(undefined, 'hardened')).toEqual([true, true, true, true, 'TypeError: Cannot add property 1, object is not extensible']);
  });

  it('typed-array stores and DataView reads are not pathologically slower than typed-array loads under the frozen prototypes', async () => {
    // Natively frozen prototypes cost ~40x on every store here; frozen step by step ~1x. Generous
    // bound on the best of 5 to 30 runs: more runs only while a loaded machine keeps it outside
    // (preemption makes a run slower; five loads all inflated 8x is what it would take to hide it).
    const best = { store: Infinity, load: Infinity, view: Infinity };
    const within = () => best.store <= 5 * Math.max(best.load, 2) && best.view <= 5 * Math.max(best.load, 2);
    for (let i = 0; i < 30 && (i < 5 || !within()); i++) {
      const r = (await e.invoke(undefined, 'stores', { n: 5_000_000 })) as { store: number; load: number; view: number };
      best.store = Math.min(best.store, r.store);
      best.load = Math.min(best.load, r.load);
      best.view = Math.min(best.view, r.view);
    }
    expect(best.store).toBeLessThanOrEqual(5 * Math.max(best.load, 2));
    // a DataView method call on a prototype left in V8's dictionary mode costs ~10x; restored ~1x
    expect(best.view).toBeLessThanOrEqual(5 * Math.max(best.load, 2));
  });
});

describe('globals are bound once', () => {
  it('a hot loop over a global is not pathologically slower than the same loop with the global hoisted', async () => {
    // Resolving `Math` through the scope objects costs ~100x here; bound once it is ~1x. The bound
    // is generous and the best of 5 to 30 alternating runs is compared (more only while a loaded
    // machine keeps it outside), so load cannot flake it.
    const n = 2_000_000;
    const best = { global: Infinity, hoisted: Infinity };
    for (let i = 0; i < 30 && (i < 5 || !(best.global <= 5 * Math.max(best.hoisted, 2))); i++) {
      const g = (await e.invoke(undefined, 'hash', { n })) as { h: number; ms: number };
      const h = (await e.invoke(undefined, 'hashHoisted', { n })) as { h: number; ms: number };
      expect(g.h).toBe(h.h);
      best.global = Math.min(best.global, g.ms);
      best.hoisted = Math.min(best.hoisted, h.ms);
    }
    expect(best.global).toBeLessThanOrEqual(5 * Math.max(best.hoisted, 2));
  });
});
