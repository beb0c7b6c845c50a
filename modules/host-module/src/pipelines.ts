/**
 * Pipelines from desired properties: a message on `input` becomes a TA call, and the TA's
 * result leaves on `output` (e.g. sensor readings signed inside `sensor-signer`).
 * The message body is passed as params (parsed JSON; raw bytes if it is not JSON).
 *
 * A message taken is never lost silently: a call that fails UNAVAILABLE, BUSY or TIMEOUT
 * (ta-runtime restarting, a TA still loading) is retried with back-off, under the same request
 * id so ta-runtime answers a copy it already ran from its duplicate cache, until the message's
 * time to live (`retryWithinMs`) ends; then it is reported dropped (`pipeline.dropped`).
 * Outputs of one pipeline leave in the order their messages arrived, also when the connection
 * to edgeHub drops with outputs unacknowledged: see drain().
 */
import { randomUUID } from 'node:crypto';
import type { Message } from 'azure-iot-device';
import { EnclaveEdgeError, toEnclaveEdgeError, type ErrorCode } from '@enclave-edge/errors';
import { LIMITS, decodeValue, encodeValue, pipelineSchema, type JsonValue, type Pipeline } from '@enclave-edge/protocol';
import { jsonMessage, messageBytes, type BatchOutcome, type TAClient } from '@enclave-edge/ta-client';
import type { Logger } from '@enclave-edge/observability';
import type { CallRecorder } from '@enclave-edge/module-frame';
import { parseX25519PublicJwk } from '@enclave-edge/confidential/suite';
import { checkSealedReading, recipientThumbprint } from '@enclave-edge/confidential/sealed-reading';

export interface PipelineStatus {
  status: 'active' | 'disabled' | 'invalid';
  input?: string;
  ta?: string;
  command?: string;
  output?: string;
  /** Set when results are sealed to a recipient: its RFC 7638 thumbprint. */
  recipient?: string;
  error?: string;
}

/** A pipeline's recipient, checked once when the pipeline is configured. */
interface Recipient {
  jwk: { kty: 'OKP'; crv: 'X25519'; x: string };
  thumbprint: string;
}

export interface PipelineDeps {
  ta: TAClient;
  /** Send an output; a transient failure (the send did not happen or may not have) rejects UNAVAILABLE, BUSY or TIMEOUT and is sent again. */
  send: (output: string, msg: Message) => Promise<unknown>;
  recorder: CallRecorder;
  log: Logger;
  onError: (pipeline: string, err: { code: string; message: string }) => void;
  /** A message given up on (its time to live ran out, or no room to wait). */
  onDropped: (pipeline: string, err: { code: string; message: string }) => void;
  defaultTimeoutMs: () => number;
}

/** Answers that say the call did not run, or may not have: worth another try. */
const RETRYABLE = new Set<ErrorCode>(['UNAVAILABLE', 'BUSY', 'TIMEOUT']);
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;

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
/** Outputs of one pipeline sent and not yet acknowledged by edgeHub (each waits for its store's sync). */
const OUTPUT_WINDOW = 64;
/** An output whose sends keep failing transiently is given up (reported dropped) this long after its first failure. */
const OUTPUT_RETRY_WITHIN_MS = 240_000;

interface Job {
  name: string;
  p: Pipeline;
  msg: Message;
  params: JsonValue;
  /** Estimated size of the params on the wire. */
  bytes: number;
  /** Request id when the job goes alone (kept across its retries). */
  id: string;
  /** Position in its lane: outputs leave in this order. */
  seq: number;
  /** No retries after this (ms since the epoch). */
  expiresAt: number;
  done: () => void;
}

/** A finished job: the output to send, or the error it ended with. */
type Outcome = { out: Message } | { err: EnclaveEdgeError; dropped: boolean };

interface Lane {
  name: string;
  jobs: Job[];
  requests: number;
  nextSeq: number;
  nextOut: number;
  finished: Map<number, { job: Job; outcome: Outcome }>;
  /** Outputs handed to the client and not yet acknowledged. */
  sending: number;
  /** Outputs whose send failed transiently, oldest first: nothing newer leaves before them. */
  unsent: Unsent[];
  /** The last send that settled was acknowledged (the connection carries outputs). */
  linkOk: boolean;
  /** Failed attempts to re-send the oldest unsent output alone, for its back-off. */
  probes: number;
  probeTimer?: NodeJS.Timeout;
}

