import { generateSigningKey, verifyBundle, type TAManifest } from '@enclave-edge/bundle';
import { isEnclaveEdgeError } from '@enclave-edge/errors';

/** One signer for the tests about bytes (not about whom to trust): refusal() trusts it. */
export const KEY = generateSigningKey();
export const TRUST = { trustedSigners: [KEY.signerId] };

/** The named error verifyBundle refuses `bytes` with (fails the test if it accepts them). */
export function refusal(bytes: Uint8Array): { code: string; message: string } {
  try {
    verifyBundle(bytes, TRUST);
  } catch (e) {
    if (!isEnclaveEdgeError(e)) throw new Error(`not an EnclaveEdgeError: ${String(e)}`);
    return { code: e.code, message: e.message };
  }
  throw new Error('bundle was accepted');
}

export function sampleManifest(over: Partial<TAManifest> = {}): TAManifest {
  return {
    name: 'hello',
    uuid: '6f1c2a7e-3b4d-4c5e-8f90-a1b2c3d4e5f6',
    version: '1.0.0',
    productId: 1,
    securityVersion: 1,
    debug: false,
    runtime: 'js',
    limits: { heapMb: 64, stackKb: 1024, maxConcurrency: 4, callTimeoutMs: 5000 },
    session: { singleInstance: true, multiSession: true, keepAlive: false },
    hostCalls: [],
    ...over,
  };
}

export const tinyCode = new TextEncoder().encode('module.exports={commands:{}};');
