/** Sealing, roots of trust and evidence: each figure beside a raw node:crypto / jose baseline from the same run. */
import { createCipheriv, createDecipheriv, randomBytes, createHash, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactVerify, importX509 } from 'jose';
import { X509Certificate } from 'node:crypto';
import { defineSuite, measureLatency, measureLatencyPaired, measureThroughput, type BenchContext, type Measurement } from '../lib.js';
import { createSoftHsmToken } from '@enclave-edge/pkcs11';
import { createRootOfTrust, Sealer, createTrustServices, initDeviceIdentity, devicePaths } from '@enclave-edge/trust';
import { verifyEvidence, MemoryReplayCache } from '@enclave-edge/attestation';
import { readFileSync } from 'node:fs';
import { startSwtpm } from '../../tests/support/swtpm.js';

const h = (s: string) => createHash('sha256').update(s).digest('hex');
const ta = { name: 'bench', uuid: '6f1c7c52-8e0b-4d0e-9d2a-1c3b5a7d9e01', version: '1.0.0', measurement: h('m'), signerId: h('s'), productId: 1, securityVersion: 1, debug: false };

export default defineSuite({
  name: 'trust',
  async run(ctx) {
    // SoftHSM2 reads its token directory at first use: create the token before anything opens the module.
    const hsm = createSoftHsmToken();
    const dir = mkdtempSync(join(tmpdir(), 'ee-bench-trust-'));
    try {
      const software = await createRootOfTrust({ kind: 'software', stateDir: join(dir, 'sw') });
      const pkcs11 = await createRootOfTrust({ kind: 'pkcs11', stateDir: join(dir, 'hsm'), uri: hsm.uri });
      const sw = new Sealer(software);
      const hw = new Sealer(pkcs11);

      // 1 MiB seal / unseal vs raw AES-256-GCM on the same data.
      const mib = randomBytes(1 << 20);
      const key = randomBytes(32);
      const iv = randomBytes(12);
      const ctxBytes = Buffer.from('bench');
      const rawSeal = () => {
        const c = createCipheriv('aes-256-gcm', key, iv);
        c.setAAD(ctxBytes);
        const out = c.update(mib);
        c.final();
        return [out, c.getAuthTag()];
      };
      const [rawCt, rawTag] = rawSeal() as [Buffer, Buffer];
      const rawOpen = () => {
        const d = createDecipheriv('aes-256-gcm', key, iv);
        d.setAAD(ctxBytes);
        d.setAuthTag(rawTag);
        const out = d.update(rawCt);
        d.final();
        return out;
      };
      const blob = await sw.seal(ta, mib, { policy: 'product', context: ctxBytes });
      // Subject and baseline alternate call by call. In blocks of 40 the fresh-blob ratio read
      // 0.72–0.80× here while the same code alternated per call read 0.86–0.97×: blocks see
      // different moments of the machine's load and of GC over each other's 1 MiB buffers.
      const paired = (a: { label: string; fn: () => unknown }, b: { label: string; fn: () => unknown }) =>
        measureLatencyPaired(a, b, { iterations: 400, warmup: 40 }).then((m) => [m.subject, m.baseline] as const);
      const [sealM, rawSealM] = await paired(
        { label: 'Sealer.seal 1 MiB (software)', fn: () => sw.seal(ta, mib, { policy: 'product', context: ctxBytes }) },
        { label: 'node:crypto AES-256-GCM encrypt 1 MiB', fn: rawSeal },
      );
      const scratch = Buffer.allocUnsafe(mib.length + 64);
      const [sealReuseM, rawSealM2] = await paired(
        { label: 'Sealer.seal 1 MiB into a reused buffer', fn: () => sw.seal(ta, mib, { policy: 'product', context: ctxBytes, output: scratch }) },
        { label: 'node:crypto AES-256-GCM encrypt 1 MiB', fn: rawSeal },
      );
      const [unsealM, rawOpenM] = await paired(
        { label: 'Sealer.unseal 1 MiB (software)', fn: () => sw.unseal(ta, blob, { context: ctxBytes }) },
        { label: 'node:crypto AES-256-GCM decrypt 1 MiB', fn: rawOpen },
      );
      const sealRel = rawSealM.p50Us / sealM.p50Us;
      const unsealRel = rawOpenM.p50Us / unsealM.p50Us;
      const sealReuseRel = rawSealM2.p50Us / sealReuseM.p50Us;
      ctx.compare({
        name: 'seal 1 MiB (fresh blob)',
        subject: sealM,
        baseline: rawSealM,
        targets: [{ description: `seal throughput ≥ 0.85× raw AES-GCM (got ${sealRel.toFixed(2)}×)`, pass: sealRel >= 0.85 }],
        notes: 'the blob is header‖ciphertext‖tag in one new buffer: Node\'s Cipher cannot write into it, so one extra 1 MiB copy into fresh pages that the bare baseline does not make',
      });
      ctx.compare({
        name: 'seal 1 MiB (reused output buffer, the sealed-storage path)',
        subject: sealReuseM,
        baseline: rawSealM2,
        targets: [{ description: `seal throughput ≥ 0.85× raw AES-GCM (got ${sealReuseRel.toFixed(2)}×)`, pass: sealReuseRel >= 0.85 }],
      });
      ctx.compare({ name: 'unseal 1 MiB', subject: unsealM, baseline: rawOpenM, targets: [{ description: `unseal throughput ≥ 0.85× raw AES-GCM (got ${unsealRel.toFixed(2)}×)`, pass: unsealRel >= 0.85 }] });

      // 4 KiB seal ops/s: software vs pkcs11 (seal keys cached per identity after the first derivation).
      const kib4 = randomBytes(4096);
      const { subject: s4hw, baseline: s4sw } = await seals4k('pkcs11 root, SoftHSM2', hw, sw, kib4);
      ctx.compare({
        name: '4 KiB seal ops/s, pkcs11 vs software',
        subject: s4hw,
        baseline: s4sw,
        ratio: s4sw.opsPerSec / s4hw.opsPerSec,
        targets: [],
        notes: `software ${s4sw.opsPerSec.toFixed(0)} ops/s, pkcs11 ${s4hw.opsPerSec.toFixed(0)} ops/s (ratio ${(s4hw.opsPerSec / s4sw.opsPerSec).toFixed(2)}); keys are derived once per (policy, identity) and cached, so the token is not on the per-seal path`,
      });
      // What the cache saves: one derivation (HKDF-Expand; in the token for pkcs11).
      const info = Buffer.from('enclave-edge/v1/seal/product/bench');
      const dsw = await measureLatency('derive seal key (software HKDF)', () => software.deriveKey(info), { iterations: 2000 });
      const dhw = await measureLatency('derive seal key (pkcs11 HMAC in token)', () => pkcs11.deriveKey(info), { iterations: 2000 });
      ctx.compare({ name: 'seal key derivation, pkcs11 vs software', subject: dhw, baseline: dsw, targets: [], notes: 'paid once per (policy, TA identity) per process' });

      // Evidence: issue (software root) and verify.
      await initDeviceIdentity({ root: software, mode: 'self-signed' });
      const caPem = readFileSync(devicePaths(join(dir, 'sw')).ca, 'utf8');
      const svc = createTrustServices({ rootOfTrust: software });
      const nonce = randomBytes(16);
      const token = await svc.attest(ta, { nonce, tee: 'emulated', claims: { model: 'bench' } });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const signingInput = Buffer.from(token.slice(0, token.lastIndexOf('.')));
      const issue = await measureLatency('issue evidence (software root)', () => svc.attest(ta, { nonce, tee: 'emulated', claims: { model: 'bench' } }), { iterations: 2000 });
      const rawSign = await measureLatency('node:crypto ES256 sign of the same signing input', () => nodeSign('sha256', signingInput, { key: privateKey, dsaEncoding: 'ieee-p1363' }), { iterations: 2000 });
      ctx.compare({ name: 'evidence issue', subject: issue, baseline: rawSign, targets: [{ description: `issue p50 ≤ 1 ms (got ${(issue.p50Us / 1000).toFixed(3)} ms)`, pass: issue.p50Us <= 1000 }] });

      const policy = { allowEmulated: true };
      const ver = await measureLatency('verifyEvidence (chain cached, nonce, policy)', () => verifyEvidence(token, { trustAnchors: caPem, nonce, policy }), { iterations: 2000 });
      const cache = new MemoryReplayCache();
      const tokens = await Promise.all(Array.from({ length: 200 }, () => svc.attest(ta, { nonce, tee: 'emulated' })));
      let i = 0;
      const verReplay = await measureLatency('verifyEvidence + replay cache (fresh tokens)', () => verifyEvidence(tokens[i++ % tokens.length]!, { trustAnchors: caPem, nonce, policy, replayCache: i <= tokens.length ? cache : undefined }), { iterations: 200, warmup: 0 });
      const leafKey = await importX509(new X509Certificate(readFileSync(devicePaths(join(dir, 'sw')).chain)).toString(), 'ES256');
      const joseOnly = await measureLatency('jose compactVerify only (leaf key known)', () => compactVerify(token, leafKey), { iterations: 2000 });
      ctx.compare({ name: 'evidence verify', subject: ver, baseline: joseOnly, targets: [{ description: `verify p50 ≤ 2 ms (got ${(ver.p50Us / 1000).toFixed(3)} ms)`, pass: ver.p50Us <= 2000 }] });
      ctx.compare({ name: 'evidence verify with replay cache', subject: verReplay, baseline: joseOnly, targets: [{ description: `verify p50 ≤ 2 ms (got ${(verReplay.p50Us / 1000).toFixed(3)} ms)`, pass: verReplay.p50Us <= 2000 }] });

      await svc.close();
      await pkcs11.close();
      await tpmRows(ctx, dir, kib4, info, dsw);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      hsm.dispose();
    }
  },
});

