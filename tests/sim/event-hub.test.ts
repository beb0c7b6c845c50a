/**
 * The Event Hub-compatible endpoint through the unmodified @azure/event-hubs EventHubConsumerClient
 * (in a back-end process with NODE_EXTRA_CA_CERTS): hub and partition properties, reading from
 * earliest and from latest, consumer groups, IoT Hub's annotations and application properties.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { eventually, type TestSim } from './helpers.js';
import { startSimOnStandardPorts } from './official-clients.js';
import { EhConsumer, expectIotHubAnnotations } from './eh-consumer.js';

let t: TestSim;
let consumer: EhConsumer;

const send = (messages: unknown[]) => t.invoke('probeA', 'send', { messages });
const telemetry = (body: unknown, extra: Record<string, unknown> = {}) => ({ output: 'telemetry', body, contentType: 'application/json', ...extra });

beforeAll(async () => {
  t = await startSimOnStandardPorts();
  await eventually(() => t.invoke('probeA', 'whoami'));
  consumer = await EhConsumer.start(t.sim.eventHubConnectionString, t.sim.caCertPath);
}, 60_000);

afterAll(async () => {
  consumer?.kill();
  await t?.close();
});

describe('Event Hub-compatible endpoint (@azure/event-hubs EventHubConsumerClient)', () => {
  it('has a connection string with no port on 5671 and the hub name as EntityPath', () => {
    expect(t.sim.eventHubConnectionString).toMatch(new RegExp(`^Endpoint=sb://${t.sim.host!.replace(/\./g, '\\.')}/;SharedAccessKeyName=iothubowner;SharedAccessKey=[^;]+;EntityPath=edge-sim$`));
  });

  it('reads from earliest: every event in order, with sequence numbers, offsets, enqueued time, IoT Hub annotations and properties', async () => {
    await send([
      telemetry({ n: 1 }, { messageId: 'm-1', correlationId: 'c-1', properties: { site: 'north', level: 'high' } }),
      telemetry({ n: 2 }, { messageId: 'm-2' }),
      telemetry({ n: 'last-early' }),
    ]);
    const events = (await consumer.ask({ op: 'subscribe', from: 'earliest', untilBody: { n: 'last-early' } }).result) as any[];
    expect(events.map((e) => e.body)).toEqual([{ n: 1 }, { n: 2 }, { n: 'last-early' }]);
    expect(events.map((e) => e.sequenceNumber)).toEqual([0, 1, 2]);
    expect(new Set(events.map((e) => e.partitionId)).size).toBe(1);
    const offsets = events.map((e) => Number(e.offset));
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(new Set(offsets).size).toBe(3);
    const [first] = events;
    expect(first.properties).toEqual({ site: 'north', level: 'high' });
    expect(first.messageId).toBe('m-1');
    expect(first.correlationId).toBe('c-1');
    expect(first.contentType).toBe('application/json');
    expectIotHubAnnotations(first, t.sim.deviceId, 'probeA');
  });

  it('reports the hub and its partitions: 4 partition ids, the device’s partition holding the events', async () => {
    const p = await consumer.ask({ op: 'properties' }).result;
    expect(p.hub.name).toBe('edge-sim');
    expect(p.hub.partitionIds).toEqual(['0', '1', '2', '3']);
    const used = p.partitions.filter((x: any) => !x.isEmpty);
    expect(used).toHaveLength(1);
    expect(used[0]).toMatchObject({ eventHubName: 'edge-sim', beginningSequenceNumber: 0, lastEnqueuedSequenceNumber: expect.any(Number) });
    expect(used[0].lastEnqueuedSequenceNumber).toBeGreaterThanOrEqual(2);
    expect(p.partitions.filter((x: any) => x.isEmpty).map((x: any) => x.partitionId)).toHaveLength(3);
  });

  it('reads from latest: only what is enqueued after the receivers attach', async () => {
    const before = t.sim.eventHubReceivers();
    const sub = consumer.ask({ op: 'subscribe', from: 'latest', untilBody: { n: 'last-late' } });
    await eventually(() => expect(consumer.readySubs.has(sub.id) && t.sim.eventHubReceivers() >= before + 4).toBe(true));
    await send([telemetry({ n: 'late-1' }, { properties: { k: 'v' } }), telemetry({ n: 'last-late' })]);
    const events = (await sub.result) as any[];
    expect(events.map((e) => e.body)).toEqual([{ n: 'late-1' }, { n: 'last-late' }]);
    expect(events[0].properties).toEqual({ k: 'v' });
  });

  it('another consumer group reads the same stream from the start', async () => {
    const events = (await consumer.ask({ op: 'subscribe', from: 'earliest', group: 'backend', untilBody: { n: 'last-late' } }).result) as any[];
    expect(events.map((e) => e.body)).toEqual([{ n: 1 }, { n: 2 }, { n: 'last-early' }, { n: 'late-1' }, { n: 'last-late' }]);
  });

  it('refuses a connection string with the wrong key, and keeps serving the right one', async () => {
    const wrong = t.sim.eventHubConnectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);
    // No retries: a refused token is retried like any other error by default.
    const bad = await EhConsumer.start(wrong, t.sim.caCertPath, { client: { retryOptions: { maxRetries: 0 } } });
    try {
      const err = await bad.ask({ op: 'properties' }).result.catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/Unauthorized|signature/i);
    } finally {
      bad.kill();
    }
    expect((await consumer.ask({ op: 'properties' }).result).hub.name).toBe('edge-sim');
  });
});
