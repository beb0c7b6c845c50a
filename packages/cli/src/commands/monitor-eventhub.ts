/**
 * `monitor --eventhub`: `$upstream` read the way a back end reads IoT Hub telemetry, with the
 * unmodified @azure/event-hubs EventHubConsumerClient on the simulator's Event Hub-compatible
 * endpoint (the connection string `sim credentials --json` gives).
 *
 * It dials AMQP over WebSockets: the Event Hubs client has no option to trust an extra CA for
 * AMQP over TLS (only NODE_EXTRA_CA_CERTS at process start), while the WebSocket's own options
 * carry the simulator's CA. The service URL as custom endpoint reaches the simulator on whatever
 * HTTPS port it has (443 when it could take it).
 */
import { readFileSync } from 'node:fs';
import { EventHubConsumerClient, earliestEventPosition, type EventPosition, type ReceivedEventData } from '@azure/event-hubs';
import WebSocket from 'ws';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { UpstreamEvent } from '@enclave-edge/hub-client';
import { eventHubConnectionString, serviceHost } from '@enclave-edge/edge-sim/module-env';
import { upstreamBody } from '@enclave-edge/edge-sim/upstream-json';
import { findSimulator } from './hub-target.js';
import type { StartFrom } from './monitor-eventhub-options.js';

/** Where an event was read: shown with --json next to the fields of the simulator's own stream. */
export interface EventHubPosition {
  consumerGroup: string;
  partitionId: string;
  sequenceNumber: number;
  offset: string;
}

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));

/**
 * One Event Hubs event as the monitor shows it: the fields of the simulator's `/edge-sim/upstream`
 * stream, rebuilt from IoT Hub's annotations and AMQP properties (the endpoint carries no output name).
 */
export function upstreamEventOf(e: ReceivedEventData, where: EventHubPosition): UpstreamEvent & { eventHub: EventHubPosition } {
  const ann = e.systemProperties ?? {};
  const deviceId = str(ann['iothub-connection-device-id']) ?? '';
  const moduleId = str(ann['iothub-connection-module-id']) ?? '';
  const system: Record<string, string> = {};
  const put = (k: string, v: unknown): void => {
    const s = str(v);
    if (s !== undefined) system[k] = s;
  };
  put('$.mid', e.messageId);
  put('$.cid', e.correlationId);
  put('$.ct', e.contentType);
  put('$.ce', ann.contentEncoding);
  put('$.cdid', deviceId);
  if (moduleId) put('$.cmid', moduleId);
  const properties: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(e.properties ?? {})) properties[k] = String(v);
  const body = Buffer.isBuffer(e.body) ? upstreamBody(e.body, e.contentType) : { body: e.body as unknown };
  return { deviceId, moduleId, enqueuedTimeUtc: e.enqueuedTimeUtc.toISOString(), systemProperties: system, properties, ...body, eventHub: where };
}

export interface EventHubMonitorOptions {
  stateDir: string;
  consumerGroup: string;
  from: StartFrom;
  signal: AbortSignal;
  /** Called once every partition's start is fixed: what is enqueued from then on is read. */
  onReady(deviceId: string, description: string): void;
  onWarning(message: string): void;
}

