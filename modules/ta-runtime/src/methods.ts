/** Management direct methods of ta-runtime: listTAs, loadTA, unloadTA, resetTA, getEvidence. */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { LIMITS, emptySchema, getEvidenceSchema, loadTASchema, parseWith, unloadTASchema, type MethodResult } from '@enclave-edge/protocol';
import { dispatchMethod, type MethodTable } from '@enclave-edge/module-frame';
import type { TARuntime } from './runtime.js';

type Handler = (payload: unknown, rt: TARuntime) => Promise<unknown>;

const handlers: Record<string, Handler> = {
  async listTAs(payload, rt) {
    parseWith(emptySchema, payload, 'listTAs payload');
    return { tas: rt.list() };
  },
  async loadTA(payload, rt) {
    const p = parseWith(loadTASchema, payload, 'loadTA payload');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(p.bundle)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'bundle must be base64');
    const bytes = new Uint8Array(Buffer.from(p.bundle, 'base64'));
    if (bytes.byteLength > LIMITS.maxInlineBundleBytes) {
      throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `inline bundle is ${bytes.byteLength} bytes; the limit is ${LIMITS.maxInlineBundleBytes} (use desired properties with a file or https source)`);
    }
    return { name: p.name, ...(await rt.loadInline(p.name, bytes, p.measurement)) };
  },
  async unloadTA(payload, rt) {
    const p = parseWith(unloadTASchema, payload, 'unloadTA payload');
    await rt.unloadMethod(p.name);
    return { name: p.name, unloaded: true };
  },
  /** A failed TA serves again now (instead of after its back-off); it changes no TA, so it needs no allowRemoteLoad. */
  async resetTA(payload, rt) {
    const p = parseWith(unloadTASchema, payload, 'resetTA payload');
    return { name: p.name, ...(await rt.reset(p.name)) };
  },
  async getEvidence(payload, rt) {
    const p = parseWith(getEvidenceSchema, payload, 'getEvidence payload');
    return { token: await rt.attest(p.ta, p.nonce) };
  },
};

export const RUNTIME_METHOD_NAMES = Object.keys(handlers);

/** Methods that change the TA set: refused unless policy.allowRemoteLoad (O5). */
const CHANGES_TA_SET = new Set(['loadTA', 'unloadTA']);

/** Checked before a method runs. */
export function guardRuntimeMethod(name: string, rt: TARuntime): void {
  if (CHANGES_TA_SET.has(name) && !rt.allowRemoteLoad) {
    throw new EnclaveEdgeError('ACCESS_DENIED', `${name} is disabled: direct methods carry no caller identity, so any module could call it; set policy.allowRemoteLoad: true in ta-runtime's desired properties to enable it, or manage TAs through desired properties`);
  }
}

/** The methods bound to a runtime, for the module frame. */
export function runtimeMethods(rt: TARuntime): MethodTable {
  return new Map(Object.entries(handlers).map(([name, h]) => [name, (payload: unknown) => h(payload, rt)]));
}

/** Run one method as the module does (tests call this without a frame). */
export function handleRuntimeMethod(name: string, payload: unknown, rt: TARuntime): Promise<MethodResult> {
  return dispatchMethod(runtimeMethods(rt), name, payload, (n) => guardRuntimeMethod(n, rt));
}
