// Verify (parse + measure + check signature) of a 1 MiB bundle vs plain SHA-256 of the same bytes. Target ≤ 1.3×.
import { createHash, randomBytes } from 'node:crypto';
import { encodeBundle, generateSigningKey, pemSigner, signBundle, verifyBundle, type TAManifest } from '@enclave-edge/bundle';
import { defineSuite, measureLatency } from '../lib.js';

const manifest: TAManifest = {
  name: 'bench', uuid: '0b8f3f2e-7c1d-4a5b-9e6f-102030405060', version: '1.0.0', productId: 1, securityVersion: 1, debug: false, runtime: 'js',
  limits: { heapMb: 64, stackKb: 1024, maxConcurrency: 4, callTimeoutMs: 5000 }, session: { singleInstance: true, multiSession: true, keepAlive: false }, hostCalls: [],
};

export default defineSuite({
  name: 'bundle',
  async run(ctx) {
    // 1 MiB of code (a large comment keeps it valid JS; the verifier does not care).
    const code = new TextEncoder().encode('/*' + randomBytes(786_400).toString('base64').slice(0, 1024 * 1024 - 40) + '*/module.exports={};');
    const unsigned = encodeBundle({ manifest, code });
    const bundle = await signBundle(unsigned, pemSigner(generateSigningKey().privateKeyPem));
    const iterations = 400;

    const hash = await measureLatency(`sha256 of the ${(bundle.byteLength / 1048576).toFixed(2)} MiB bundle`, () => createHash('sha256').update(bundle).digest(), { iterations });
    const warm = await measureLatency('verifyBundle 1 MiB (same signer, key cached)', () => verifyBundle(bundle), { iterations });
    ctx.compare({
      name: 'verify 1 MiB bundle vs sha256 alone',
      subject: warm,
      baseline: hash,
      targets: [{ description: 'verify ≤ 1.3× sha256 of the same bytes', pass: warm.p50Us / hash.p50Us <= 1.3 }],
    });

    // Cold: a different signer each call, so the header key is parsed and imported every time.
    const many = await Promise.all(Array.from({ length: 100 }, () => signBundle(unsigned, pemSigner(generateSigningKey().privateKeyPem))));
    let i = 0;
    let j = 0;
    // Same 100 bundles for the baseline, so both rows read the same (cache-cold) memory.
    const hash2 = await measureLatency('sha256 of the same 100 bundles in turn', () => createHash('sha256').update(many[j++ % many.length]!).digest(), { iterations });
    const cold = await measureLatency('verifyBundle 1 MiB (new signer each call)', () => verifyBundle(many[i++ % many.length]!), { iterations });
    ctx.compare({
      name: 'verify 1 MiB bundle, key import included',
      subject: cold,
      baseline: hash2,
      targets: [{ description: 'verify with key import ≤ 1.3× sha256', pass: cold.p50Us / hash2.p50Us <= 1.3 }],
      notes: 'the key import (JWK → KeyObject) is cached per JWS header; this row pays it on every call',
    });
  },
});
