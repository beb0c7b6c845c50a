/**
 * Run a built TA in the test process against `fakeContextForTests` — a quick unit-test loop for
 * TA authors. NOT an enclave: no isolation, no limits, fake sealing and evidence. Integration
 * tests should use the emulated enclave (@enclave-edge/enclave) instead.
 */
import { EnclaveEdgeError, isErrorCode } from '@enclave-edge/errors';
import { decodeBundle, computeMeasurement, type TAManifest } from '@enclave-edge/bundle';
import type { TADefinition, Value } from '@enclave-edge/ta-sdk';
import { Wasm, type WasmMemory } from './wasm-api.js';
import { fakeContextForTests, type FakeContextForTests, type FakeContextForTestsOptions } from './fake-context-for-tests.js';

export interface TAForTests {
  manifest: TAManifest;
  measurement: string;
  context: FakeContextForTests;
  invoke(command: string, params?: Value): Promise<Value>;
  openSession(params?: Value): Promise<void>;
  closeSession(): Promise<void>;
  destroy(): Promise<void>;
}

function asError(e: unknown): EnclaveEdgeError {
  const code = (e as { code?: unknown } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  return new EnclaveEdgeError(isErrorCode(code) && ['BAD_PARAMETERS', 'ITEM_NOT_FOUND', 'ACCESS_DENIED', 'CONFLICT', 'TA_ERROR'].includes(code) ? code : 'TA_ERROR', message);
}

function loadJs(code: Uint8Array): TADefinition {
  const module = { exports: {} as Record<string, unknown> };
  // Test-only evaluation in this realm; the enclave evaluates the same script in an SES Compartment.
  new Function('module', 'exports', new TextDecoder().decode(code))(module, module.exports);
  const def = (module.exports.default ?? module.exports) as TADefinition;
  if (!def || typeof def !== 'object' || typeof def.commands !== 'object') throw new EnclaveEdgeError('BAD_FORMAT', 'the TA script does not export a defineTA({...}) definition');
  return def;
}

async function loadWasm(code: Uint8Array, ctx: FakeContextForTests): Promise<TADefinition> {
  let memory: WasmMemory | undefined;
  let result: Uint8Array | undefined;
  const view = (p: number, n: number) => new Uint8Array(memory!.buffer, p, n);
  const text = (p: number, n: number) => new TextDecoder().decode(view(p, n));
  const levels = ['debug', 'info', 'warn', 'error'] as const;
  const { instance } = await Wasm.instantiate(code, {
    ta: {
      result: (p: number, n: number) => void (result = view(p, n).slice()),
      log: (l: number, p: number, n: number) => ctx.log[levels[l] ?? 'info'](text(p, n)),
      random: (p: number, n: number) => void view(p, n).set(ctx.random(n)),
      untrusted_time_ms: () => ctx.untrustedTime.now(),
    },
    env: { abort: (_m: number, _f: number, line: number, col: number) => { throw new EnclaveEdgeError('TA_ERROR', `aborted at ${line}:${col}`); } },
  });
  const ex = instance.exports as unknown as { memory: WasmMemory; ta_alloc(n: number): number; ta_invoke(a: number, b: number, c: number, d: number): number; ta_create?: () => void };
  memory = ex.memory;
  ex.ta_create?.();
  const invoke = (command: string, params: Value): Value => {
    const cmd = new TextEncoder().encode(command);
    const par = new TextEncoder().encode(JSON.stringify(params ?? null));
    const ptr = ex.ta_alloc(cmd.byteLength + par.byteLength);
    view(ptr, cmd.byteLength).set(cmd);
    view(ptr + cmd.byteLength, par.byteLength).set(par);
    result = undefined;
    const rc = ex.ta_invoke(ptr, cmd.byteLength, ptr + cmd.byteLength, par.byteLength);
    const out = result ? new TextDecoder().decode(result) : undefined;
    if (rc === 0) return out === undefined ? null : (JSON.parse(out) as Value);
    throw new EnclaveEdgeError(rc === 1 ? 'BAD_PARAMETERS' : rc === 2 ? 'ITEM_NOT_FOUND' : 'TA_ERROR', out ?? `ta_invoke returned ${rc}`);
  };
  // A Wasm TA dispatches every command name itself: each name is an own command to the harness's lookup (Object.hasOwn).
  const command = (name: string | symbol) => (typeof name === 'string' ? (_c: unknown, p: Value) => invoke(name, p) : undefined);
  return {
    commands: new Proxy({}, {
      get: (_t, name) => command(name),
      has: (_t, name) => typeof name === 'string',
      getOwnPropertyDescriptor: (_t, name) => (typeof name === 'string' ? { value: command(name), writable: false, enumerable: true, configurable: true } : undefined),
    }),
  };
}

/** Load a .tab (signed or not) and run its commands against a fake context. */
export async function loadTAForTests(bundle: Uint8Array, options: Omit<FakeContextForTestsOptions, 'manifest' | 'measurement'> = {}): Promise<TAForTests> {
  const s = decodeBundle(bundle);
  const measurement = computeMeasurement(s.manifestBytes, s.code);
  const context = fakeContextForTests({ ...options, manifest: s.manifest, measurement });
  const def = s.manifest.runtime === 'wasm' ? await loadWasm(s.code, context) : loadJs(s.code);
  let ctx: FakeContextForTests = context;
  let sessions = 0;
  await def.onCreate?.(context);
  return {
    manifest: s.manifest,
    measurement,
    context,
    async invoke(command, params = null) {
      const handler = Object.hasOwn(def.commands, command) ? def.commands[command] : undefined;
      if (typeof handler !== 'function') throw new EnclaveEdgeError('ITEM_NOT_FOUND', `TA ${s.manifest.name} has no command "${command}"`);
      try {
        const r = await handler(ctx, params);
        return r === undefined ? null : r;
      } catch (e) {
        throw asError(e);
      }
    },
    async openSession(params = null) {
      ctx = context.withSession({ id: `test-session-${++sessions}`, state: {} });
      await def.onOpenSession?.(ctx, params);
    },
    async closeSession() {
      await def.onCloseSession?.(ctx);
      ctx = context;
    },
    async destroy() {
      await def.onDestroy?.(context);
    },
  };
}
