/**
 * A ConfidentialTransport over host-module's direct methods (`attest`, `invokeTA`), for any
 * caller that can invoke a module method: the IoT Hub service SDK or REST client, the simulator's
 * service API, the CLI. Structural: it takes the invoke function, not a client library.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { ConfidentialTransport } from './client.js';
import type { JsonValue } from './envelope.js';

/** Invoke one direct method on host-module: `{ status, payload }` as IoT Hub answers it. */
export type InvokeMethod = (methodName: string, payload: unknown) => Promise<{ status: number; payload: unknown }>;

async function ok(invoke: InvokeMethod, methodName: string, payload: unknown): Promise<Record<string, unknown>> {
  const r = await invoke(methodName, payload);
  const p = (r.payload && typeof r.payload === 'object' ? r.payload : {}) as Record<string, unknown>;
  if (r.status !== 200) throw EnclaveEdgeError.fromJSON(p.error ?? { code: 'INTERNAL', message: `${methodName} answered status ${r.status}` });
  return p;
}

export function methodTransport(invoke: InvokeMethod): ConfidentialTransport {
  return {
    async attest(ta, nonce) {
      const p = await ok(invoke, 'attest', { ta, nonce });
      if (typeof p.token !== 'string') throw new EnclaveEdgeError('BAD_FORMAT', 'attest answered without a token');
      return p.token;
    },
    async invoke(ta, command, params, opts) {
      const p = await ok(invoke, 'invokeTA', { ta, command, params, ...(opts?.sessionId ? { sessionId: opts.sessionId } : {}), ...(opts?.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
      return (p.result ?? null) as JsonValue;
    },
  };
}
