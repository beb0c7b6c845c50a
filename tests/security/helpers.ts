/** Shared helpers of the security regression tests: temp dirs and TA identities. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime } from '@enclave-edge/ta-runtime';
import { openSoftwareRoot, createTrustServices, initDeviceIdentity, devicePaths, type TAIdentity } from '@enclave-edge/trust';
import { createLogger } from '@enclave-edge/observability';
import { newSigner, signedBundle } from './bundles.js';

export { tempDir } from '../support/temp-dir.js';

export const sha256hex = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');

export function identity(over: Partial<TAIdentity> = {}): TAIdentity {
  return {
    name: 'vault',
    uuid: '0d7c3f2a-5b1e-4c8d-9a6f-2e4b8c1d3f5a',
    version: '1.0.0',
    measurement: sha256hex('release-build'),
    signerId: sha256hex('signer'),
    productId: 7,
    securityVersion: 1,
    debug: false,
    ...over,
  };
}

/**
 * A real TA runtime (emulated enclave) over a software root of trust with a self-signed device
 * identity, running the given JS TAs signed by a fresh signer. `ca` verifies its evidence.
 */
export async function runtimeWithDevice(dir: string, tas: Record<string, string>, destination: { write(line: string): unknown } = { write: () => undefined }): Promise<{ rt: TARuntime; ca: string }> {
  const root = await openSoftwareRoot({ stateDir: dir });
  await initDeviceIdentity({ root, mode: 'self-signed' });
  const ca = readFileSync(devicePaths(root.stateDir).ca, 'utf8');
  const services = createTrustServices({ rootOfTrust: root });
  const signer = newSigner();
  const log = createLogger({ name: 'ta-runtime', level: 'debug', destination });
  const rt = new TARuntime({ backend: new EmulatedBackend(), services, log, sources: { bundleDir: dir }, drainMs: 200, events: { event() {}, report() {} } });
  const sources: Record<string, { source: string }> = {};
  for (const [name, code] of Object.entries(tas)) sources[name] = { source: 'base64:' + Buffer.from(await signedBundle(signer, code, { name })).toString('base64') };
  await rt.reconcile({ policy: { trustedSigners: { mine: signer.signerId }, allowEmulated: true }, tas: sources });
  return { rt, ca };
}
