/**
 * Test helpers: build a VerifiedBundle directly from code (no signing), admitted for the emulated
 * backend under a policy that trusts the test signer. For tests and the conformance suite only;
 * a real runtime gets bundles from @enclave-edge/bundle's admit().
 */
import { createHash, randomUUID } from 'node:crypto';
import { admitVerified, admittedOrThrow } from '@enclave-edge/bundle/admission';
import type { TAManifest, VerifiedBundle } from '@enclave-edge/bundle/types';

export type ManifestOverrides = Partial<Omit<TAManifest, 'limits' | 'session'>> & {
  limits?: Partial<TAManifest['limits']>;
  session?: Partial<TAManifest['session']>;
};

export function testManifest(o: ManifestOverrides = {}): TAManifest {
  return {
    name: o.name ?? 'test-ta',
    uuid: o.uuid ?? randomUUID(),
    version: o.version ?? '1.0.0',
    productId: o.productId ?? 1,
    securityVersion: o.securityVersion ?? 1,
    debug: o.debug ?? false,
    runtime: o.runtime ?? 'js',
    limits: { heapMb: 64, stackKb: 1024, maxConcurrency: 4, callTimeoutMs: 5_000, ...o.limits },
    session: { singleInstance: true, multiSession: true, keepAlive: true, ...o.session },
    hostCalls: o.hostCalls ?? [],
    ...(o.confidentialCommands !== undefined ? { confidentialCommands: o.confidentialCommands } : {}),
    ...(o.description !== undefined ? { description: o.description } : {}),
  };
}

/** A bundle from JS source (one CommonJS script) or Wasm bytes, with a fake but consistent measurement. */
export function makeTestBundle(code: string | Uint8Array, o: ManifestOverrides = {}, sourceMap?: string): VerifiedBundle {
  const manifest = testManifest(o);
  const bytes = typeof code === 'string' ? new TextEncoder().encode(code) : code;
  const measurement = createHash('sha256').update(JSON.stringify(manifest)).update(bytes).digest('hex');
  const signerSpki = new TextEncoder().encode('test-signer');
  const signerId = createHash('sha256').update(signerSpki).digest('hex');
  const bundle: VerifiedBundle = {
    manifest,
    code: bytes,
    ...(sourceMap ? { sourceMap: new TextEncoder().encode(sourceMap) } : {}),
    measurement,
    signerId,
    signerSpki,
    size: bytes.length,
  };
  const policy = { trustedSigners: { test: signerId }, allowDebug: manifest.debug, allowEmulated: true, minSvn: {}, allowRemoteLoad: false, maxLimits: manifest.limits };
  return admittedOrThrow(admitVerified(bundle, policy, { backendKind: 'emulated', origin: 'local' }));
}

/** The same bundle, never admitted (to test that the backend refuses it). */
export function makeUnadmittedBundle(code: string, o: ManifestOverrides = {}): VerifiedBundle {
  return { ...makeTestBundle(code, o) };
}
