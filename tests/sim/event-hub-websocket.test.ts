/**
 * The Event Hub-compatible endpoint over AMQP over WebSockets, as the unmodified @azure/event-hubs
 * EventHubConsumerClient dials it with `webSocketOptions: { webSocket: WebSocket }` (the `ws`
 * package): wss://<host>:443/$servicebus/websocket, subprotocol AMQPWSB10, the same CBS SAS auth
 * as AMQP over TLS on 5671, which keeps serving next to it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import WebSocket from 'ws';
import { eventually, startTestSim, type TestSim } from './helpers.js';
import { startSimOnStandardPorts } from './official-clients.js';
import { EhConsumer, expectIotHubAnnotations } from './eh-consumer.js';

const telemetry = (body: unknown, extra: Record<string, unknown> = {}) => ({ output: 'telemetry', body, contentType: 'application/json', ...extra });
const send = (t: TestSim, messages: unknown[]) => t.invoke('probeA', 'send', { messages });
const wrongKey = (cs: string) => cs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);

describe('Event Hub-compatible endpoint over WebSockets (standard ports)', () => {
  let t: TestSim;
  let overWs: EhConsumer;
  let overTls: EhConsumer;

  beforeAll(async () => {
    t = await startSimOnStandardPorts();
    await eventually(() => t.invoke('probeA', 'whoami'));
    [overWs, overTls] = await Promise.all([
      EhConsumer.start(t.sim.eventHubConnectionString, t.sim.caCertPath, { webSockets: true }),
      EhConsumer.start(t.sim.eventHubConnectionString, t.sim.caCertPath),
    ]);
  }, 60_000);

  afterAll(async () => {
    overWs?.kill();
    overTls?.kill();
    await t?.close();
  });

  it('reads from earliest over wss://<host>:443/$servicebus/websocket (AMQPWSB10): order, sequence numbers, annotations, properties', async () => {
    await send(t, [telemetry({ n: 1 }, { messageId: 'm-1', correlationId: 'c-1', properties: { site: 'north', level: 'high' } }), telemetry({ n: 2 }), telemetry({ n: 'last-early' })]);
    const events = (await overWs.ask({ op: 'subscribe', from: 'earliest', untilBody: { n: 'last-early' } }).result) as any[];
    expect(events.map((e) => e.body)).toEqual([{ n: 1 }, { n: 2 }, { n: 'last-early' }]);
    expect(events.map((e) => e.sequenceNumber)).toEqual([0, 1, 2]);
    const [first] = events;
    expect(first.properties).toEqual({ site: 'north', level: 'high' });
    expect([first.messageId, first.correlationId, first.contentType]).toEqual(['m-1', 'c-1', 'application/json']);
    expectIotHubAnnotations(first, t.sim.deviceId, 'probeA');
    // What the client dialled: nothing but the WebSocket endpoint.
    const dialled = (await overWs.ask({ op: 'dialled' }).result) as Array<{ url: string; protocols: string[] }>;
    expect(dialled.length).toBeGreaterThan(0);
    for (const d of dialled) expect(d).toEqual({ url: `wss://${t.sim.host}:443/$servicebus/websocket`, protocols: ['AMQPWSB10'] });
  });

  it('reads from latest over WebSockets: only what is enqueued after the receivers attach', async () => {
    const before = t.sim.eventHubReceivers();
    const sub = overWs.ask({ op: 'subscribe', from: 'latest', untilBody: { n: 'last-late' } });
    await eventually(() => expect(overWs.readySubs.has(sub.id) && t.sim.eventHubReceivers() >= before + 4).toBe(true));
    await send(t, [telemetry({ n: 'late-1' }, { properties: { k: 'v' } }), telemetry({ n: 'last-late' })]);
    const events = (await sub.result) as any[];
    expect(events.map((e) => e.body)).toEqual([{ n: 'late-1' }, { n: 'last-late' }]);
    expect(events[0].properties).toEqual({ k: 'v' });
    expect(events.map((e) => e.sequenceNumber)).toEqual([3, 4]);
  });

  it('AMQP over TLS on 5671 serves the same stream alongside, with the same sequence numbers and offsets', async () => {
    const [ws, tls] = (await Promise.all([
      overWs.ask({ op: 'subscribe', from: 'earliest', group: 'ws-group', untilBody: { n: 'last-late' } }).result,
      overTls.ask({ op: 'subscribe', from: 'earliest', untilBody: { n: 'last-late' } }).result,
    ])) as any[][];
    const key = (e: any) => ({ body: e.body, sequenceNumber: e.sequenceNumber, offset: e.offset, partitionId: e.partitionId });
    expect(tls!.map(key)).toEqual(ws!.map(key));
    expect(tls!.map((e) => e.body)).toEqual([{ n: 1 }, { n: 2 }, { n: 'last-early' }, { n: 'late-1' }, { n: 'last-late' }]);
    expect(await overTls.ask({ op: 'dialled' }).result).toEqual([]);
  });

  it('refuses a wrong key over WebSockets, and keeps serving the right one', async () => {
    const bad = await EhConsumer.start(wrongKey(t.sim.eventHubConnectionString), t.sim.caCertPath, { webSockets: true, client: { retryOptions: { maxRetries: 0 } } });
    try {
      const err = await bad.ask({ op: 'properties' }).result.catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/Unauthorized|signature/i);
      expect((await bad.ask({ op: 'dialled' }).result).length).toBeGreaterThan(0);
    } finally {
      bad.kill();
    }
    expect(t.logs.some((l) => l.includes('put-token refused'))).toBe(true);
    expect((await overWs.ask({ op: 'properties' }).result).hub.name).toBe('edge-sim');
  });

  it('closes a WebSocket that does not speak AMQP, and keeps serving', async () => {
    const ws = new WebSocket(`wss://${t.sim.host}:443/$servicebus/websocket`, 'AMQPWSB10', { ca: t.ca });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
      ws.once('close', () => resolve());
      ws.once('error', reject);
    });
    expect(t.logs.some((l) => l.includes('closed a connection that does not speak AMQP 1.0'))).toBe(true);
    expect((await overWs.ask({ op: 'properties' }).result).hub.name).toBe('edge-sim');
  });
});

describe('Event Hub-compatible endpoint over WebSockets when 443 and 5671 are not the ports', () => {
  let t: TestSim;

  beforeAll(async () => {
    // Both on free ports, as when an ordinary user cannot bind below 1024.
    t = await startTestSim({ amqpPort: 0 });
    await eventually(() => t.invoke('probeA', 'whoami'));
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it('the client reaches it with customEndpointAddress set to the service URL', async () => {
    expect(t.sim.httpsPort).not.toBe(443);
    expect(t.sim.eventHubConnectionString).toContain(`:${t.sim.amqpPort}/`);
    const serviceUrl = `https://${new URL(`https://${/HostName=([^;]+)/.exec(t.sim.serviceConnectionString)![1]}`).host}`;
    const c = await EhConsumer.start(t.sim.eventHubConnectionString, t.sim.caCertPath, { webSockets: true, client: { customEndpointAddress: serviceUrl } });
    try {
      await send(t, [telemetry({ n: 'via-custom-endpoint' })]);
      const events = (await c.ask({ op: 'subscribe', from: 'earliest', untilBody: { n: 'via-custom-endpoint' } }).result) as any[];
      expect(events.map((e) => e.body)).toEqual([{ n: 'via-custom-endpoint' }]);
      const dialled = (await c.ask({ op: 'dialled' }).result) as Array<{ url: string }>;
      for (const d of dialled) expect(d.url).toBe(`wss://${new URL(serviceUrl).host}/$servicebus/websocket`);
    } finally {
      c.kill();
    }
  });
});
