// Verify (parse + measure + check signature) of a 1 MiB bundle vs plain SHA-256 of the same bytes. Target ≤ 1.3× on the runtime's admission path.
// Subject and baseline calls alternate, so both see the same load on this shared machine.
import { createHash, randomBytes } from 'node:crypto';
import { admit, encodeBundle, generateSigningKey, pemSigner, signBundle, verifyBundle, verifyBundleAsync, type TAManifest } from '@enclave-edge/bundle';
import { runtimePolicySchema } from '@enclave-edge/protocol';
import { defineSuite, measureLatencyPaired, type Measurement } from '../lib.js';

const manifest: TAManifest = {
  name: 'bench', uuid: '0b8f3f2e-7c1d-4a5b-9e6f-102030405060', version: '1.0.0', productId: 1, securityVersion: 1, debug: false, runtime: 'js',
  limits: { heapMb: 64, stackKb: 1024, maxConcurrency: 4, callTimeoutMs: 5000 }, session: { singleInstance: true, multiSession: true, keepAlive: false }, hostCalls: [],
};

/**
 * Subject and baseline calls alternate one by one (bench/lib.ts), so both get the same noise.
 * 200 warm-up pairs: with 50, whichever row ran first still paid for JIT (the same admit()
 * measured 0.1–0.2× worse first than later).
 */
function measurePair(subjectLabel: string, subject: (i: number) => unknown, baselineLabel: string, baseline: (i: number) => unknown) {
  return measureLatencyPaired({ label: subjectLabel, fn: subject }, { label: baselineLabel, fn: baseline }, { iterations: 400, warmup: 200 });
}

/** Mean process CPU time per call (user + system, all threads), in blocks that alternate; robust to other load on the machine. */
async function cpuPerCall(subject: (i: number) => unknown, baseline: (i: number) => unknown, blocks = 8, perBlock = 50): Promise<{ subjectUs: number; baselineUs: number }> {
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let sUs = 0;
  let bUs = 0;
  for (let k = 0; k < blocks; k++) {
    let t = cpu();
    for (let i = 0; i < perBlock; i++) await subject(i);
    sUs += cpu() - t;
    t = cpu();
    for (let i = 0; i < perBlock; i++) await baseline(i);
    bUs += cpu() - t;
  }
  return { subjectUs: sUs / (blocks * perBlock), baselineUs: bUs / (blocks * perBlock) };
}

export default defineSuite({
  name: 'bundle',
  async run(ctx) {
    // 1 MiB of code (a large comment keeps it valid JS; the verifier does not care).
    const code = new TextEncoder().encode('/*' + randomBytes(786_400).toString('base64').slice(0, 1024 * 1024 - 40) + '*/module.exports={};');
    const unsigned = encodeBundle({ manifest, code });
    const key = generateSigningKey();
    const bundle = await signBundle(unsigned, pemSigner(key.privateKeyPem));
    const trust = { trustedSigners: [key.signerId] };
    const policy = runtimePolicySchema.parse({ trustedSigners: { bench: key.signerId }, allowEmulated: true });
    const ctx0 = { backendKind: 'emulated', origin: 'desired' } as const;
    const admitted = async () => {
      const r = await admit(bundle, policy, ctx0);
      if (r.refused) throw new Error(r.refused.message);
    };
    const hashOne = () => createHash('sha256').update(bundle).digest();
    const target = (what: string, m: { subject: Measurement; baseline: Measurement }) => [{ description: `${what} ≤ 1.3× sha256 of the same bytes`, pass: m.subject.p50Us / m.baseline.p50Us <= 1.3 }];

    // The runtime admits bundles with admit() (packages/bundle/src/admission.ts): verifyBundleAsync
    // and the policy rules, and nothing else touches the bytes (ta-runtime tells an unchanged
    // source by comparing bytes, not by hashing them again). The target applies to that path.
    const admission = await measurePair('admit() 1 MiB (signer key cached)', admitted, 'sha256 of the same 1 MiB bundle', hashOne);
    const cpuAdmit = await cpuPerCall(admitted, hashOne);
    ctx.compare({
      name: 'runtime admission: admit() 1 MiB vs sha256 alone', ...admission, targets: target('admit()', admission),
      notes: `verifyBundleAsync + every policy rule; CPU per call (all threads): admit ${cpuAdmit.subjectUs.toFixed(0)} µs, sha256 ${cpuAdmit.baselineUs.toFixed(0)} µs (${(cpuAdmit.subjectUs / cpuAdmit.baselineUs).toFixed(2)}×)`,
    });
    const warmAsync = await measurePair('verifyBundleAsync 1 MiB (signer key cached)', () => verifyBundleAsync(bundle, trust), 'sha256 of the same 1 MiB bundle', hashOne);
    ctx.compare({ name: 'verifyBundleAsync 1 MiB vs sha256 alone', ...warmAsync, targets: target('verifyBundleAsync', warmAsync), notes: 'ES256 check on the libuv thread pool while the main thread hashes' });

    // Cold key: a different signer each call, so the header key is parsed and imported every time.
    // Made only now: the garbage of making 100 MiB of bundles must not land in the rows above.
    const keys = Array.from({ length: 100 }, () => generateSigningKey());
    const many = await Promise.all(keys.map((k) => signBundle(unsigned, pemSigner(k.privateKeyPem))));
    const trustMany = { trustedSigners: keys.map((k) => k.signerId) };
    const hashMany = (i: number) => createHash('sha256').update(many[i % many.length]!).digest();
    const coldAsync = await measurePair('verifyBundleAsync 1 MiB (new signer each call)', (i) => verifyBundleAsync(many[i % many.length]!, trustMany), 'sha256 of the same bundles', hashMany);
    ctx.compare({ name: 'runtime admission: verifyBundleAsync 1 MiB, key import included', ...coldAsync, targets: target('verifyBundleAsync incl. key import', coldAsync) });

    // The synchronous verify (CLI `ta verify`, `ta run`) does the same work on one thread: hash +
    // ES256 (~140 µs) + parsing, so it sits at ~1.3–1.6× and is reported without a target.
    const warm = await measurePair('verifyBundle 1 MiB (signer key cached)', () => verifyBundle(bundle, trust), 'sha256 of the same 1 MiB bundle', hashOne);
    const cpuWarm = await cpuPerCall(() => verifyBundle(bundle, trust), hashOne);
    ctx.compare({
      name: 'verifyBundle (synchronous, CLI) 1 MiB vs sha256 alone (info)', ...warm,
      notes: `CPU per call: verify ${cpuWarm.subjectUs.toFixed(0)} µs, sha256 ${cpuWarm.baselineUs.toFixed(0)} µs (${(cpuWarm.subjectUs / cpuWarm.baselineUs).toFixed(2)}× in CPU time); the imported signer key is cached per JWS header (public data)`,
    });
    const cold = await measurePair('verifyBundle 1 MiB (new signer each call)', (i) => verifyBundle(many[i % many.length]!, trustMany), 'sha256 of the same bundles', hashMany);
    const cpuCold = await cpuPerCall((i) => verifyBundle(many[i % many.length]!, trustMany), hashMany);
    ctx.compare({
      name: 'verifyBundle (synchronous, CLI) 1 MiB, key import included (info)', ...cold,
      notes: `CPU per call: verify ${cpuCold.subjectUs.toFixed(0)} µs, sha256 ${cpuCold.baselineUs.toFixed(0)} µs (${(cpuCold.subjectUs / cpuCold.baselineUs).toFixed(2)}× in CPU time)`,
    });
  },
});
