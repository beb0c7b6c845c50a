/** Build and sign small TA bundles for the security tests (real format, real ES256 signatures). */
import { randomUUID } from 'node:crypto';
import { encodeBundle, signBundle, pemSigner, generateSigningKey, computeSignerId, type TAManifest } from '@enclave-edge/bundle';

export interface TestSigner {
  pem: string;
  signerId: string;
}

export function newSigner(): TestSigner {
  const k = generateSigningKey();
  return { pem: k.privateKeyPem, signerId: computeSignerId(k.spki) };
}

export function manifest(over: Partial<TAManifest> = {}): TAManifest {
  return {
    name: 'probe',
    uuid: randomUUID(),
    version: '1.0.0',
    productId: 1,
    securityVersion: 1,
    debug: false,
    runtime: 'js',
    limits: { heapMb: 32, stackKb: 1024, maxConcurrency: 2, callTimeoutMs: 5_000 },
    session: { singleInstance: true, multiSession: true, keepAlive: true },
    hostCalls: [],
    ...over,
  } as TAManifest;
}

export const ECHO_TA = "module.exports = { commands: { echo: (ctx, p) => p } };";

export async function signedBundle(signer: TestSigner, code = ECHO_TA, over: Partial<TAManifest> = {}): Promise<Uint8Array> {
  const unsigned = encodeBundle({ manifest: manifest(over), code: new TextEncoder().encode(code) });
  return signBundle(unsigned, pemSigner(signer.pem));
}
