// ta-runtime with ENCLAVE_EDGE_ROT=tpm on a real swtpm: attest evidence carries a TPM quote that verifies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { TARuntime, readConfig, setupTrust } from '@enclave-edge/ta-runtime';
import { devicePaths } from '@enclave-edge/trust';
import { verifyEvidence } from '@enclave-edge/attestation';
import { startSwtpm, type Swtpm } from '../../../tests/support/swtpm.js';
import { tempDir } from '../../../tests/support/temp-dir.js';
import { buildSampleBundles, devPolicy, quietLogger } from './fixtures.js';

let tpm: Swtpm;
let bundles: ReturnType<typeof buildSampleBundles>;
let state: ReturnType<typeof tempDir>;

beforeAll(async () => {
  tpm = await startSwtpm();
  bundles = buildSampleBundles();
  state = tempDir('ee-rt-tpm-');
});
afterAll(async () => {
  bundles?.cleanup();
  state?.cleanup();
  await tpm?.stop();
});

describe('ta-runtime with the tpm root of trust', () => {
  it('attest evidence from a tpm-rooted runtime verifies with the quote checked; storage is counter-bound', async () => {
    const env = { ENCLAVE_EDGE_ROT: 'tpm', ENCLAVE_EDGE_TPM_TCTI: tpm.tcti, ENCLAVE_EDGE_STATE_DIR: state.dir, EDGESIM_GATEWAY_HTTPS_PORT: '1' };
    const { log } = quietLogger();
    const trust = await setupTrust(readConfig(env), log, env);
    expect(trust.rootOfTrust).toMatchObject({ kind: 'tpm', developmentGrade: false });
    expect(trust.rootOfTrust.rollbackProtection).toMatch(/TPM NV counter/);
    const rt = new TARuntime({ backend: trust.backend, services: trust.services!, log, sources: { bundleDir: bundles.dir }, drainMs: 2000, events: { event: () => undefined, report: () => undefined } });
    try {
      await rt.reconcile({ policy: devPolicy, tas: { 'sensor-signer': { source: 'sensor-signer.tab' } } });
      const nonce = randomBytes(16).toString('hex');
      const { token } = (await rt.dispatch({ id: 'a1', op: 'attest', ta: 'sensor-signer', nonce, deadline: Date.now() + 30_000 })) as { token: string };
      const v = await verifyEvidence(token, { trustAnchors: readFileSync(devicePaths(state.dir).ca, 'utf8'), nonce, policy: { allowEmulated: true, allowedRootsOfTrust: ['tpm'] } });
      expect(v.accepted, JSON.stringify(v)).toBe(true);
      if (v.accepted) expect(Object.keys(v.platform!.pcrs)).toHaveLength(8);
    } finally {
      await rt.stop();
      await trust.close();
    }
  });
});
