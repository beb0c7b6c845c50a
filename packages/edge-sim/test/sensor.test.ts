import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { startSimulator, type SimulatorHandle, type UpstreamMessage } from '@enclave-edge/edge-sim';
import {
  applyDesired,
  isResetCommand,
  parseTimeSpan,
  readSensorConfig,
  TemperatureSimulation,
  DEFAULT_SIMULATION,
} from '@enclave-edge/edge-sim/sensor';

describe('temperature simulation', () => {
  it('climbs from the minimum with bounded jitter, pressure tracks temperature, reset goes back', () => {
    let r = 0;
    const seq = [1, 0, 0.99, 0.5, 0, 0.5];
    const sim = new TemperatureSimulation(DEFAULT_SIMULATION, () => seq[r++ % seq.length]!, () => new Date('2026-01-02T03:04:05.000Z'));
    const a = sim.next(); // temp += -0.25 + 1*1.5; ambient += 0 - 0.5; humidity 24 + floor(0.99*3)
    expect(a).toEqual({
      machine: { temperature: 22.25, pressure: 1 + (22.25 - 21) * (9 / 79) },
      ambient: { temperature: 20.5, humidity: 26 },
      timeCreated: '2026-01-02T03:04:05.000Z',
    });
    const b = sim.next(); // += -0.25 + 0.5*1.5 = +0.5; ambient 21 + 0 - 0.5; humidity 24 + floor(0.5*3)=25
    expect(b.machine.temperature).toBeCloseTo(22.75);
    expect(b.ambient).toEqual({ temperature: 20.5, humidity: 25 });
    sim.reset();
    expect(sim.next().machine.temperature).toBeCloseTo(21 - 0.25 + 1 * 1.5); // the sequence wrapped to 1
  });

  it('stays in the documented ranges over a long run and wanders once above the maximum', () => {
    const sim = new TemperatureSimulation();
    let max = 0;
    for (let i = 0; i < 1000; i++) {
      const m = sim.next();
      expect(m.ambient.humidity).toBeGreaterThanOrEqual(24);
      expect(m.ambient.humidity).toBeLessThanOrEqual(26);
      expect(Math.abs(m.ambient.temperature - 21)).toBeLessThanOrEqual(0.5);
      expect(m.machine.pressure).toBeCloseTo(1 + (m.machine.temperature - 21) * (9 / 79));
      max = Math.max(max, m.machine.temperature);
    }
    expect(max).toBeGreaterThan(100);
    expect(max).toBeLessThan(140);
  });
});

describe('sensor configuration', () => {
  it('has the original defaults', () => {
    expect(readSensorConfig({})).toEqual({ messageCount: 500, messageDelayMs: 5000, sendData: true, simulation: DEFAULT_SIMULATION });
  });
  it('reads MessageCount, MessageDelay (TimeSpan) or SendInterval, and simulation parameters', () => {
    const c = readSensorConfig({ MessageCount: '-1', MessageDelay: '00:00:00.25', machineTempMax: '50', ambientTemp: '10' });
    expect(c.messageCount).toBe(-1);
    expect(c.messageDelayMs).toBe(250);
    expect(c.simulation).toMatchObject({ machineTempMax: 50, ambientTemp: 10, machineTempMin: 21 });
    expect(readSensorConfig({ SendInterval: '2' }).messageDelayMs).toBe(2000);
    expect(parseTimeSpan('1.02:03:04')).toBe(((24 + 2) * 3600 + 3 * 60 + 4) * 1000);
    expect(parseTimeSpan('00:01')).toBe(60_000);
    expect(parseTimeSpan('soon')).toBeUndefined();
    expect(() => readSensorConfig({ MessageCount: 'many' })).toThrow(/MessageCount=many is not a number/);
    expect(() => readSensorConfig({ MessageDelay: 'soon' })).toThrow(/MessageDelay=soon is not a time span/);
  });
  it('applies desired SendInterval and SendData and ignores the rest', () => {
    const c = readSensorConfig({});
    expect(applyDesired(c, { SendInterval: 1, SendData: false, $version: 3, other: 'x' })).toEqual(['SendInterval', 'SendData']);
    expect(c).toMatchObject({ messageDelayMs: 1000, sendData: false });
    expect(applyDesired(c, { SendInterval: 'fast' })).toEqual([]);
  });
  it('recognises control reset commands like the original', () => {
    expect(isResetCommand({ command: 'reset' })).toBe(true);
    expect(isResetCommand({ command: 'Reset' })).toBe(true);
    expect(isResetCommand({ command: 0 })).toBe(true);
    expect(isResetCommand([{ command: 1 }, { command: 'reset' }])).toBe(true);
    expect(isResetCommand({ command: 1 })).toBe(false);
    expect(isResetCommand(null)).toBe(false);
  });
});