/** The running simulator's `$upstream` through its Event Hub-compatible endpoint, until `signal` aborts. */
export async function* eventHubUpstream(o: EventHubMonitorOptions): AsyncGenerator<UpstreamEvent & { eventHub: EventHubPosition }> {
  const sim = findSimulator(o.stateDir);
  const cs = eventHubConnectionString(sim.gateway, sim.state.hubKey);
  if (!cs) throw new EnclaveEdgeError('NOT_SUPPORTED', 'this simulator was started without an Event Hub-compatible endpoint; restart it (`enclave-edge sim up`)');
  const endpoint = `https://${serviceHost(sim.gateway)}`;
  const client = new EventHubConsumerClient(o.consumerGroup, cs, {
    customEndpointAddress: endpoint,
    webSocketOptions: { webSocket: WebSocket as never, webSocketConstructorOptions: { ca: readFileSync(sim.caCertPath, 'utf8') } },
    // A local simulator answers at once or is not running: do not wait minutes between tries.
    retryOptions: { maxRetries: 2, retryDelayInMs: 500, maxRetryDelayInMs: 2000, timeoutInMs: 10_000 },
  });
  const queue: Array<UpstreamEvent & { eventHub: EventHubPosition }> = [];
  let wake: (() => void) | undefined;
  const drained: Array<() => void> = [];
  let failure: Error | undefined;
  let closed = false;
  const signalAll = (): void => {
    wake?.();
    wake = undefined;
  };
  o.signal.addEventListener('abort', signalAll, { once: true });
  let subscription: { close(): Promise<void> } | undefined;
  try {
    let startPosition: Record<string, EventPosition>;
    try {
      startPosition = await startPositions(client, o.from);
    } catch (err) {
      throw new EnclaveEdgeError('UNAVAILABLE', `the Event Hub-compatible endpoint at ${endpoint}/$servicebus/websocket did not answer: ${describeError(err)}`, { cause: err });
    }
    o.onReady(sim.deviceId, `${Object.keys(startPosition).length} partitions, consumer group ${o.consumerGroup}, from ${o.from instanceof Date ? o.from.toISOString() : o.from}`);
    subscription = client.subscribe(
      {
        processEvents: async (events, ctx) => {
          for (const e of events) queue.push(upstreamEventOf(e, { consumerGroup: o.consumerGroup, partitionId: ctx.partitionId, sequenceNumber: e.sequenceNumber, offset: String(e.offset) }));
          signalAll();
          // Back-pressure: the next batch is asked for once this one is printed.
          while (queue.length && !closed) await new Promise<void>((resolve) => drained.push(resolve));
        },
        processError: async (err) => {
          // The client retries what is transient; what it cannot get past ends the monitor.
          if ((err as { retryable?: boolean }).retryable === false) {
            failure = new EnclaveEdgeError('UNAVAILABLE', `reading the Event Hub-compatible endpoint failed: ${describeError(err)}`, { cause: err });
            signalAll();
          } else {
            o.onWarning(`cannot read the Event Hub-compatible endpoint at ${endpoint} (${describeError(err)}); retrying`);
          }
        },
      },
      { startPosition, skipParsingBodyAsJson: true, maxBatchSize: 100, maxWaitTimeInSeconds: 1 },
    );
    for (;;) {
      if (failure) throw failure;
      if (o.signal.aborted) return;
      const next = queue.shift();
      if (next) {
        yield next;
        continue;
      }
      for (const d of drained.splice(0)) d();
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    o.signal.removeEventListener('abort', signalAll);
    closed = true;
    for (const d of drained.splice(0)) d();
    await subscription?.close().catch(() => {});
    await client.close().catch(() => {});
  }
}

/** An error in one line; a failed connect to `localhost` is an AggregateError of one try per address. */
function describeError(err: unknown): string {
  if (err instanceof AggregateError) return [...new Set(err.errors.map(describeError))].join('; ') || 'AggregateError';
  const e = err as { message?: string; code?: string; name?: string } | null;
  return e?.message || e?.code || e?.name || String(err);
}

/** Each partition's start; `latest` is fixed now, so nothing enqueued after onReady is missed. */
async function startPositions(client: EventHubConsumerClient, from: StartFrom): Promise<Record<string, EventPosition>> {
  const ids = await client.getPartitionIds();
  // Partition ids come from the endpoint: a null-prototype map.
  const out: Record<string, EventPosition> = Object.create(null);
  for (const id of ids) {
    if (from === 'earliest') out[id] = earliestEventPosition;
    else if (from instanceof Date) out[id] = { enqueuedOn: from };
    else {
      const p = await client.getPartitionProperties(id);
      out[id] = p.isEmpty ? earliestEventPosition : { sequenceNumber: p.lastEnqueuedSequenceNumber, isInclusive: false };
    }
  }
  return out;
}
