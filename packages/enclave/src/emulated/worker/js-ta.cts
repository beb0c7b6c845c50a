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

/** Load SES from its script (with a V8 code cache when we have one) and lock the realm down. Returns a fresh cache if none was usable. */
export function lockdownRealm(prep: WorkerPrep): Uint8Array | undefined {
  const ses = prep.ses;
  if (!ses) throw codedError('INTERNAL', 'SES source missing for a JS TA');
  const source = readFileSync(ses.filename, 'utf8');
  const script = new vm.Script(source, { filename: ses.filename, ...(ses.cache ? { cachedData: Buffer.from(ses.cache.buffer, ses.cache.byteOffset, ses.cache.byteLength) } : {}) });
  script.runInThisContext();
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

export function loadJsTA(init: WorkerInit, base: ContextBase, log: ContextBase['log']): LoadedTA {
  const consoleShim = harden({
    log: (...a: unknown[]) => log.info(a.map(String).join(' ')),
    info: (...a: unknown[]) => log.info(a.map(String).join(' ')),
    debug: (...a: unknown[]) => log.debug(a.map(String).join(' ')),
    warn: (...a: unknown[]) => log.warn(a.map(String).join(' ')),
    error: (...a: unknown[]) => log.error(a.map(String).join(' ')),
  });
  const compartment = new Compartment({
    globals: { console: consoleShim, TextEncoder: harden(TextEncoder), TextDecoder: harden(TextDecoder) },
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
