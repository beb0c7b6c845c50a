/**
 * Pipelines from desired properties: a message on `input` becomes a TA call, and the TA's
 * result leaves on `output` (e.g. sensor readings signed inside `sensor-signer`).
 * The message body is passed as params (parsed JSON; raw bytes if it is not JSON).
 */
import type { Message } from 'azure-iot-device';
import { toEnclaveEdgeError } from '@enclave-edge/errors';
import { LIMITS, decodeValue, encodeValue, pipelineSchema, type JsonValue, type Pipeline } from '@enclave-edge/protocol';
import { jsonMessage, messageBytes, type TAClient } from '@enclave-edge/ta-client';
import type { Logger } from '@enclave-edge/observability';
import type { CallRecorder } from './call-recorder.js';

export interface PipelineStatus {
  status: 'active' | 'disabled' | 'invalid';
  input?: string;
  ta?: string;
  command?: string;
  output?: string;
  error?: string;
}

export interface PipelineDeps {
  ta: TAClient;
  send: (output: string, msg: Message) => Promise<unknown>;
  recorder: CallRecorder;
  log: Logger;
  onError: (pipeline: string, err: { code: string; message: string }) => void;
  defaultTimeoutMs: () => number;
}

/**
 * Pipeline calls in flight at once; more messages wait in a bounded queue (backpressure, not
 * BUSY storms). 256 rather than 64: ta-runtime queues calls beyond a TA's maxConcurrency (its
 * queue holds 1024), and more calls per event-loop turn means more MQTT packets per TLS write
 * in every process on the path — measured 582 vs 729 µs of CPU per signed reading (docs/modules.md).
 */
const MAX_IN_FLIGHT = 256;
const MAX_QUEUED = 10_000;

export class Pipelines {
  private inFlight = 0;
  private readonly queue: Array<() => void> = [];
  private byInput = new Map<string, Array<[string, Pipeline]>>();
  private statuses: Record<string, PipelineStatus> = {};
  processed = 0;
  failed = 0;

  constructor(private readonly deps: PipelineDeps) {}

  /** Replace the pipeline set from the `pipelines` desired property (a map; twins have no arrays). */
  configure(desired: unknown): Record<string, PipelineStatus> {
    const next = new Map<string, Array<[string, Pipeline]>>();
    const statuses: Record<string, PipelineStatus> = {};
    const entries = desired && typeof desired === 'object' && !Array.isArray(desired) ? Object.entries(desired as Record<string, unknown>) : [];
    for (const [name, spec] of entries) {
      if (name.startsWith('$') || spec === null) continue;
      const parsed = pipelineSchema.safeParse(spec);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        statuses[name] = { status: 'invalid', error: `${issue?.path.join('.') || 'pipeline'}: ${issue?.message ?? 'invalid'}` };
        continue;
      }
      const p = parsed.data;
      statuses[name] = { status: p.enabled ? 'active' : 'disabled', input: p.input, ta: p.ta, command: p.command, output: p.output };
      if (!p.enabled) continue;
      const list = next.get(p.input) ?? [];
      list.push([name, p]);
      next.set(p.input, list);
    }
    this.byInput = next;
    this.statuses = statuses;
    return statuses;
  }

  status(): Record<string, PipelineStatus> {
    return this.statuses;
  }

  handles(input: string): boolean {
    return this.byInput.has(input);
  }

  /** Run every pipeline bound to `input` for this message. Never throws. */
  async onMessage(input: string, msg: Message): Promise<void> {
    const list = this.byInput.get(input);
    if (!list) return;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      if (this.queue.length >= MAX_QUEUED) {
        for (const [name] of list) this.fail(name, 'BUSY', `${MAX_QUEUED} messages are already waiting; message dropped`);
        return;
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
    this.inFlight++;
    try {
      await this.process(list, msg);
    } finally {
      this.inFlight--;
      this.queue.shift()?.();
    }
  }

  private async process(list: Array<[string, Pipeline]>, msg: Message): Promise<void> {
    const bytes = messageBytes(msg);
    let params: JsonValue;
    if (bytes.byteLength > LIMITS.maxMessageBytes - 1024) {
      for (const [name] of list) this.fail(name, 'PAYLOAD_TOO_LARGE', `message of ${bytes.byteLength} bytes is too large to forward`);
      return;
    }
    try {
      params = JSON.parse(Buffer.from(bytes).toString('utf8')) as JsonValue;
      decodeValue(params); // checks depth and $binary forms before it leaves
    } catch {
      params = encodeValue(new Uint8Array(bytes));
    }
    await Promise.all(list.map(([name, p]) => this.run(name, p, msg, params)));
  }

  private async run(name: string, p: Pipeline, msg: Message, params: JsonValue): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.deps.ta.invokeJson(p.ta, p.command, params, { timeoutMs: p.timeoutMs ?? this.deps.defaultTimeoutMs() });
      this.deps.recorder.record(p.ta, p.command, performance.now() - started);
      const out = jsonMessage(p.output, result ?? null);
      // Keep the source's application properties (e.g. the sensor's), but say what this is.
      for (let i = 0; i < msg.properties.count(); i++) {
        const item = msg.properties.getItem(i);
        if (item.key !== 'type') out.properties.add(item.key, item.value);
      }
      out.properties.add('pipeline', name);
      out.properties.add('ta', p.ta);
      if (msg.messageId) out.correlationId = msg.messageId;
      await this.deps.send(p.output, out);
      this.processed++;
    } catch (err) {
      this.deps.recorder.record(p.ta, p.command, performance.now() - started, err);
      const e = toEnclaveEdgeError(err);
      this.fail(name, e.code, e.message);
    }
  }

  private fail(name: string, code: string, message: string): void {
    this.failed++;
    this.deps.onError(name, { code, message });
  }
}