/** 4 KiB seals with `subject`'s root vs the software root, call by call (keys cached after the first derivation). */
/**
 * 4 KiB seals, subject vs the software root. The two run the same code once keys are cached; at
 * ~8 µs a call, 5,000 calls are ~40 ms a side, and one pause of the shared host decided the ratio
 * (0.68× and 1.50× in consecutive runs, p50s equal). So: enough calls for pauses to average out,
 * and the pairing run twice with positions swapped, pooled.
 */
async function seals4k(what: string, subject: Sealer, sw: Sealer, kib4: Buffer): Promise<{ subject: Measurement; baseline: Measurement }> {
  const subj = { label: `seal 4 KiB (${what})`, fn: () => subject.seal(ta, kib4, { policy: 'product' }) };
  const base = { label: 'seal 4 KiB (software root)', fn: () => sw.seal(ta, kib4, { policy: 'product' }) };
  const opts = { iterations: 40_000, warmup: 500 };
  const a = await measureLatencyPaired(subj, base, opts);
  const b = await measureLatencyPaired(base, subj, opts);
  // p50 as the mean of the two runs' p50s, p99 as the worse; ops/s over all calls of both runs.
  const pool = (x: Measurement, y: Measurement): Measurement => ({
    label: x.label,
    samples: x.samples + y.samples,
    p50Us: (x.p50Us + y.p50Us) / 2,
    p99Us: Math.max(x.p99Us, y.p99Us),
    opsPerSec: (x.samples + y.samples) / (x.samples / x.opsPerSec + y.samples / y.opsPerSec),
  });
  return { subject: pool(a.subject, b.baseline), baseline: pool(a.baseline, b.subject) };
}

