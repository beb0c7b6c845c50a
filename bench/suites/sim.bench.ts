// The simulator's hot paths, each beside a raw aedes baseline measured in the same run:
//  1. direct method round trip: service API (HTTPS) → edgeHub → SDK module (child process) → back,
//     vs a raw MQTT request/response through a bare aedes broker (TLS, same certificate);
//  2. routed messages/s with 64 in flight: module output → route → module input (QoS 1, TLS),
//     vs raw aedes publish → subscriber forwarding with the same 64 in flight; the MQTT clients
//     run in a child process (tests/sim/fixtures/mqtt-load.mjs), as real modules do.
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import { Aedes } from 'aedes';
import { startSimulator, createSas } from '@enclave-edge/edge-sim';
import { HubClient } from '@enclave-edge/hub-client';
import { defineSuite, measureLatency, type Measurement } from '../lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtureRepo = join(here, '..', '..', 'tests', 'sim', 'fixtures', 'repo');
const DEVICE = 'edge-sim-device';

function manifest(): Record<string, unknown> {
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: {} },
          systemModules: {
            edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.6' } },
            edgeHub: { type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.6' } },
          },
          modules: {
            echo: { type: 'docker', status: 'running', restartPolicy: 'always', settings: { image: '${MODULES.probe}' } },
            sender: { type: 'docker', status: 'stopped', restartPolicy: 'never', settings: { image: '${MODULES.probe}' } },
            receiver: { type: 'docker', status: 'stopped', restartPolicy: 'never', settings: { image: '${MODULES.probe}' } },
          },
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.2',
          routes: { r: 'FROM /messages/modules/sender/outputs/out INTO BrokeredEndpoint("/modules/receiver/inputs/in")' },
          storeAndForwardConfiguration: { timeToLiveSecs: 60 },
        },
      },
    },
  };
}

function connect(url: string, o: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, ...o });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

function subscribe(c: mqtt.MqttClient, topic: string, qos: 0 | 1): Promise<void> {
  return new Promise((resolve, reject) => c.subscribe(topic, { qos }, (err, g) => (err || g?.[0]?.qos === 128 ? reject(err ?? new Error(`refused ${topic}`)) : resolve())));
}

/** Match replies to requests by a counter carried in the payload. */
class Waiters {
  private next = 0;
  private readonly map = new Map<number, () => void>();
  add(): { id: number; done: Promise<void> } {
    const id = this.next++;
    return { id, done: new Promise<void>((resolve) => this.map.set(id, resolve)) };
  }
  resolve(id: number): void {
    const r = this.map.get(id);
    if (r) {
      this.map.delete(id);
      r();
    }
  }
}

const loadScript = join(here, '..', '..', 'tests', 'sim', 'fixtures', 'mqtt-load.mjs');