describe('the built-in sensor as a module process under the simulator (real SDK, MQTT/TLS)', () => {
  let dir: string;
  let sim: SimulatorHandle;
  const upstream: UpstreamMessage[] = [];
  let out = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sensor-e2e-'));
    const output = new PassThrough();
    output.on('data', (c: Buffer) => (out += c.toString()));
    sim = await startSimulator({
      manifest: {
        modulesContent: {
          $edgeAgent: {
            'properties.desired': {
              schemaVersion: '1.1',
              modules: {
                SimulatedTemperatureSensor: {
                  type: 'docker',
                  status: 'running',
                  restartPolicy: 'always',
                  settings: { image: 'mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5' },
                  env: { MessageCount: { value: 3 }, MessageDelay: { value: '00:00:00.1' } },
                },
              },
            },
          },
          $edgeHub: {
            'properties.desired': {
              schemaVersion: '1.2',
              routes: {
                sensorToUpstream: 'FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput INTO $upstream',
                controlToSensor: 'FROM /messages/modules/controller/outputs/control INTO BrokeredEndpoint("/modules/SimulatedTemperatureSensor/inputs/control")',
              },
              storeAndForwardConfiguration: { timeToLiveSecs: 60 },
            },
          },
        },
      },
      repoRoot: dir,
      stateDir: join(dir, '.edge-sim'),
      mqttPort: 0,
      httpsPort: 0,
      writeState: false,
      extraModules: ['controller'],
      moduleOutput: output,
      log: () => {},
    });
    sim.onUpstream((m) => upstream.push(m));
  });

  afterAll(async () => {
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; module output so far:\n${out}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('sends MessageCount messages on temperatureOutput with the original shape and properties', async () => {
    await until(() => upstream.length >= 3 && out.includes('Done sending 3 messages'), 'three messages');
    expect(upstream).toHaveLength(3);
    const batch = upstream[0]!.properties.batchId;
    upstream.forEach((m, i) => {
      expect(m.moduleId).toBe('SimulatedTemperatureSensor');
      expect(m.output).toBe('temperatureOutput');
      expect(m.systemProperties['$.ct']).toBe('application/json');
      expect(m.systemProperties['$.ce']).toBe('utf-8');
      expect(m.properties).toEqual({ sequenceNumber: String(i + 1), batchId: batch });
      const body = JSON.parse(m.body.toString('utf8'));
      expect(Object.keys(body)).toEqual(['machine', 'ambient', 'timeCreated']);
      expect(typeof body.machine.temperature).toBe('number');
      expect(typeof body.machine.pressure).toBe('number');
      expect([24, 25, 26]).toContain(body.ambient.humidity);
      expect(Number.isNaN(Date.parse(body.timeCreated))).toBe(false);
    });
    expect(out).toMatch(/\[SimulatedTemperatureSensor\] <6> \S+ \[INF\] - Sending message: 1, Body: \[\{"machine"/);
    // Like the original, it stays up after the last message.
    expect(sim.supervisor.status().find((s) => s.name === 'SimulatedTemperatureSensor')).toMatchObject({ state: 'running', restarts: 0 });
  });

  it('answers the reset direct method with 200', async () => {
    const r = await sim.hub.invokeMethod('SimulatedTemperatureSensor', 'reset', null, 10);
    expect(r.status).toBe(200);
    await until(() => out.includes('Received direct method call to reset temperature sensor'), 'reset log line');
  });

  it('reports SendInterval and SendData back after a desired patch', async () => {
    sim.hub.patchDesired('SimulatedTemperatureSensor', { SendInterval: 7, SendData: false });
    await until(() => {
      const twin = sim.hub.twins.serviceView('SimulatedTemperatureSensor', true) as { properties?: { reported?: Record<string, unknown> } };
      return twin.properties?.reported?.SendInterval === 7 && twin.properties?.reported?.SendData === false;
    }, 'reported properties');
    expect(out).toContain('Sending data disabled. Change twin configuration to start sending again.');
  });

  it('resets when another module sends {"command":"reset"} to its control input through a route', async () => {
    const client = device.ModuleClient.fromConnectionString(sim.moduleConnectionString('controller'), deviceMqtt.Mqtt);
    client.setOptions({ ca: readFileSync(sim.caCertPath, 'utf8') });
    try {
      await client.open();
      const m = new device.Message(JSON.stringify({ command: 'reset' }));
      m.contentType = 'application/json';
      m.contentEncoding = 'utf-8';
      await client.sendOutputEvent('control', m);
      await until(() => out.includes('Received message Body: [{"command":"reset"}]') && out.includes('Resetting temperature sensor..'), 'control message handled');
    } finally {
      await client.close();
    }
  });
});
