/** Shared helpers of the security regression tests: temp dirs and TA identities. */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime } from '@enclave-edge/ta-runtime';
import { openSoftwareRoot, createTrustServices, initDeviceIdentity, devicePaths, type TAIdentity } from '@enclave-edge/trust';
import { createLogger } from '@enclave-edge/observability';
import type { TAManifest } from '@enclave-edge/bundle';
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
 * identity, running the given JS TAs signed by a fresh signer. `ca` verifies its evidence;
 * `deploy` reconciles other TAs (code and manifest fields) signed by the same signer, uuid kept per name.
 */
export async function runtimeWithDevice(dir: string, tas: Record<string, string | ({ code: string } & Partial<TAManifest>)>, destination: { write(line: string): unknown } = { write: () => undefined }): Promise<{
  rt: TARuntime;
  ca: string;
  deploy: (tas: Record<string, { code: string } & Partial<TAManifest>>) => Promise<void>;
}> {
  const root = await openSoftwareRoot({ stateDir: dir });
  await initDeviceIdentity({ root, mode: 'self-signed' });
  const ca = readFileSync(devicePaths(root.stateDir).ca, 'utf8');
  const services = createTrustServices({ rootOfTrust: root });
  const signer = newSigner();
  const log = createLogger({ name: 'ta-runtime', level: 'debug', destination });
  const rt = new TARuntime({ backend: new EmulatedBackend(), services, log, sources: { bundleDir: dir }, drainMs: 200, events: { event() {}, report() {} } });
  const uuids = new Map<string, string>();
  const deploy = async (set: Record<string, { code: string } & Partial<TAManifest>>) => {
    const sources: Record<string, { source: string }> = {};
    for (const [name, { code, ...over }] of Object.entries(set)) {
      if (!uuids.has(name)) uuids.set(name, randomUUID());
      sources[name] = { source: 'base64:' + Buffer.from(await signedBundle(signer, code, { name, uuid: uuids.get(name)!, ...over })).toString('base64') };
    }
    await rt.reconcile({ policy: { trustedSigners: { mine: signer.signerId }, allowEmulated: true }, tas: sources });
  };
  await deploy(Object.fromEntries(Object.entries(tas).map(([name, ta]) => [name, typeof ta === 'string' ? { code: ta } : ta])));
  return { rt, ca, deploy };
}
