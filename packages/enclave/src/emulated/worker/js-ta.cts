/**
 * JS TAs: SES lockdown once per worker, then the bundle (one CommonJS script) evaluated in a
 * fresh Compartment whose only endowments are hardened, capability-free helpers. Every
 * capability reaches the TA through the call context.
 */
import vm from 'node:vm';
import { readFileSync } from 'node:fs';
import type { TACaller, TADefinition, Value } from '@enclave-edge/ta-sdk';
import type { WorkerInit, WorkerPrep } from '../wire/protocol.cjs';
import type { ContextBase } from './context.cjs';
import { contextFor } from './context.cjs';
import type { LoadedTA, WorkerSession } from './loaded-ta.cjs';
import { codedError } from './rpc.cjs';

declare const harden: <T>(v: T) => T;
declare const lockdown: (opts: Record<string, string>) => void;
declare const Compartment: new (opts: { globals: Record<string, unknown>; __options__: true }) => { evaluate(src: string): unknown; globalThis: Record<string, unknown> };

const { preventExtensions, ownKeys, getOwnPropertyDescriptor, defineProperty } = Reflect;
const { hasOwn, create } = Object;

/**
 * Object.freeze as the spec defines it (SetIntegrityLevel "frozen": prevent extensions, then
 * make every own property non-configurable and every data property non-writable), step by
 * step. The result is the same frozen object (Object.isFrozen holds, the same traps run on a
 * proxy, the same TypeErrors), but V8 keeps its fast element stores for objects whose
 * prototypes were frozen this way, while native Object.freeze on a prototype sends every
 * typed-array store below it to the generic slow path. SES hardens with this one, so
 * lockdown's frozen intrinsics stay frozen and stores stay fast.
 */
export function specFreeze<T>(o: T): T {
  if ((typeof o !== 'object' || o === null) && typeof o !== 'function') return o;
  const obj = o as object;
  if (!preventExtensions(obj)) throw new TypeError('Cannot freeze: the object refused to be made non-extensible');
  const keys = ownKeys(obj);
  let isPrototype = false;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as PropertyKey;
    const d = getOwnPropertyDescriptor(obj, k);
    if (d === undefined) continue;
    if (k === 'constructor') isPrototype = true;
    const frozen = hasOwn(d, 'value') ? { configurable: false, writable: false } : { configurable: false };
    if (!defineProperty(obj, k, frozen)) throw new TypeError(`Cannot freeze: cannot redefine property ${String(k)}`);
  }
  // Redefining leaves a prototype in V8's slow dictionary mode (method calls on DataView & co.
  // no longer inline); being made a prototype again turns it back. No trap runs for it.
  if (isPrototype) create(obj);
  return o;
}

/** Load SES from its script (with a V8 code cache when we have one) and lock the realm down. Returns a fresh cache if none was usable. */
export function lockdownRealm(prep: WorkerPrep): Uint8Array | undefined {
  const ses = prep.ses;
  if (!ses) throw codedError('INTERNAL', 'SES source missing for a JS TA');
  const source = readFileSync(ses.filename, 'utf8');
  const script = new vm.Script(source, { filename: ses.filename, ...(ses.cache ? { cachedData: Buffer.from(ses.cache.buffer, ses.cache.byteOffset, ses.cache.byteLength) } : {}) });
  // SES takes Object.freeze once, when its script runs: hand it the spelled-out freeze, then put
  // the native one back before lockdown, so TA code sees the standard intrinsic.
  const nativeFreeze = Object.freeze;
  Object.freeze = specFreeze as typeof Object.freeze;
  try {
    script.runInThisContext();
  } finally {
    Object.freeze = nativeFreeze;
  }
  lockdown({
    // Debug TAs keep error stacks (mapped to TS lines by the host); others get none.
    errorTaming: prep.debug ? 'unsafe' : 'safe',
    stackFiltering: 'verbose',
    overrideTaming: 'moderate',
    consoleTaming: 'unsafe',
    // The host handles failures of the worker; SES must not install process-wide traps.
    errorTrapping: 'none',
    unhandledRejectionTrapping: 'none',
  });
  return !ses.cache || script.cachedDataRejected ? new Uint8Array(script.createCachedData()) : undefined;
}

/**
 * The bundle's source map as a data URL the debugger reads, shifted by the wrapper's lines so
 * breakpoints in the TypeScript land where they are set. None (or a broken one): no mapping.
 */
function inlineSourceMap(map: Uint8Array | undefined): string {
  if (!map) return '';
  try {
    const m = JSON.parse(new TextDecoder().decode(map)) as { mappings?: unknown };
    if (typeof m.mappings !== 'string') return '';
    m.mappings = ';'.repeat(WRAPPER_LINES) + m.mappings;
    return `\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(m)).toString('base64')}`;
  } catch {
    return '';
  }
}

export function taSourceUrl(name: string): string {
  return `ta:///${name}.js`;
}

