/**
 * TA sources (one CommonJS script each, as esbuild emits) used by the conformance suite and
 * the package's tests. Kept as plain JS so the suite needs no build step.
 */

/** A TA exercising every part of the context and the lifecycle hooks. */
export const KITCHEN_SINK_TA = String.raw`
'use strict';
let created = 0;
let perInstance = 0;
const instanceTag = {};
module.exports = { __esModule: true, default: {
  onCreate(ctx) { created++; },
  onOpenSession(ctx, params) {
    if (params && params.refuse) { const e = new Error('session refused by the TA'); e.code = 'ACCESS_DENIED'; throw e; }
    ctx.session.state.opened = params === undefined ? null : params;
  },
  onCloseSession(ctx) { ctx.log.info('session closing', { session: ctx.session.id }); },
  commands: {
    echo: (ctx, p) => p,
    info: (ctx) => ({ ta: { ...ctx.ta }, session: ctx.session ? ctx.session.id : null, opened: ctx.session ? ctx.session.state.opened ?? null : null, created }),
    count: (ctx) => { ctx.session.state.n = (ctx.session.state.n || 0) + 1; return ctx.session.state.n; },
    instanceCount: () => ++perInstance,
    throws: (ctx, p) => { throw new Error((p && p.message) || 'boom'); },
    throwsCoded: (ctx, p) => { const e = new Error('coded failure'); e.code = p.code; throw e; },
    throwsString: () => { throw 'a plain string'; },
    returnsFunction: () => () => 1,
    returnsUndefined: () => undefined,
    returnsBig: (ctx, p) => 'x'.repeat(p.n),
    mutateParams: (ctx, p) => { p.changed = true; return p; },
    async wait(ctx, p) { let x = 0; for (let i = 0; i < (p && p.spins || 0); i++) x += i; await null; return x; },
    spin: () => { for (;;) {} },
    hang: () => new Promise(() => {}),
    allocate: (ctx, p) => { const keep = []; for (;;) keep.push(new Array(1024 * 1024).fill(keep.length)); },
    recurse: () => { const f = (n) => f(n + 1) + 1; return f(0); },
    async seal(ctx, p) { return ctx.seal(p.data, { policy: p.policy, context: p.context }); },
    async unseal(ctx, p) { return ctx.unseal(p.blob, { context: p.context }); },
    async storagePut(ctx, p) { await ctx.storage.put(p.key, p.value); return true; },
    async storageGet(ctx, p) { return (await ctx.storage.get(p.key)) ?? null; },
    async storageList(ctx, p) { return ctx.storage.list(p && p.prefix); },
    async storageDelete(ctx, p) { return ctx.storage.delete(p.key); },
    async attest(ctx, p) { return ctx.attest({ nonce: p.nonce, claims: p.claims }); },
    async host(ctx, p) { return ctx.host.call(p.name, p.args); },
    async hostCaught(ctx, p) { try { await ctx.host.call(p.name, p.args); return 'allowed'; } catch (e) { return e.code + ': ' + e.message; } },
    random: (ctx, p) => ctx.random(p.n),
    crypto: (ctx) => {
      const kp = ctx.crypto.generateKeyPair('ES256');
      const sig = ctx.crypto.sign('ES256', kp.privateKey, 'hello');
      return {
        sha: ctx.crypto.sha256('abc'),
        hmac: ctx.crypto.hmacSha256(new Uint8Array([1, 2, 3]), 'data'),
        sigLen: sig.length,
        ok: ctx.crypto.verify('ES256', kp.publicKey, 'hello', sig),
        bad: ctx.crypto.verify('ES256', kp.publicKey, 'hellO', sig),
        jwk: kp.publicKey,
      };
    },
    log: (ctx, p) => { ctx.log[p.level](p.message, p.fields); console.log('via console', 42); return null; },
    time: (ctx) => ctx.untrustedTime.now(),
    setGlobal: (ctx, p) => { globalThis.sharedSecret = p.value; return true; },
    getGlobal: () => globalThis.sharedSecret ?? null,
  },
} };
`;