interface Unsent {
  job: Job;
  out: Message;
  firstFailedAt: number;
}

export class Pipelines {
  private inFlight = 0;
  private queued = 0;
  private readonly lanes = new Map<string, Lane>();
  private byInput = new Map<string, Array<[string, Pipeline]>>();
  private statuses: Record<string, PipelineStatus> = {};
  private readonly recipients = new WeakMap<Pipeline, Recipient>();
  /** Set when ta-runtime refuses op invokeBatch (an older version): items then go one by one. */
  private batchUnsupported = false;
  processed = 0;
  failed = 0;
  retried = 0;

  constructor(private readonly deps: PipelineDeps) {}

  /** Replace the pipeline set from the `pipelines` desired property (a map; twins have no arrays). */
  configure(desired: unknown): Record<string, PipelineStatus> {
    const next = new Map<string, Array<[string, Pipeline]>>();
    // Pipeline names are the twin writer's: a null-prototype map, so "__proto__" is a name like any other.
    const statuses: Record<string, PipelineStatus> = Object.create(null) as Record<string, PipelineStatus>;
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
      let recipient: Recipient | undefined;
      if (p.recipient !== undefined) {
        // Fail closed: a pipeline whose key is refused does not run at all (never in plaintext).
        try {
          const raw = parseX25519PublicJwk(p.recipient, 'recipient key');
          recipient = { jwk: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, thumbprint: recipientThumbprint(raw) };
          this.recipients.set(p, recipient);
        } catch (err) {
          const e = toEnclaveEdgeError(err);
          statuses[name] = { status: 'invalid', error: `recipient: ${e.message}` };
          this.deps.log.warn({ pipeline: name, code: e.code }, `pipeline refused: ${e.message}`);
          continue;
        }
      }
      statuses[name] = { status: p.enabled ? 'active' : 'disabled', input: p.input, ta: p.ta, command: p.command, output: p.output, ...(recipient ? { recipient: recipient.thumbprint } : {}) };
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
      for (const [name] of list) this.drop(name, 'BUSY', `${MAX_QUEUED} messages are already waiting; message dropped`);
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
    const expiry = msg.expiryTimeUtc ? new Date(msg.expiryTimeUtc as string | number | Date).getTime() : NaN;
    await Promise.all(list.map(([name, p]) => new Promise<void>((done) => {
      let lane = this.lanes.get(name);
      if (!lane) this.lanes.set(name, (lane = { name, jobs: [], requests: 0, nextSeq: 0, nextOut: 0, finished: new Map(), sending: 0, unsent: [], linkOk: true, probes: 0 }));
      const ttlEnd = Date.now() + p.retryWithinMs;
      const expiresAt = Number.isFinite(expiry) ? Math.min(expiry, ttlEnd) : ttlEnd;
      lane.jobs.push({ name, p, msg, params, bytes: size, id: randomUUID(), seq: lane.nextSeq++, expiresAt, done });
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
      void this.runBatch(batch, lane).finally(() => {
        this.inFlight -= n;
        lane.requests--;
        this.pumpAll(lane);
      });
    }
    this.forgetIfIdle(lane);
  }

  /** A lane with nothing waiting, running, unsent or unacknowledged is dropped (a new message makes a new one). */
  private forgetIfIdle(lane: Lane): void {
    const idle = lane.jobs.length === 0 && lane.requests === 0 && lane.finished.size === 0 && lane.sending === 0 && lane.unsent.length === 0;
    if (idle && this.lanes.get(lane.name) === lane) this.lanes.delete(lane.name);
  }

  /** After a slot frees: this lane first, then any lane held back by the global in-flight bound. */
  private pumpAll(lane: Lane): void {
    this.pump(lane);
    if (this.inFlight < MAX_IN_FLIGHT) for (const other of [...this.lanes.values()]) if (other !== lane && other.jobs.length > 0) this.pump(other);
  }

  /**
   * One request for a batch (or one job), retried while it fails retryably and time is left:
   * a request that failed as a whole goes again as it was, under the same id; items that
   * failed on their own go again as a new request.
   */
  private async runBatch(batch: Job[], lane: Lane): Promise<void> {
    const { p } = batch[0]!;
    const timeoutMs = p.timeoutMs ?? this.deps.defaultTimeoutMs();
    let id = batch.length === 1 ? batch[0]!.id : randomUUID();
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      const { outcomes, whole } = await this.attempt(batch, id, p, timeoutMs);
      const ms = performance.now() - started;
      const again: Job[] = [];
      outcomes.forEach((o, i) => {
        const job = batch[i]!;
        this.deps.recorder.record(p.ta, p.command, ms, o.ok ? undefined : o.error);
        if (o.ok) this.finish(lane, job, this.outcomeOf(job, o.result));
        else if (RETRYABLE.has(o.error.code) && Date.now() < job.expiresAt) again.push(job);
        else this.finish(lane, job, { err: o.error, dropped: RETRYABLE.has(o.error.code) });
      });
      if (again.length === 0) return;
      if (!whole) {
        batch = again;
        id = batch.length === 1 ? batch[0]!.id : randomUUID();
      }
      this.retried += batch.length;
      const left = Math.min(...batch.map((j) => j.expiresAt)) - Date.now();
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt, left))));
    }
  }

  /** Send the batch once; `whole` when the request failed as a whole (nothing per item). */
  private async attempt(batch: Job[], id: string, p: Pipeline, timeoutMs: number): Promise<{ outcomes: BatchOutcome[]; whole: boolean }> {
    const single = (job: Job, requestId: string): Promise<BatchOutcome> =>
      this.deps.ta.invokeJson(p.ta, p.command, this.paramsOf(job), { timeoutMs, requestId })
        .then((result): BatchOutcome => ({ ok: true, result }), (err: unknown): BatchOutcome => ({ ok: false, error: toEnclaveEdgeError(err) }));
    if (batch.length === 1) return { outcomes: [await single(batch[0]!, id)], whole: true };
    if (this.batchUnsupported) return { outcomes: await Promise.all(batch.map((j) => single(j, j.id))), whole: false };
    try {
      return { outcomes: await this.deps.ta.invokeBatchJson(p.ta, p.command, batch.map((j) => this.paramsOf(j)), { timeoutMs, requestId: id }), whole: false };
    } catch (err) {
      const e = toEnclaveEdgeError(err);
      if (e.code === 'BAD_PARAMETERS' && /^invalid taRequest at "op"/.test(e.message)) {
        // An older ta-runtime that does not know invokeBatch: nothing ran; send them one by one.
        this.batchUnsupported = true;
        this.deps.log.warn({ ta: p.ta }, 'ta-runtime does not support invokeBatch; pipeline calls go one by one');
        return { outcomes: await Promise.all(batch.map((j) => single(j, j.id))), whole: false };
      }
      return { outcomes: batch.map(() => ({ ok: false, error: e })), whole: true };
    }
  }

  /** What the TA gets: the message, or for a pipeline with a recipient { reading, recipient, pipeline }. */
  private paramsOf(job: Job): JsonValue {
    const r = this.recipients.get(job.p);
    return r ? { reading: job.params, recipient: r.jwk, pipeline: job.name } : job.params;
  }

  /**
   * A result to send on, or the error that stops it: with a recipient, only a reading sealed by
   * this TA for this pipeline to that key leaves; anything else is refused and reported.
   */
  private outcomeOf(job: Job, result: JsonValue | undefined): Outcome {
    const r = this.recipients.get(job.p);
    if (r) {
      try {
        checkSealedReading(result, { ta: job.p.ta, pipeline: job.name, rcpt: r.thumbprint });
      } catch (err) {
        const e = toEnclaveEdgeError(err);
        return { err: new EnclaveEdgeError(e.code, `the pipeline seals to a recipient, but ${job.p.ta}.${job.p.command} answered no reading sealed to it (${e.message}); nothing was sent`), dropped: false };
      }
    }
    return { out: this.output(job, result) };
  }

  /** The output message for a job's result: the source's application properties, and what this is. */
  private output(job: Job, result: JsonValue | undefined): Message {
    const { name, p, msg } = job;
    const out = jsonMessage(p.output, result ?? null);
    for (let i = 0; i < msg.properties.count(); i++) {
      const item = msg.properties.getItem(i);
      if (item.key !== 'type') out.properties.add(item.key, item.value);
    }
    out.properties.add('pipeline', name);
    out.properties.add('ta', p.ta);
    if (msg.messageId) out.correlationId = msg.messageId;
    return out;
  }

  /** Record a job's outcome, then send every outcome of the lane that is next in order. */
  private finish(lane: Lane, job: Job, outcome: Outcome): void {
    lane.finished.set(job.seq, { job, outcome });
    if (job.seq === lane.nextOut) this.drain(lane);
  }

  /**
   * Send every outcome of the lane that is next in order. Outputs are handed to the client in
   * order without waiting for each one's acknowledgement (one connection keeps their order on
   * the wire); at most OUTPUT_WINDOW per lane are unacknowledged, so a slow edgeHub holds the
   * lane back instead of piling up sends.
   * A dropped connection fails every unacknowledged send at once (the SDK's sends are single
   * attempts here). Then nothing newer is handed out: once every send has settled, the oldest
   * failed output goes again alone, with back-off, until one is acknowledged on a working
   * connection; then the failed ones go again in order, and the lane carries on.
   */
  private drain(lane: Lane): void {
    if (lane.unsent.length > 0) {
      if (lane.sending > 0 || lane.probeTimer) return;
      if (lane.linkOk) {
        lane.probes = 0;
        for (const u of lane.unsent.splice(0)) this.sendOutput(lane, u.job, u.out, u.firstFailedAt);
      } else {
        const wait = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** lane.probes++);
        lane.probeTimer = setTimeout(() => {
          lane.probeTimer = undefined;
          const u = lane.unsent.shift();
          if (u) this.sendOutput(lane, u.job, u.out, u.firstFailedAt);
          else this.drain(lane);
        }, wait);
        lane.probeTimer.unref();
      }
      return;
    }
    for (let next = lane.finished.get(lane.nextOut); next && lane.sending < OUTPUT_WINDOW; next = lane.finished.get(lane.nextOut)) {
      lane.finished.delete(lane.nextOut);
      lane.nextOut++;
      const { job, outcome } = next;
      if ('out' in outcome) {
        this.sendOutput(lane, job, outcome.out);
        continue;
      }
      if (outcome.dropped) this.drop(job.name, outcome.err.code, `gave up after retrying until the message's time to live: ${outcome.err.message}`);
      else this.fail(job.name, outcome.err.code, outcome.err.message);
      job.done();
    }
    this.forgetIfIdle(lane);
  }

  /** Hand one output to the client; a transient failure puts it back among the lane's unsent, in order. */
  private sendOutput(lane: Lane, job: Job, out: Message, firstFailedAt?: number): void {
    lane.sending++;
    let sending: Promise<unknown>;
    try {
      sending = this.deps.send(job.p.output, out);
    } catch (err) {
      sending = Promise.reject(err);
    }
    void sending.then(
      () => {
        lane.linkOk = true;
        this.processed++;
        job.done();
      },
      (err: unknown) => {
        const e = toEnclaveEdgeError(err);
        const since = firstFailedAt ?? Date.now();
        if (RETRYABLE.has(e.code) && Date.now() - since < OUTPUT_RETRY_WITHIN_MS) {
          if (lane.linkOk) this.deps.log.warn({ pipeline: job.name, code: e.code }, `an output was not acknowledged (${e.message}); outputs are sent again in order`);
          lane.linkOk = false;
          const at = lane.unsent.findIndex((u) => u.job.seq > job.seq);
          lane.unsent.splice(at < 0 ? lane.unsent.length : at, 0, { job, out, firstFailedAt: since });
          return;
        }
        this.drop(job.name, e.code, `could not send the output: ${e.message}`);
        job.done();
      },
    ).finally(() => {
      lane.sending--;
      this.drain(lane);
    });
  }

  private fail(name: string, code: string, message: string): void {
    this.failed++;
    this.deps.onError(name, { code, message });
  }

  private drop(name: string, code: string, message: string): void {
    this.failed++;
    this.deps.onError(name, { code, message });
    this.deps.onDropped(name, { code, message });
  }
}