/** Lines the wrapper adds before the bundle's first line (for source-map mapping). */
export const WRAPPER_LINES = 1;

/**
 * Make every global the compartment starts with (intrinsics, endowments, globalThis, Function,
 * Compartment) a non-writable, non-configurable data property. SES builds its evaluator on the
 * first evaluate and binds exactly such properties as `const`s inside its `with` scopes, so TA
 * code resolves them once instead of through the scope objects on every reference. The values
 * are the ones the scope lookup would have returned and can no longer change, so reads are
 * unchanged; writing or deleting one of them now throws. New globals can still be added.
 */
function fixGlobalBindings(global: Record<string, unknown>): void {
  for (const name of Object.getOwnPropertyNames(global)) {
    const d = Object.getOwnPropertyDescriptor(global, name);
    if (d && d.configurable && 'value' in d) Object.defineProperty(global, name, { value: d.value, writable: false, configurable: false });
  }
}

/**
 * The float typed arrays, which SES keeps on the start compartment only (they show NaN bit
 * patterns). A TA already reads those bits through DataView's getFloat64/getUint8, and it is
 * alone in its realm, so endowing them adds no reach. lockdown() has hardened them.
 */
function floatArrays(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of ['Float16Array', 'Float32Array', 'Float64Array']) {
    const ctor = (globalThis as Record<string, unknown>)[name];
    if (typeof ctor === 'function') out[name] = harden(ctor);
  }
  return out;
}

export function loadJsTA(init: WorkerInit, base: ContextBase, log: ContextBase['log']): LoadedTA {
  const consoleShim = harden({
    log: (...a: unknown[]) => log.info(a.map(String).join(' ')),
    info: (...a: unknown[]) => log.info(a.map(String).join(' ')),
    debug: (...a: unknown[]) => log.debug(a.map(String).join(' ')),
    warn: (...a: unknown[]) => log.warn(a.map(String).join(' ')),
    error: (...a: unknown[]) => log.error(a.map(String).join(' ')),
  });
  const compartment = new Compartment({
    globals: { console: consoleShim, TextEncoder: harden(TextEncoder), TextDecoder: harden(TextDecoder), ...floatArrays() },
    __options__: true,
  });
  fixGlobalBindings(compartment.globalThis);
  const source = new TextDecoder('utf-8', { fatal: true }).decode(init.code);
  let factory: unknown;
  try {
    // Inspected: `debugger;` on the wrapper line (line numbers unchanged) is where a waiting debugger first stops.
    const head = init.inspectWait ? '(function (module, exports) {debugger;' : '(function (module, exports) {';
    factory = compartment.evaluate(`${head}\n${source}\n})\n//# sourceURL=${taSourceUrl(init.ta.name)}${init.inspect ? inlineSourceMap(init.sourceMap) : ''}`);
  } catch (err) {
    throw codedError('BAD_FORMAT', `TA code was refused by the compartment: ${(err as Error).message}`);
  }
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  try {
    (factory as (m: unknown, e: unknown) => void)(mod, mod.exports);
  } catch (err) {
    throw codedError('TA_ERROR', `TA module threw while loading: ${(err as Error)?.message ?? String(err)}`);
  }
  const exp = mod.exports as { default?: unknown };
  const def = (exp && typeof exp === 'object' && exp.default !== undefined ? exp.default : exp) as TADefinition;
  if (!def || typeof def !== 'object' || !def.commands || typeof def.commands !== 'object') {
    throw codedError('BAD_FORMAT', 'the TA module does not export defineTA({ commands }) as module.exports or module.exports.default');
  }
  const commands = def.commands;
  const hook = (name: 'onCreate' | 'onOpenSession' | 'onCloseSession' | 'onDestroy') => {
    const h = def[name];
    return typeof h === 'function' ? (h as (...a: unknown[]) => unknown) : undefined;
  };
  const onCreate = hook('onCreate');
  const onOpen = hook('onOpenSession');
  const onClose = hook('onCloseSession');
  const onDestroy = hook('onDestroy');
  const noSession = contextFor(base, undefined);

  return {
    async create() {
      if (onCreate) await onCreate.call(def, noSession);
    },
    open(session: WorkerSession, params: Value) {
      return onOpen ? Promise.resolve(onOpen.call(def, contextFor(base, session), params)) : undefined;
    },
    close(session: WorkerSession) {
      return onClose ? Promise.resolve(onClose.call(def, contextFor(base, session))) : undefined;
    },
    invoke(session: WorkerSession, command: string, params: Value, caller: TACaller) {
      // own properties only: "constructor", "__proto__" and friends are not commands
      const handler = Object.hasOwn(commands, command) ? (commands as Record<string, unknown>)[command] : undefined;
      if (typeof handler !== 'function') throw codedError('ITEM_NOT_FOUND', `TA "${init.ta.name}" has no command "${command}"`);
      return handler.call(commands, contextFor(base, session, caller), params);
    },
    async destroy() {
      if (onDestroy) await onDestroy.call(def, noSession);
    },
  };
}
