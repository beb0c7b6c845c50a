/**
 * The attestation panel's one action: fetch evidence for a TA with a fresh nonce through
 * host-module's ordinary `attest` method, and verify it as a cloud verifier would, against the
 * policy the page chose and the device CA (the one ta-runtime reports, or a PEM the page sends).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { HubClient } from '@enclave-edge/hub-client';
import { verifyEvidence } from '@enclave-edge/attestation/verify';
import { parsePolicy } from '@enclave-edge/attestation/policy';

export interface AttestRequest {
  ta: string;
  /** Verifier policy (allowEmulated, allowDebug, allowedSigners, minSecurityVersion, …). */
  policy?: Record<string, unknown>;
  /** Trust anchor PEM; default: the device CA ta-runtime reports (a file on this machine). */
  trustPem?: string;
}

async function deviceCa(client: HubClient, deviceId: string): Promise<string> {
  const twin = await client.getModuleTwin(deviceId, 'ta-runtime');
  const path = (twin.properties as { reported?: { runtime?: { rootOfTrust?: { deviceCaPath?: unknown } } } } | undefined)?.reported?.runtime?.rootOfTrust?.deviceCaPath;
  if (typeof path !== 'string') throw new EnclaveEdgeError('ITEM_NOT_FOUND', 'ta-runtime reports no device CA (runtime.rootOfTrust.deviceCaPath): paste the trust anchor PEM instead');
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', 'the device CA ta-runtime reports is not readable from this machine: paste the trust anchor PEM instead');
  }
}

export async function attestAndVerify(client: HubClient, deviceId: string, body: AttestRequest): Promise<Record<string, unknown>> {
  if (typeof body?.ta !== 'string' || !body.ta) throw new EnclaveEdgeError('BAD_PARAMETERS', 'attest needs {ta, policy?}');
  const policy = parsePolicy(body.policy && typeof body.policy === 'object' ? body.policy : {});
  const trustAnchors = typeof body.trustPem === 'string' && body.trustPem.includes('BEGIN CERTIFICATE') ? body.trustPem : await deviceCa(client, deviceId);
  const nonce = randomBytes(16).toString('hex');
  const r = await client.invokeModuleMethod(deviceId, 'host-module', { methodName: 'attest', payload: { ta: body.ta, nonce }, responseTimeoutInSeconds: 30 });
  const token = (r.payload as { token?: unknown } | null)?.token;
  if (r.status !== 200 || typeof token !== 'string') {
    const e = (r.payload as { error?: { code?: string; message?: string } } | null)?.error;
    return { nonce, status: r.status, error: { code: e?.code ?? `STATUS_${r.status}`, message: e?.message ?? 'attest failed' } };
  }
  const verdict = await verifyEvidence(token, { trustAnchors, nonce, policy });
  return { nonce, status: r.status, verdict };
}