/** Run the load generator in a child process and read its one-line JSON result. */
async function runLoad(label: string, job: Record<string, unknown>): Promise<Measurement> {
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [loadScript, JSON.stringify(job)], { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${label}: ${stderr || err.message}`)) : resolve(stdout))),
  );
  return { label, ...(JSON.parse(out.trim().split('\n').pop()!) as Omit<Measurement, 'label'>) };
}

export default defineSuite({
  name: 'sim',
  async run(ctx) {
    const stateDir = mkdtempSync(join(tmpdir(), 'edge-sim-bench-'));
    const sim = await startSimulator({
      manifest: manifest(),
      repoRoot: fixtureRepo,
      stateDir,
      mqttPort: 0,
      httpsPort: 0,
      writeState: false,
      log: () => {},
      moduleOutput: new (await import('node:stream')).PassThrough().resume(),
    });
    const ca = readFileSync(sim.caCertPath, 'utf8');
    const hub = HubClient.fromConnectionString(sim.serviceConnectionString, { ca });
    const clients: mqtt.MqttClient[] = [];
    let bare: Aedes | undefined;
    let bareServer: tls.Server | undefined;
    try {
      // Wait for the SDK echo module.
      for (let i = 0; ; i++) {
        try {
          await hub.invokeModuleMethod(DEVICE, 'echo', { methodName: 'echo', payload: 0, responseTimeoutInSeconds: 5 });
          break;
        } catch (err) {
          if (i > 200) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }

      // ---- baseline: a bare aedes over TLS with the same certificate, no auth/ACL/routing ----
      const statePem = { key: readFileSync(join(stateDir, 'server-key.pem'), 'utf8'), cert: readFileSync(join(stateDir, 'server.pem'), 'utf8') };
      bare = new Aedes();
      await bare.listen();
      const b = bare;
      bareServer = tls.createServer(statePem, (s) => b.handle(s));
      await new Promise<void>((r) => bareServer!.listen(0, '127.0.0.1', () => r()));
      const bareUrl = `mqtts://localhost:${(bareServer.address() as AddressInfo).port}`;
      const req = await connect(bareUrl, { clientId: 'req', ca });
      const res = await connect(bareUrl, { clientId: 'res', ca });
      clients.push(req, res);
      await subscribe(res, 'req/#', 0);
      await subscribe(req, 'res/#', 0);
      res.on('message', (topic, payload) => res.publish(`res/${topic.slice(4)}`, payload, { qos: 0 }));
      const rr = new Waiters();
      req.on('message', (topic) => rr.resolve(Number(topic.slice(4))));
      const rawRtt = await measureLatency(
        'raw aedes MQTT request/response (TLS)',
        () => {
          const w = rr.add();
          req.publish(`req/${w.id}`, '{"x":1}', { qos: 0 });
          return w.done;
        },
        { iterations: 3000, warmup: 300 },
      );
      const method = await measureLatency(
        'service API → edgeHub → SDK module → back',
        () => hub.invokeModuleMethod(DEVICE, 'echo', { methodName: 'echo', payload: { x: 1 }, responseTimeoutInSeconds: 5 }),
        { iterations: 2000, warmup: 200 },
      );
      ctx.compare({
        name: 'direct method round trip',
        subject: method,
        baseline: rawRtt,
        targets: [
          { description: 'p50 ≤ 2 ms', pass: method.p50Us <= 2000 },
          { description: 'p99 ≤ 10 ms', pass: method.p99Us <= 10_000 },
        ],
        notes: 'subject includes HTTPS (keep-alive), SAS check, JSON and the SDK in a child process; baseline is MQTT only',
      });

      // ---- routed messages/s, 64 in flight (clients in their own process, like real modules) ----
      const key = (m: string) => /SharedAccessKey=([^;]+)/.exec(sim.moduleConnectionString(m))![1]!;
      const simUrl = `mqtts://localhost:${sim.mqttPort}`;
      const asModule = (m: string) => ({
        url: simUrl,
        clientId: `${DEVICE}/${m}`,
        username: `${sim.hubHostName}/${DEVICE}/${m}/?api-version=2021-04-12`,
        password: createSas(`${sim.hubHostName}/devices/${DEVICE}/modules/${m}`, key(m)),
      });
      const load = { ca, total: 30_000, concurrency: 64, warmup: 1000 };
      const routedRun = await runLoad('module output → route → module input (QoS 1)', {
        ...load,
        pub: asModule('sender'),
        sub: asModule('receiver'),
        subscribe: `devices/${DEVICE}/modules/receiver/inputs/#`,
        publishTopic: `devices/${DEVICE}/modules/sender/messages/events/%24.on=out&k=v`,
      });
      const rawFwd = await runLoad('raw aedes publish → subscriber (QoS 1, TLS)', {
        ...load,
        pub: { url: bareUrl, clientId: 'pub' },
        sub: { url: bareUrl, clientId: 'sub' },
        subscribe: 'fwd/#',
        publishTopic: 'fwd/x',
      });
      ctx.compare({
        name: 'routed messages/s, 64 in flight',
        subject: routedRun,
        baseline: rawFwd,
        ratio: rawFwd.opsPerSec / routedRun.opsPerSec,
        targets: [{ description: '≥ 10,000 routed msg/s', pass: routedRun.opsPerSec >= 10_000 }],
        notes: 'publisher and subscriber run in a separate process (mqtt.js), as modules do; broker and route in the bench process',
      });
    } finally {
      for (const c of clients) c.end(true);
      hub.close();
      if (bareServer) await new Promise<void>((r) => bareServer!.close(() => r()));
      if (bare) await new Promise<void>((r) => bare!.close(() => r()));
      await sim.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  },
});