/** Probes: each command tries to reach something a TA must not reach and reports what happened. */
export const ISOLATION_TA = String.raw`
'use strict';
const attempt = (f) => { try { const v = f(); return { reached: true, value: typeof v === 'object' && v !== null ? Object.prototype.toString.call(v) : String(v) }; } catch (e) { return { reached: false, error: String(e && e.message || e) }; } };
const names = ['process', 'require', 'module', 'Buffer', 'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'queueMicrotask', 'fetch', 'XMLHttpRequest', 'WebSocket', 'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'global', 'Deno', 'Bun', 'performance', 'structuredClone', 'MessageChannel', 'BroadcastChannel', 'Worker', 'importScripts', '__dirname', '__filename'];
module.exports = { commands: {
  globals: () => { const out = {}; for (const n of names) out[n] = typeof globalThis[n]; return out; },
  ambientViaFunction: () => attempt(() => Function('return typeof process + "/" + typeof require')()),
  globalThisViaFunction: () => attempt(() => { const g = Function('return this')(); return g === undefined ? 'undefined' : typeof g.process; }),
  ctxConstructorEscape: (ctx) => attempt(() => ctx.constructor.constructor('return process')()),
  methodConstructorEscape: (ctx) => attempt(() => ctx.log.info.constructor('return process')()),
  asyncConstructorEscape: () => attempt(() => (async () => {}).constructor('return process')),
  generatorConstructorEscape: () => attempt(() => (function* () {}).constructor('return process')),
  asyncGeneratorConstructorEscape: () => attempt(() => (async function* () {}).constructor('return process')),
  promiseThenEscape: (ctx) => attempt(() => ctx.seal(new Uint8Array(1)).constructor.constructor('return process')()),
  errorConstructorEscape: () => { try { null.x; } catch (e) { return attempt(() => e.constructor.constructor('return process')()); } },
  protoPollution: () => attempt(() => { ({}).__proto__.polluted = 'yes'; return ({}).polluted; }),
  objectPrototypeReplace: () => attempt(() => { Object.prototype.toString = () => 'pwned'; return 'replaced'; }),
  arrayPrototypePatch: () => attempt(() => { Array.prototype.push = function () { return 'pwned'; }; return 'patched'; }),
  promisePrototypePatch: () => attempt(() => { Promise.prototype.then = function () {}; return 'patched'; }),
  jsonPatch: () => attempt(() => { JSON.parse = () => 'pwned'; return 'patched'; }),
  ctxMutation: (ctx) => attempt(() => { ctx.seal = () => 'mine'; return 'mutated'; }),
  ctxTaMutation: (ctx) => attempt(() => { ctx.ta.name = 'someone-else'; return ctx.ta.name; }),
  ctxProtoSwap: (ctx) => attempt(() => { Object.setPrototypeOf(ctx.log, {}); return 'swapped'; }),
  ctxKeys: (ctx) => Object.keys(ctx).sort(),
  pollutedCheck: () => ({ polluted: ({}).polluted ?? null, toString: Object.prototype.toString.call([]) }),
  dateNow: () => attempt(() => Date.now()),
  newDate: () => attempt(() => new Date().getTime()),
  mathRandom: () => attempt(() => Math.random()),
  dynamicImport: () => attempt(() => Function('return imp' + 'ort("node:fs")')()),
  evalProcess: () => attempt(() => (0, eval)('typeof process === "undefined" ? (() => { throw new Error("no process") })() : process')),
  callerWalk: (ctx) => attempt(() => ctx.log.info.caller),
  prepareStackTrace: () => attempt(() => { Error.prepareStackTrace = (e, frames) => frames; const s = new Error('x').stack; return Array.isArray(s) ? 'callsites' : typeof s; }),
  captureStackTrace: () => attempt(() => { const o = {}; Error.captureStackTrace(o); return typeof o.stack; }),
  stackContents: () => { try { throw new Error('probe'); } catch (e) { return String(e.stack || ''); } },
  hostFunctionSource: (ctx) => attempt(() => Function.prototype.toString.call(ctx.seal)),
  symbolRegistry: () => attempt(() => Symbol.for('nodejs.util.inspect.custom').toString()),
  weakRefGc: () => typeof globalThis.gc,
} };
`;
