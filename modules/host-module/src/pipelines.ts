/**
 * Pipelines from desired properties: a message on `input` becomes a TA call, and the TA's
 * result leaves on `output` (e.g. sensor readings signed inside `sensor-signer`).
 * The message body is passed as params (parsed JSON; raw bytes if it is not JSON).
 */
import type { Message } from 'azure-iot-device';
import { toEnclaveEdgeError } from '@enclave-edge/errors';
import { LIMITS, decodeValue, encodeValue, pipelineSchema, type JsonValue, type Pipeline } from '@enclave-edge/protocol';
import { jsonMessage, messageBytes, type BatchOutcome, type TAClient } from '@enclave-edge/ta-client';
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
 * Pipeline invocations in flight at once; more messages wait in a bounded queue (backpressure,
 * not BUSY storms). 256 rather than 64: ta-runtime queues calls beyond a TA's maxConcurrency (its
 * queue holds 1024), and more calls per event-loop turn means more MQTT packets per TLS write
 * in every process on the path — measured 582 vs 729 µs of CPU per signed reading (docs/modules.md).
 */
const MAX_IN_FLIGHT = 256;
const MAX_QUEUED = 10_000;
/**
 * Batching: each pipeline has at most this many taRequests outstanding. A message that finds a
 * free slot goes at once, alone, as a plain `invoke` (no timer, no added latency); messages
 * that arrive while the slots are busy wait, and each freed slot takes everything waiting for
 * that pipeline (up to MAX_BATCH) as one `invokeBatch`. Under load this trades four edgeHub
 * crossings per reading for four per batch (docs/modules.md, Performance).
 */
const REQUESTS_PER_PIPELINE = 4;
const MAX_BATCH = 32;
/** Bound on a batch's estimated wire size, well under the edgeHub message limit. */
const MAX_BATCH_BYTES = LIMITS.maxMessageBytes / 2;

interface Job {
  name: string;
  p: Pipeline;
  msg: Message;
  params: JsonValue;
  /** Estimated size of the params on the wire. */
  bytes: number;
  done: () => void;
}

interface Lane {
  name: string;
  jobs: Job[];
  requests: number;
}

export class Pipelines {
  private inFlight = 0;
  private queued = 0;
  private readonly lanes = new Map<string, Lane>();
  private byInput = new Map<string, Array<[string, Pipeline]>>();
  private statuses: Record<string, PipelineStatus> = {};
  /** Set when ta-runtime refuses op invokeBatch (an older version): items then go one by one. */
  private batchUnsupported = false;
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

  /** Run every pipeline bound to `input` for this message; resolves when all are done. Never throws. */
  async onMessage(input: string, msg: Message): Promise<void> {
    const list = this.byInput.get(input);
    if (!list) return;
    if (this.queued >= MAX_QUEUED) {
      for (const [name] of list) this.fail(name, 'BUSY', `${MAX_QUEUED} messages are already waiting; message dropped`);
      return;
    }
    const bytes = messageBytes(msg);
    let params: JsonValue;
    if (bytes.byteLength > LIMITS.maxMessageBytes - 1024) {
      for (const [name] of list) this.fail(name, 'PAYLOAD_TOO_LARGE', `message of ${bytes.byteLength} bytes is too large to forward`);
      return;
    }
    let size = bytes.byteLength + 16;
    try {
      params = JSON.parse(Buffer.from(bytes).toString('utf8')) as JsonValue;
      decodeValue(params); // checks depth and $binary forms before it leaves
    } catch {
      params = encodeValue(new Uint8Array(bytes));
      size = Math.ceil((bytes.byteLength * 4) / 3) + 32;
    }
    await Promise.all(list.map(([name, p]) => new Promise<void>((done) => {
      let lane = this.lanes.get(name);
      if (!lane) this.lanes.set(name, (lane = { name, jobs: [], requests: 0 }));
      lane.jobs.push({ name, p, msg, params, bytes: size, done });
      this.queued++;
      this.pump(lane);
    })));
  }

  /** Send what waits in `lane` while it has request slots and the in-flight bound allows. */
  private pump(lane: Lane): void {
    while (lane.jobs.length > 0 && lane.requests < REQUESTS_PER_PIPELINE && this.inFlight < MAX_IN_FLIGHT) {
      const first = lane.jobs[0]!;
      const room = Math.min(MAX_BATCH, MAX_IN_FLIGHT - this.inFlight);
      let n = 1;
      let bytes = first.bytes;
      // One batch: one pipeline definition (a reconfigure may leave jobs of the old one waiting).
      while (n < room && n < lane.jobs.length && lane.jobs[n]!.p === first.p && bytes + lane.jobs[n]!.bytes <= MAX_BATCH_BYTES) bytes += lane.jobs[n++]!.bytes;
      const batch = lane.jobs.splice(0, n);
      this.queued -= n;
      this.inFlight += n;
      lane.requests++;
      void this.runBatch(batch).finally(() => {
        this.inFlight -= n;
        lane.requests--;
        for (const j of batch) j.done();
        this.pumpAll(lane);
      });
    }
    if (lane.jobs.length === 0 && lane.requests === 0 && this.lanes.get(lane.name) === lane) this.lanes.delete(lane.name);
  }

  /** After a slot frees: this lane first, then any lane held back by the global in-flight bound. */
  private pumpAll(lane: Lane): void {
    this.pump(lane);
    if (this.inFlight < MAX_IN_FLIGHT) for (const other of [...this.lanes.values()]) if (other !== lane && other.jobs.length > 0) this.pump(other);
  }

  private async runBatch(batch: Job[]): Promise<void> {
    const { p } = batch[0]!;
    const timeoutMs = p.timeoutMs ?? this.deps.defaultTimeoutMs();
    const started = performance.now();
    if (batch.length === 1 || this.batchUnsupported) {
      await Promise.all(batch.map((job) => this.run(job, started, this.deps.ta.invokeJson(p.ta, p.command, job.params, { timeoutMs }))));
      return;
    }
    let outcomes: BatchOutcome[];
    try {
      outcomes = await this.deps.ta.invokeBatchJson(p.ta, p.command, batch.map((j) => j.params), { timeoutMs });
    } catch (err) {
      const e = toEnclaveEdgeError(err);
      if (e.code === 'BAD_PARAMETERS' && /^invalid taRequest at "op"/.test(e.message)) {
        // An older ta-runtime that does not know invokeBatch: nothing ran; send them one by one.
        this.batchUnsupported = true;
        this.deps.log.warn({ ta: p.ta }, 'ta-runtime does not support invokeBatch; pipeline calls go one by one');
        const again = performance.now();
        await Promise.all(batch.map((job) => this.run(job, again, this.deps.ta.invokeJson(p.ta, p.command, job.params, { timeoutMs }))));
        return;
      }
      await Promise.all(batch.map((job) => this.run(job, started, Promise.reject(e))));
      return;
    }
    await Promise.all(batch.map((job, i) => {
      const o = outcomes[i]!;
      return this.run(job, started, o.ok ? Promise.resolve(o.result) : Promise.reject(o.error));
    }));
  }

  /** One message through one pipeline, given its TA call: the output message, or the error. */
  private async run(job: Job, started: number, call: Promise<JsonValue | undefined>): Promise<void> {
    const { name, p, msg } = job;
    try {
      const result = await call;
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
