/**
 * ConfidentialClient: the caller's end of a confidential call, usable from any service (no
 * runtime imports). It verifies the TA's evidence against a policy before anything is sent,
 * caches the attested key until the evidence expires, and seals every request to it.
 */
import { randomBytes } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { verifyEvidence } from '@enclave-edge/attestation/verify';
import { parsePolicy, type VerifierPolicyInput } from '@enclave-edge/attestation/policy';
import type { EvidenceClaims } from '@enclave-edge/attestation/claims';
import { decodeValue, encodeValue } from '@enclave-edge/protocol/value-codec';
import type { Value } from '@enclave-edge/ta-sdk';
import { prepareSender, sealRequest, type JsonValue, type PreparedSender } from './envelope.js';
import { CONFIDENTIAL_COMMAND } from './names.js';
import { importHpkePublicKey, rawPublicKeyOf, type HpkeKey } from './suite.js';

/** The two ordinary methods the client needs, over whatever reaches host-module (service API, edgeHub). */
export interface ConfidentialTransport {
  /** host-module `attest`: evidence for `ta` over `nonce` (hex). */
  attest(ta: string, nonce: string): Promise<string>;
  /** host-module `invokeTA`: the TA's result in wire form. */
  invoke(ta: string, command: string, params: JsonValue, opts?: { sessionId?: string; timeoutMs?: number }): Promise<JsonValue>;
}

export interface ConfidentialClientOptions {
  transport: ConfidentialTransport;
  /** PEM text of the CA(s) that may issue device attestation certificates. */
  trustAnchors: string | string[];
  policy?: VerifierPolicyInput;
  /** Accept evidence from the emulated backend (development only). */
  allowEmulated?: boolean;
  /** How long each envelope is valid (default 60 s). */
  lifetimeMs?: number;
  now?: () => number;
}

/** A TA's key as its verified evidence states it. */
export interface AttestedKey {
  ta: string;
  measurement: string;
  key: HpkeKey;
  /** ms since the epoch: the evidence's `exp`. */
  expiresAt: number;
  claims: EvidenceClaims;
  warnings: string[];
}

export interface ConfidentialInvokeOptions {
  sessionId?: string;
  timeoutMs?: number;
}

export class ConfidentialClient {
  private readonly keys = new Map<string, Promise<AttestedKey>>();
  private readonly policy;
  private readonly now: () => number;

  constructor(private readonly opts: ConfidentialClientOptions) {
    // Parsed once: a bad policy fails here, before any call.
    this.policy = parsePolicy({ ...(opts.policy ?? {}), ...(opts.allowEmulated ? { allowEmulated: true } : {}) });
    this.now = opts.now ?? Date.now;
  }

  /** The verified key of `ta` (fresh evidence when none is cached or it expired). Rejects with the verifier's reason. */
  attestedKey(ta: string): Promise<AttestedKey> {
    const cached = this.keys.get(ta);
    if (cached) {
      return cached.then((k) => (k.expiresAt > this.now() ? k : this.refresh(ta)), () => this.refresh(ta));
    }
    return this.refresh(ta);
  }

  /** Drop the cached key of `ta` (e.g. after the TA was updated). */
  forget(ta: string): void {
    this.keys.delete(ta);
  }

  private refresh(ta: string): Promise<AttestedKey> {
    const p = this.fetchKey(ta);
    this.keys.set(ta, p);
    p.catch(() => {
      if (this.keys.get(ta) === p) this.keys.delete(ta);
    });
    return p;
  }

  private async fetchKey(ta: string): Promise<AttestedKey> {
    const nonce = randomBytes(32).toString('hex');
    const token = await this.opts.transport.attest(ta, nonce);
    const verdict = await verifyEvidence(token, { trustAnchors: this.opts.trustAnchors, nonce, policy: this.policy, now: new Date(this.now()) });
    if (!verdict.accepted) {
      throw new EnclaveEdgeError(verdict.code, `evidence of TA "${ta}" refused (${verdict.reason}): ${verdict.message}; nothing was sent`, { detail: { reason: verdict.reason } });
    }
    const raw = rawPublicKeyOf(verdict.claims.cnf?.jwk);
    if (!raw) {
      throw new EnclaveEdgeError('ATTESTATION_INVALID', `evidence of TA "${ta}" binds no X25519 HPKE key (cnf.jwk); it cannot be called confidentially`, { detail: { reason: 'no-key' } });
    }
    return {
      ta: verdict.claims.ta.name,
      measurement: verdict.claims.unique_id,
      key: await importHpkePublicKey(raw),
      expiresAt: verdict.claims.exp * 1000,
      claims: verdict.claims,
      warnings: verdict.warnings,
    };
  }

  /**
   * The HPKE encapsulation of the next request to `k`, made while this one is on the wire, so a
   * call pays only for its AEAD. One context per envelope, taken out before use (never shared);
   * dropped with the key.
   */
  private readonly prepared = new WeakMap<AttestedKey, PreparedSender>();

  private takePrepared(k: AttestedKey): PreparedSender {
    const ready = this.prepared.get(k);
    this.prepared.set(k, prepareSender(k.key, true));
    return ready ?? prepareSender(k.key);
  }

  /** Call `command` of `ta` with params only the attested enclave can read; resolves to its plain result. */
  async invoke(ta: string, command: string, params?: Value, opts: ConfidentialInvokeOptions = {}): Promise<Value> {
    const wireParams = encodeValue(params ?? null) as JsonValue;
    try {
      return await this.invokeOnce(ta, command, wireParams, opts);
    } catch (err) {
      // The TA was replaced since the evidence was fetched: verify the new one once, then retry.
      if (err instanceof EnclaveEdgeError && err.code === 'MEASUREMENT_MISMATCH') {
        this.forget(ta);
        return this.invokeOnce(ta, command, wireParams, opts);
      }
      throw err;
    }
  }

  private async invokeOnce(ta: string, command: string, params: JsonValue, opts: ConfidentialInvokeOptions): Promise<Value> {
    const k = await this.attestedKey(ta);
    const sealed = await sealRequest({
      recipient: k.key, prepared: this.takePrepared(k), ta: k.ta, measurement: k.measurement, command, params,
      ...(this.opts.lifetimeMs !== undefined ? { lifetimeMs: this.opts.lifetimeMs } : {}), now: this.now(),
    });
    const answer = await this.opts.transport.invoke(ta, CONFIDENTIAL_COMMAND, sealed.envelope as unknown as JsonValue, opts);
    const inner = await sealed.openResponse(answer);
    if (!inner.ok) throw new EnclaveEdgeError(inner.error.code, inner.error.message);
    return decodeValue(inner.result);
  }
}
