/**
 * The unmodified azure-iothub SDK, ModuleClient.invokeMethod, MqttWs, AmqpWs and @azure/event-hubs
 * over WebSockets dial port 443 whatever the connection string says (Amqp dials 5671). These tests run the simulator and those clients as an ordinary user
 * (uid 65534) in a network namespace of their own (so no other simulator on this machine holds
 * 443 and the port rule is the kernel default): once with the documented one-time setting, once
 * without, where `sim up` must say exactly what to run.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chownSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { StateDir } from '@enclave-edge/edge-sim';
import { fixtureManifest, here } from './helpers.js';
import { tempDir } from '../support/temp-dir.js';

const NOBODY = 65534;
const script = join(here, 'fixtures', 'clients', 'sdk-on-443.mjs');

/** Can this machine give a child its own network namespace and drop it to another user? */
function namespacesAvailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to make a network namespace and drop to uid 65534';
  const r = spawnSync('unshare', ['--net', '--', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'true']);
  return r.status === 0 ? undefined : `unshare --net / setpriv unavailable: ${String(r.stderr || r.error)}`;
}
const unavailable = namespacesAvailable();

async function runAsNobody(sysctl443: boolean): Promise<Record<string, any>> {
  const { dir, cleanup } = tempDir('edge-sim-nobody-');
  try {
    const state = join(dir, 'state');
    await StateDir.open(state); // the CA must exist before the client process starts (NODE_EXTRA_CA_CERTS)
    const chownAll = (p: string): void => {
      chownSync(p, NOBODY, NOBODY);
      for (const e of readdirSync(p, { withFileTypes: true })) e.isDirectory() ? chownAll(join(p, e.name)) : chownSync(join(p, e.name), NOBODY, NOBODY);
    };
    chownAll(dir);
    const setup = ['ip link set lo up', ...(sysctl443 ? ['echo 443 > /proc/sys/net/ipv4/ip_unprivileged_port_start'] : [])].join(' && ');
    const r = spawnSync(
      'unshare',
      ['--net', '--', 'sh', '-c', `${setup} && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups "$@"`, 'sh', 'env', `HOME=${dir}`, `PATH=${process.env.PATH}`, `NODE_EXTRA_CA_CERTS=${join(state, 'ca.pem')}`, process.execPath, script, state, fixtureManifest],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) throw new Error(`client run failed (${r.status}): ${r.stderr.slice(-2000)}`);
    return JSON.parse(line);
  } finally {
    cleanup();
  }
}

/** What the script records for an AMQP module that works: a method answered, an output routed to $upstream. */
const amqpWorks = (moduleId: string, over: string) => ({
  method: { status: 200, payload: { over, got: { n: 2 } } },
  upstream: { moduleId, output: 'telemetry', body: { over }, properties: { k: 'v' } },
});

describe.skipIf(unavailable)(`official clients as an ordinary user${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  describe('with net.ipv4.ip_unprivileged_port_start=443 (the documented one-time setting)', () => {
    let r: Record<string, any>;
    beforeAll(async () => {
      r = await runAsNobody(true);
    }, 150_000);

    it('the simulator takes 443 and 8883 and hands out a connection string with no port', () => {
      expect(r.uid).toBe(NOBODY);
      expect([r.httpsPort, r.mqttPort]).toEqual([443, 8883]);
      expect(r.serviceConnectionString).toMatch(/^HostName=localhost;SharedAccessKeyName=iothubowner;/);
      expect(r.advice).toBe('');
    });

    it('azure-iothub Client.invokeDeviceMethod and Registry.getModuleTwin work unchanged', () => {
      expect(r.method).toEqual({ status: 200, payload: { hello: 'from azure-iothub' } });
      expect(r.moduleTwin).toMatchObject({ greeting: 'hello', nested: { x: 1 } });
    });

    it("errors reach the SDK in IoT Hub's shape, so its error carries the message", () => {
      expect(r.wrongDevice.name).toBe('DeviceNotFoundError');
      expect(r.wrongDevice.error).toMatch(/Device no-such-device not found/);
    });

    it('a module over MqttWs (wss://…:443/$iothub/websocket) gets methods and writes its twin', () => {
      expect(r.wsMethod).toEqual({ status: 200, payload: { over: 'MqttWs', got: { n: 1 } } });
      expect(r.wsTwin).toBe('MqttWs');
    });

    it('a back end reads $upstream with @azure/event-hubs over WebSockets (wss://…:443/$servicebus/websocket) on the connection string with no port', () => {
      expect([r.amqpPort, r.eventHubConnectionString]).toEqual([5671, expect.stringMatching(/^Endpoint=sb:\/\/localhost\/;/)]);
      expect(r.eventHubWs).toEqual({ body: { over: 'AMQPWSB10' }, properties: { k: 'v' }, moduleId: 'probeA', dialled: ['wss://localhost:443/$servicebus/websocket'] });
    });

    it('a module over AmqpWs (wss://…:443/$iothub/websocket, AMQPWSB10) answers a method and its output reaches $upstream', () => {
      expect(r.amqpWs).toEqual(amqpWorks('amqpWsProbe', 'AmqpWs'));
    });

    it('a module over Amqp (5671) answers a method and its output reaches $upstream', () => {
      expect(r.amqp).toEqual(amqpWorks('amqpProbe', 'Amqp'));
    });

    it('module-to-module methods with the unmodified ModuleClient.invokeMethod, both ways', () => {
      expect(r.moduleToModule).toEqual({ m2m: true });
      expect(r.probeToWs).toEqual({ ok: true, result: { status: 200, payload: { over: 'MqttWs', got: { from: 'probeA' } } } });
    });
  });

  describe('without it', () => {
    let r: Record<string, any>;
    beforeAll(async () => {
      r = await runAsNobody(false);
    }, 150_000);

    it('the simulator still starts, on another HTTPS port, and says exactly what to run', () => {
      expect(r.httpsPort).not.toBe(443);
      expect(r.advice).toContain('HTTPS port 443 on 127.0.0.1 is not available (EACCES)');
      expect(r.advice).toContain(
        'The azure-iothub service SDK, ModuleClient.invokeMethod (module-to-module), modules over MQTT over WebSockets (MqttWs) and AMQP over WebSockets (AmqpWs), and the Event Hub-compatible endpoint over WebSockets (@azure/event-hubs with webSocketOptions) always dial 443 and cannot reach ' +
          `${r.httpsPort}.`,
      );
      expect(r.advice).toContain(`@azure/event-hubs alone can be told this port: pass customEndpointAddress: 'https://<host>:${r.httpsPort}' (serviceUrl in sim credentials --json).`);
      expect(r.advice).toContain("sudo sysctl -w net.ipv4.ip_unprivileged_port_start=443 && echo 'net.ipv4.ip_unprivileged_port_start=443' | sudo tee /etc/sysctl.d/60-edge-sim.conf");
      expect(r.advice).toMatch(/sudo setcap cap_net_bind_service=\+ep \/\S+node/);
    });

    it('the clients it names then fail as they would, which is why the advice is printed', () => {
      expect(r.method.code).toBe('ENOTFOUND');
      expect(r.mqttWs).toMatchObject({ name: 'UnauthorizedError', error: expect.stringContaining('connect ECONNREFUSED 127.0.0.1:443') });
      expect(r.amqpWs).toMatchObject({ name: 'NotConnectedError', error: 'rhea: connection disconnected' });
    });

    it('a module over Amqp (5671, not a privileged port) still connects, answers a method and sends to $upstream', () => {
      expect(r.amqp).toEqual(amqpWorks('amqpProbe', 'Amqp'));
    });
  });
});
