/**
 * The module pair in the simulator, real SDK end to end:
 *  - invokeTA hello.ping: service API → host-module → edgeHub → ta-runtime → enclave → back,
 *    beside a raw direct method to a trivial module (same service API and edgeHub) in the same run.
 *  - the sensor pipeline (sensor input → sensor-signer.sign → output signed → $upstream), beside
 *    the same messages routed straight to $upstream.
 */
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { defineSuite, measureLatency, measureThroughput, type Measurement } from '../lib.js';
import { eventually, startE2E } from '../../tests/e2e/harness.js';

async function pipelineRate(label: string, send: (i: number) => Promise<unknown>, received: () => number, total: number): Promise<Measurement> {
  const start = received();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < total) await send(next++);
  }));
  await eventually(() => {
    if (received() - start < total) throw new Error(`${received() - start}/${total}`);
  }, 120_000, 5);
  const ms = performance.now() - t0;
  return { label, samples: total, p50Us: NaN, p99Us: NaN, opsPerSec: (total / ms) * 1000 };
}

/**
 * The simulator's edgeHub leaves Nagle's algorithm on for its MQTT sockets (reported to its
 * owner); every module-to-module hop then waits ~40 ms for a delayed ACK. The real edgeHub
 * sets TCP_NODELAY, so the bench does the same for the in-process simulator's server sockets.
 * Set BENCH_SIM_NAGLE=1 to measure without this.
 */
function simServerNoDelay(): void {
  if (process.env.BENCH_SIM_NAGLE) return;
  const original = tls.createServer;
  (tls as { createServer: typeof tls.createServer }).createServer = ((opts: tls.TlsOptions, listener?: (s: tls.TLSSocket) => void) =>
    original({ ...opts, noDelay: true } as tls.TlsOptions, listener)) as typeof tls.createServer;
}

export default defineSuite({
  name: 'modules',
  async run(ctx) {
    simServerNoDelay();
    const t = await startE2E((m) => {
      const mods = m.modulesContent.$edgeAgent['properties.desired'].modules;
      mods.SimulatedTemperatureSensor.status = 'stopped';
      mods['ta-runtime'].env.RuntimeLogLevel = { value: 'warn' };
      mods['host-module'].env.RuntimeLogLevel = { value: 'warn' };
      const routes = m.modulesContent.$edgeHub['properties.desired'].routes;
      routes.loadToSensor = 'FROM /messages/modules/fuzzer/outputs/sensor INTO BrokeredEndpoint("/modules/host-module/inputs/sensor")';
      routes.loadRaw = 'FROM /messages/modules/fuzzer/outputs/raw INTO $upstream';
    });
    const trivial = device.ModuleClient.fromConnectionString(t.sim.moduleConnectionString('fuzzer'), deviceMqtt.Mqtt);
    try {
      trivial.setOptions({ ca: t.ca });
      await trivial.open();
      trivial.onMethod('ping', (_req, res) => void res.send(200, { result: 'pong' }));
      await eventually(async () => {
        const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' }, 5);
        if (r.status !== 200) throw new Error(JSON.stringify(r));
      }, 60_000);
      const invokeTA = async () => {
        const r = await t.invoke('host-module', 'invokeTA', { ta: 'hello', command: 'ping' });
        if (r.status !== 200) throw new Error(`invokeTA answered ${r.status}`);
      };
      const raw = async () => {
        const r = await t.invoke('fuzzer', 'ping', {});
        if (r.status !== 200) throw new Error(`raw method answered ${r.status}`);
      };

      const baseline = await measureLatency('raw direct method (trivial module)', raw, { iterations: 600, warmup: 100 });
      const subject = await measureLatency('invokeTA hello.ping end to end', invokeTA, { iterations: 600, warmup: 100 });
      ctx.compare({
        name: 'invokeTA latency',
        subject,
        baseline,
        targets: [
          { description: `p50 ≤ 3× raw direct method (${(subject.p50Us / baseline.p50Us).toFixed(2)}×)`, pass: subject.p50Us <= 3 * baseline.p50Us },
          { description: `p99 ≤ 15 ms (${(subject.p99Us / 1000).toFixed(2)} ms)`, pass: subject.p99Us <= 15_000 },
        ],
      });

      const rawTp = await measureThroughput('raw direct method, 64 in flight', raw, { total: 4000, concurrency: 64 });
      const tp = await measureThroughput('invokeTA hello.ping, 64 in flight', invokeTA, { total: 4000, concurrency: 64 });
      ctx.compare({
        name: 'invokeTA throughput',
        subject: tp,
        baseline: rawTp,
        ratio: rawTp.opsPerSec / tp.opsPerSec,
        targets: [{ description: `≥ 1,000 invocations/s with 64 in flight (${tp.opsPerSec.toFixed(0)}/s)`, pass: tp.opsPerSec >= 1000 }],
      });

      const reading = (i: number) => JSON.stringify({ machine: { temperature: 20 + (i % 10), pressure: 1.1 }, ambient: { temperature: 21, humidity: 25 }, timeCreated: new Date().toISOString() });
      const count = (output: string) => () => t.upstream.reduce((n, m) => n + (m.output === output ? 1 : 0), 0);
      let signed = 0;
      let rawSeen = 0;
      t.sim.onUpstream((m) => {
        if (m.output === 'signed') signed++;
        else if (m.output === 'raw') rawSeen++;
      });
      void count;
      const send = (output: string) => (i: number) => {
        const msg = new device.Message(reading(i));
        msg.contentType = 'application/json';
        msg.contentEncoding = 'utf-8';
        return trivial.sendOutputEvent(output, msg);
      };
      await pipelineRate('warmup', send('sensor'), () => signed, 500);
      const rawRate = await pipelineRate('sensor messages straight to $upstream', send('raw'), () => rawSeen, 5000);
      const pipeRate = await pipelineRate('sensor → host-module → sensor-signer → $upstream', send('sensor'), () => signed, 5000);
      ctx.compare({
        name: 'sensor pipeline',
        subject: pipeRate,
        baseline: rawRate,
        ratio: rawRate.opsPerSec / pipeRate.opsPerSec,
        targets: [{ description: `≥ 2,000 messages/s (${pipeRate.opsPerSec.toFixed(0)}/s)`, pass: pipeRate.opsPerSec >= 2000 }],
        notes: 'throughput runs: p50/p99 not measured per message',
      });
    } finally {
      await trivial.close().catch(() => undefined);
      await t.close();
    }
  },
});
