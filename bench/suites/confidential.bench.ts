/**
 * Confidential calls, in the simulator with the real SDK:
 *  - invokeTA hello.echo sealed (ConfidentialClient, key cached) beside the same call plain,
 *    alternating call by call, from a caller process of its own (confidential-caller.ts);
 *  - what the cache amortises: a fresh evidence fetch + verification;
 *  - the envelope crypto alone (seal request, open, seal answer, open answer) in this process.
 */
import { readFileSync } from 'node:fs';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { aeadSeal } from '@enclave-edge/confidential/ta-crypto';
import { defineSuite, measureLatency, measureLatencyPaired, type Measurement } from '../lib.js';
import type { CallerConfig } from './confidential-caller.js';
import { eventually, startE2E } from '../../tests/e2e/harness.js';
import { generateHpkeKeyPair, openRequest, parseRequestEnvelope, sealRequest } from '@enclave-edge/confidential';

export default defineSuite({
  name: 'confidential',
  async run(ctx) {
    const t = await startE2E((m) => {
      const mods = m.modulesContent.$edgeAgent['properties.desired'].modules;
      mods.SimulatedTemperatureSensor.status = 'stopped';
      mods['ta-runtime'].env = { ...mods['ta-runtime'].env, RuntimeLogLevel: { value: 'warn' } };
      mods['host-module'].env = { ...mods['host-module'].env, RuntimeLogLevel: { value: 'warn' } };
    });
    try {
      await eventually(async () => {
        const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' }, 5);
        if (r.status !== 200) throw new Error(JSON.stringify(r));
      }, 60_000);
      const twin = (await t.hub.getModuleTwin(t.sim.deviceId, 'ta-runtime')) as any;
      const ca = readFileSync(twin.properties.reported.runtime.rootOfTrust.deviceCaPath as string, 'utf8');
      const config: CallerConfig = { serviceConnectionString: t.sim.serviceConnectionString, ca: t.ca, deviceId: t.sim.deviceId, trustAnchor: ca };
      const caller = fork(fileURLToPath(new URL('./confidential-caller.ts', import.meta.url)), [], { env: { ...process.env, BENCH_CONFIDENTIAL_CALLER: JSON.stringify(config) } });
      const [exit, message] = await Promise.race([
        once(caller, 'message').then(([m]) => ['message', m] as const),
        once(caller, 'exit').then(([code]) => ['exit', code] as const),
      ]).finally(() => caller.kill());
      if (exit !== 'message') throw new Error(`the bench caller process ended (code ${String(message)}) before reporting`);
      const { subject, baseline, ratios, evidence } = message as { subject: Measurement; baseline: Measurement; ratios: number[]; evidence: Measurement };
      ctx.compare({
        name: 'confidential invokeTA latency (caller in its own process)',
        subject,
        baseline,
        targets: [{ description: `p50 ≤ 1.3× plain (${(subject.p50Us / baseline.p50Us).toFixed(2)}×, the median of rounds ${ratios.map((r) => r.toFixed(2)).join(' ')})`, pass: subject.p50Us <= 1.3 * baseline.p50Us }],
      });
      ctx.compare({ name: 'evidence fetch + verify (amortised by the client cache)', subject: evidence, baseline: baseline, notes: 'once per TA per evidence lifetime (300 s by default); baseline: a plain invokeTA' });

      const params = (i: number) => ({ n: i, text: 'reading', values: [1.5, 2.5, 3.5] });
      const kp = await generateHpkeKeyPair();
      const m = 'ab'.repeat(32);
      let n = 0;
      const crypto = await measureLatency('envelope crypto: seal request + open + seal answer + open answer', async () => {
        const s = await sealRequest({ recipient: kp.publicKey, ta: 'hello', measurement: m, command: 'echo', params: params(n++) });
        const o = await openRequest(parseRequestEnvelope(s.envelope, { ta: 'hello', measurement: m }), kp.privateKey);
        await s.openResponse(o.sealResponse({ ok: true, result: o.params }));
      }, { iterations: 500, warmup: 50 });
      ctx.compare({ name: 'envelope crypto in one process (@hpke/core protocol; X25519, KDF and AEAD on node:crypto)', subject: crypto, baseline, notes: 'the part of the confidential overhead that is crypto; baseline: a plain invokeTA' });

      // ctx.crypto AEAD paths, 4 KiB: node:crypto AES-256-GCM (what A256GCM uses) beside
      // @noble/ciphers (XC20P, and its AES-256-GCM for scale), alternating.
      const key = new Uint8Array(randomBytes(32));
      const data = new Uint8Array(randomBytes(4096));
      const n12 = new Uint8Array(12);
      const n24 = new Uint8Array(24);
      const nodeGcm = { label: 'A256GCM seal 4 KiB (node:crypto)', fn: () => aeadSeal('A256GCM', key, n12, data) };
      const pairs: Array<[string, () => unknown]> = [
        ['XC20P seal 4 KiB (@noble/ciphers)', () => aeadSeal('XC20P', key, n24, data)],
        ['AES-256-GCM seal 4 KiB (@noble/ciphers, for scale)', () => gcm(key, n12).encrypt(data)],
      ];
      for (const [label, fn] of pairs) {
        const r = await measureLatencyPaired({ label, fn }, nodeGcm, { iterations: 3000, warmup: 300 });
        ctx.compare({ name: `ctx.crypto: ${label} vs node:crypto AES-256-GCM`, subject: r.subject, baseline: r.baseline });
      }
    } finally {
      await t.close();
    }
  },
});
