/**
 * `invoke <module> invokeTA '{…}' --confidential`: the TA's evidence is fetched with a fresh
 * nonce (the module's `attest` method) and verified against the policy before anything is sent;
 * params and result then travel sealed through the ordinary `invokeTA` method.
 */
import { EnclaveEdgeError, statusOf } from '@enclave-edge/errors';
import type { HubClient } from '@enclave-edge/hub-client';
import type { Value } from '@enclave-edge/ta-sdk';
import { readText, policyInput } from './verify.js';

export interface ConfidentialInvokeOptions {
  trust?: string;
  policy?: string;
  allowEmulated?: boolean;
  timeout: number;
}

export interface ConfidentialAnswer {
  status: number;
  payload: { result: unknown } | { error: { code: string; message: string } };
  confidential: { ta: string; measurement: string; tee: string; warnings: string[] };
}

export async function invokeConfidential(hub: HubClient, deviceId: string, moduleId: string, methodName: string, body: unknown, o: ConfidentialInvokeOptions): Promise<ConfidentialAnswer> {
  if (methodName !== 'invokeTA') throw new EnclaveEdgeError('BAD_PARAMETERS', `--confidential works with the invokeTA method, not ${methodName}`);
  if (!o.trust) throw new EnclaveEdgeError('BAD_PARAMETERS', '--confidential needs --trust <ca.pem> (the CA that issues device attestation certificates; the simulator\'s is printed by `sim up`)');
  const p = body as { ta?: unknown; command?: unknown; params?: unknown; sessionId?: unknown; timeoutMs?: unknown } | null;
  if (!p || typeof p !== 'object' || typeof p.ta !== 'string' || typeof p.command !== 'string') {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'the invokeTA payload needs "ta" and "command"');
  }
  const [{ ConfidentialClient }, { methodTransport }] = await Promise.all([import('@enclave-edge/confidential/client'), import('@enclave-edge/confidential/method-transport')]);
  const transport = methodTransport((methodName, payload) => hub.invokeModuleMethod(deviceId, moduleId, { methodName, payload, responseTimeoutInSeconds: o.timeout }));
  const { decodeValue, encodeValue } = await import('@enclave-edge/protocol/value-codec');
  const client = new ConfidentialClient({ transport, trustAnchors: readText('trust anchors', o.trust), policy: policyInput(o) });
  // Fails with the verifier's reason before anything is sent.
  const key = await client.attestedKey(p.ta);
  const confidential = { ta: key.ta, measurement: key.measurement, tee: key.claims.tee, warnings: key.warnings };
  try {
    const result = await client.invoke(p.ta, p.command, decodeValue(p.params ?? null) as Value, {
      ...(typeof p.sessionId === 'string' ? { sessionId: p.sessionId } : {}),
      ...(typeof p.timeoutMs === 'number' ? { timeoutMs: p.timeoutMs } : {}),
    });
    return { status: 200, payload: { result: encodeValue(result) }, confidential };
  } catch (err) {
    // The evidence was accepted and the call was sent: a refusal now is the call's answer, shaped
    // as a plain invoke's (status and error), so scripts see the same exit status either way.
    if (!(err instanceof EnclaveEdgeError)) throw err;
    return { status: statusOf(err.code), payload: { error: { code: err.code, message: err.message } }, confidential };
  }
}