/** The tpm root on a real swtpm: derivation, NV increment and quote latency, 4 KiB seals and sealed-storage puts with epochs. */
async function tpmRows(ctx: BenchContext, dir: string, kib4: Buffer, info: Buffer, dsw: Measurement): Promise<void> {
  const swtpm = await startSwtpm();
  try {
    const software = await createRootOfTrust({ kind: 'software', stateDir: join(dir, 'sw-baseline') });
    const sw = new Sealer(software);
    const tpm = await createRootOfTrust({ kind: 'tpm', stateDir: join(dir, 'tpm'), tcti: swtpm.tcti });
    const tp = new Sealer(tpm);
    const { subject: s4tpm, baseline: s4sw } = await seals4k('tpm root, swtpm', tp, sw, kib4);
    const rel = s4tpm.opsPerSec / s4sw.opsPerSec;
    ctx.compare({
      name: '4 KiB seal ops/s, tpm vs software',
      subject: s4tpm,
      baseline: s4sw,
      ratio: s4sw.opsPerSec / s4tpm.opsPerSec,
      targets: [{ description: `tpm ≥ 0.9× software 4 KiB seals/s (got ${rel.toFixed(2)}×)`, pass: rel >= 0.9 }],
      notes: 'seal keys derived in the TPM once per (policy, identity) and cached',
    });
    const dtpm = await measureLatency('derive seal key (tpm: HMAC in the TPM via tpm2_hmac)', () => tpm.deriveKey(info), { iterations: 60, warmup: 5 });
    ctx.compare({ name: 'seal key derivation, tpm vs software', subject: dtpm, baseline: dsw, targets: [], notes: 'a tpm2-tools child process per call; paid once per (policy, TA identity) per process' });
    const read = await measureLatency('NV counter read (tpm2_nvread)', () => tpm.counter!.read(), { iterations: 60, warmup: 5 });
    const inc = await measureLatency('NV counter increment (tpm2_nvincrement + read)', () => tpm.counter!.increment(), { iterations: 60, warmup: 5 });
    ctx.compare({ name: 'NV counter increment latency (swtpm)', subject: inc, baseline: read, targets: [], notes: 'one per commit epoch, never per write' });
    const qd = randomBytes(32);
    const quote = await measureLatency('TPM quote sha256:0-7 (tpm2_quote)', () => tpm.quoter!.quote(qd), { iterations: 40, warmup: 3 });
    ctx.compare({ name: 'TPM quote latency (swtpm)', subject: quote, baseline: read, targets: [], notes: 'once per attest with the tpm root' });

    // Sealed-storage puts with an open epoch (the counter moves once per epoch, not per put).
    const tsvc = createTrustServices({ rootOfTrust: tpm, storageDir: join(dir, 'tpm-storage') });
    const ssvc = createTrustServices({ rootOfTrust: software, storageDir: join(dir, 'sw-storage') });
    const tstore = tsvc.storage(ta);
    const sstore = ssvc.storage(ta);
    const small = randomBytes(256);
    let k = 0;
    const { subject: putTpm, baseline: putSw } = await measureLatencyPaired(
      { label: 'sealed-storage put 256 B (tpm root, epochs)', fn: () => tstore.put(`k${k++ % 64}`, small) },
      { label: 'sealed-storage put 256 B (software root, no freshness)', fn: () => sstore.put(`k${k % 64}`, small) },
      { iterations: 2000, warmup: 100 },
    );
    ctx.compare({
      name: 'sealed-storage puts with epochs, sequential (one caller awaits each put)',
      subject: putTpm,
      baseline: putSw,
      ratio: putSw.opsPerSec / putTpm.opsPerSec,
      targets: [],
      notes: 'info: a lone put cannot share its flush; seal, temp file + fsync + rename + directory fsync (2 fsyncs), bound by the disk flush latency',
    });
    // The target's shape: 16 puts in flight to one TA's store; they group-commit (one directory fsync per batch).
    let g = 0;
    const oneSw = await measureThroughput('sealed-storage puts, 16 in flight, one TA (software root)', () => sstore.put(`g${g++ % 64}`, small), { total: 4000, concurrency: 16, warmup: 32 });
    const oneTpm = await measureThroughput('sealed-storage puts, 16 in flight, one TA (tpm root, epochs)', () => tstore.put(`g${g++ % 64}`, small), { total: 4000, concurrency: 16, warmup: 32 });
    ctx.compare({
      name: 'sealed-storage puts with epochs, 16 concurrent puts to one TA',
      subject: oneTpm,
      baseline: oneSw,
      ratio: oneSw.opsPerSec / oneTpm.opsPerSec,
      targets: [{ description: `≥ 1,000 puts/s with the tpm root, 16 concurrent puts to one TA (got ${oneTpm.opsPerSec.toFixed(0)})`, pass: oneTpm.opsPerSec >= 1000 }],
      notes: 'group commit: a batch of puts fsyncs its temp files concurrently and the folder once; each caller is answered when its batch is durable',
    });
    // A device runs several TAs: puts to 16 stores at once (one put in flight per store).
    const ids = Array.from({ length: 16 }, (_, n) => ({ ...ta, uuid: `6f1c7c52-8e0b-4d0e-9d2a-${String(n).padStart(12, '0')}` }));
    const tstores = ids.map((id) => tsvc.storage(id));
    const sstores = ids.map((id) => ssvc.storage(id));
    let r = 0;
    const aggSw = await measureThroughput('sealed-storage puts, 16 TAs at once (software root)', () => sstores[r++ % 16]!.put(`k${r % 8}`, small), { total: 3000, concurrency: 16, warmup: 32 });
    const aggTpm = await measureThroughput('sealed-storage puts, 16 TAs at once (tpm root, epochs)', () => tstores[r++ % 16]!.put(`k${r % 8}`, small), { total: 3000, concurrency: 16, warmup: 32 });
    ctx.compare({
      name: 'sealed-storage puts with epochs, 16 TAs at once',
      subject: aggTpm,
      baseline: aggSw,
      ratio: aggSw.opsPerSec / aggTpm.opsPerSec,
      targets: [],
      notes: 'info: aggregate over the device; stores flush independently (each folder its own fsync), so only the filesystem journal merges them',
    });
    await tsvc.close();
    await ssvc.close();
  } finally {
    await swtpm.stop();
  }
}
