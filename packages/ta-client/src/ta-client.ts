/**
 * TAClient: call TAs in ta-runtime over edgeHub. It sends taRequest messages on an output,
 * matches taResponse messages on an input by correlation id, enforces deadlines, and turns
 * every failure into an EnclaveEdgeError.
 *
 *   const ta = new TAClient(await ModuleClient.fromEnvironment(Mqtt));
 *   ta.start();
 *   const pong = await ta.invoke('hello', 'ping');
 */
import { randomUUID } from 'node:crypto';
import type { Message } from 'azure-iot-device';
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import type { Value } from '@enclave-edge/ta-sdk';
import {
  LIMITS, RUNTIME_READY_TYPE, TA_REQUEST_INPUT, TA_RESPONSE_OUTPUT, checkTARequest, decodeValue, encodeValue, parseTAResponse, serializeMessage,
  type JsonValue, type TARequest, type TAResponse,
} from '@enclave-edge/protocol';
import type { ConfidentialClient, ConfidentialClientOptions } from '@enclave-edge/confidential/client';
import { jsonMessage, messageBytes, messageType } from './messages.js';
import type { ModuleClientLike } from './module-client-like.js';

export interface TAClientOptions {
  /** Output the requests leave on (a route takes them to ta-runtime's input `taRequest`). */
  output?: string;
  /** Input the responses arrive on (a route brings ta-runtime's output `taResponse` here). */
  input?: string;
  defaultTimeoutMs?: number;
  /** Calls waiting for an answer beyond which new calls fail BUSY. */
  maxPending?: number;
  /** Consecutive unanswered calls after which timeouts are reported as UNAVAILABLE (503). */
  unreachableAfter?: number;
  /**
   * Subscribe to the response input on the first call (default true). False when the module's
   * frame owns the subscription (it subscribes once the module is ready) and passes the
   * answers in with `acceptResponse`.
   */
  listen?: boolean;
  /**
   * Confidential calls (`invoke(…, { confidential: true })`): the TA's evidence is verified against
   * this policy, then params and result travel sealed to its attested key (docs/confidential-calls.md).
   */
  confidential?: Omit<ConfidentialClientOptions, 'transport'>;
}

export interface CallOptions {
  timeoutMs?: number;
  sessionId?: string;
  /**
   * Request id (a UUID). A retry of a call that may have reached ta-runtime reuses its id, so
   * ta-runtime answers it from its duplicate cache instead of running it twice. Default: new.
   */
  requestId?: string;
  /** Seal params and result to the TA's attested key (needs TAClientOptions.confidential). */
  confidential?: boolean;
}

export interface TAListing {
  name: string;
  status: string;
  [k: string]: unknown;
}

/** One item's outcome of invokeBatch: its (wire) result, or the error it alone failed with. */
export type BatchOutcome = { ok: true; result: JsonValue | undefined } | { ok: false; error: EnclaveEdgeError };

type OkResponse = Extract<TAResponse, { ok: true }>;

interface Pending {
  resolve: (v: OkResponse) => void;
  reject: (e: EnclaveEdgeError) => void;
  timer: NodeJS.Timeout;
  /** When the request was handed to edgeHub. */
  sentAt: number;
}

type Body = TARequest extends infer R ? (R extends { id: string; deadline: number } ? Omit<R, 'id' | 'deadline' | 'v'> : never) : never;

export class TAClient {
  private readonly pending = new Map<string, Pending>();
  private readonly output: string;
  private readonly input: string;
  private readonly defaultTimeoutMs: number;
  private readonly maxPending: number;
  private readonly unreachableAfter: number;
  private unanswered = 0;
  private lastAnswerAt = 0;
  private started = false;
  private readonly listen: boolean;
  private readonly confidentialOptions: TAClientOptions['confidential'];
  private readonly listener = (inputName: string, msg: Message): void => {
    if (inputName === this.input) this.acceptResponse(msg);
  };

  constructor(private readonly client: ModuleClientLike, opts: TAClientOptions = {}) {
    this.output = opts.output ?? TA_REQUEST_INPUT;
    this.input = opts.input ?? TA_RESPONSE_OUTPUT;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? LIMITS.defaultTimeoutMs;
    this.maxPending = opts.maxPending ?? 4096;
    this.unreachableAfter = opts.unreachableAfter ?? 3;
    this.listen = opts.listen ?? true;
    this.confidentialOptions = opts.confidential;
  }

  /** The input the answers arrive on (for a module frame that owns the input subscription). */
  get responseInput(): string {
    return this.input;
  }

  /**
   * Listen for responses on the client (idempotent). A module whose frame subscribes to its
   * inputs only once it is ready passes the answers in with `acceptResponse` instead.
   */
  start(): this {
    if (!this.started) {
      this.client.on('inputMessage', this.listener);
      this.started = true;
    }
    return this;
  }

  /** Stop listening; calls still waiting fail UNAVAILABLE. */
  stop(): void {
    if (this.started) this.client.removeListener('inputMessage', this.listener);
    this.started = false;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new EnclaveEdgeError('UNAVAILABLE', 'TAClient stopped before the answer arrived'));
      this.pending.delete(id);
    }
  }

  /**
   * Fail, at once, every call sent before `before` (ms since the epoch) that still waits: the
   * ta-runtime instance they went to is gone (its restart notice arrived), so their answers
   * will not come. A call that edgeHub still holds may yet run; a retry with the same
   * `requestId` is answered from ta-runtime's duplicate cache.
   */
  failPendingSentBefore(before: number, error: EnclaveEdgeError): number {
    let n = 0;
    for (const [id, p] of this.pending) {
      if (p.sentAt >= before) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(error);
      n++;
    }
    return n;
  }

  /** Whether ta-runtime has answered recently (false after several unanswered calls). */
  get reachable(): boolean {
    return this.unanswered < this.unreachableAfter;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get lastAnswer(): number {
    return this.lastAnswerAt;
  }

  async invoke(ta: string, command: string, params?: Value, opts: CallOptions = {}): Promise<Value> {
    if (opts.confidential) return (await this.confidentialClient()).invoke(ta, command, params, { ...(opts.sessionId ? { sessionId: opts.sessionId } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    const body: Body = { op: 'invoke', ta, command, ...(params === undefined ? {} : { params: encodeValue(params) }), ...(opts.sessionId ? { sessionId: opts.sessionId } : {}) };
    return decodeValue(await this.call(body, opts.timeoutMs, opts.requestId));
  }

  /** invoke, with params already in wire (JSON) form — what host-module forwards from a direct method. */
  async invokeJson(ta: string, command: string, params: JsonValue | undefined, opts: CallOptions = {}): Promise<JsonValue | undefined> {
    return this.call({ op: 'invoke', ta, command, ...(params === undefined ? {} : { params }), ...(opts.sessionId ? { sessionId: opts.sessionId } : {}) }, opts.timeoutMs, opts.requestId);
  }

  /**
   * Several invocations of one command in one taRequest (op `invokeBatch`), params in wire form.
   * Resolves with one outcome per item, in order; rejects (as `invokeJson` would) only when the
   * request as a whole failed (timeout, unavailable, busy, refused), in which case no item ran
   * unless the error says otherwise (TIMEOUT: unknown).
   */
  async invokeBatchJson(ta: string, command: string, params: Array<JsonValue | undefined>, opts: CallOptions = {}): Promise<BatchOutcome[]> {
    const items = params.map((p) => (p === undefined ? {} : { params: p }));
    const r = await this.request({ op: 'invokeBatch', ta, command, items }, opts.timeoutMs, opts.requestId);
    if (!('items' in r) || r.items.length !== items.length) {
      throw new EnclaveEdgeError('INTERNAL', `ta-runtime answered invokeBatch without one outcome per item (${items.length} sent)`);
    }
    return r.items.map((i) => (i.ok ? { ok: true, result: i.result } : { ok: false, error: EnclaveEdgeError.fromJSON(i.error) }));
  }

  async openSession(ta: string, params?: Value, opts: CallOptions = {}): Promise<string> {
    const r = await this.call({ op: 'openSession', ta, ...(params === undefined ? {} : { params: encodeValue(params) }) }, opts.timeoutMs);
    const sid = (r as { sessionId?: unknown } | undefined)?.sessionId;
    if (typeof sid !== 'string') throw new EnclaveEdgeError('INTERNAL', 'ta-runtime answered openSession without a session id');
    return sid;
  }

  async closeSession(ta: string, sessionId: string, opts: CallOptions = {}): Promise<void> {
    await this.call({ op: 'closeSession', ta, sessionId }, opts.timeoutMs);
  }

  async listTAs(opts: CallOptions = {}): Promise<TAListing[]> {
    const r = await this.call({ op: 'listTAs' }, opts.timeoutMs);
    const tas = (r as { tas?: unknown } | undefined)?.tas;
    return Array.isArray(tas) ? (tas as TAListing[]) : [];
  }

  private confidentialCalls: Promise<ConfidentialClient> | undefined;

  /** The ConfidentialClient of this TAClient: evidence and envelopes over the same edgeHub path (loaded on first use). */
  confidentialClient(): Promise<ConfidentialClient> {
    const options = this.confidentialOptions;
    if (!options) return Promise.reject(new EnclaveEdgeError('CONFIG_INVALID', 'confidential calls need TAClientOptions.confidential (trust anchors and a verifier policy)'));
    return (this.confidentialCalls ??= import('@enclave-edge/confidential/client').then(
      ({ ConfidentialClient }) =>
        new ConfidentialClient({
          ...options,
          transport: {
            attest: (ta, nonce) => this.attest(ta, nonce),
            invoke: async (ta, command, params, o) => (await this.invokeJson(ta, command, params, o ?? {})) ?? null,
          },
        }),
    ));
  }

  /** Evidence (an EAT as a JWT) for a TA, bound to the verifier's nonce. */
  async attest(ta: string, nonce: string, claims?: Record<string, Value>, opts: CallOptions = {}): Promise<string> {
    const r = await this.call({ op: 'attest', ta, nonce, ...(claims ? { claims: encodeValue(claims) as Record<string, JsonValue> } : {}) }, opts.timeoutMs);
    const token = (r as { token?: unknown } | undefined)?.token;
    if (typeof token !== 'string') throw new EnclaveEdgeError('INTERNAL', 'ta-runtime answered attest without a token');
    return token;
  }

  /** Send one request and wait for its answer; the raw (wire) result. */
  async call(body: Body, timeoutMs?: number, requestId?: string): Promise<JsonValue | undefined> {
    const r = await this.request(body, timeoutMs, requestId);
    if ('items' in r) throw new EnclaveEdgeError('INTERNAL', `ta-runtime answered ${body.op} with batch items`);
    return r.result;
  }

  /** Send one request and wait for its (successful) answer; failures reject. */
  private async request(body: Body, timeoutMs?: number, requestId?: string): Promise<OkResponse> {
    if (this.listen) this.start();
    const timeout = Math.min(timeoutMs ?? this.defaultTimeoutMs, LIMITS.maxTimeoutMs);
    if (this.pending.size >= this.maxPending) throw new EnclaveEdgeError('BUSY', `${this.pending.size} calls are already waiting for ta-runtime`);
    const id = requestId ?? randomUUID();
    if (this.pending.has(id)) throw new EnclaveEdgeError('CONFLICT', `request ${id} is already waiting for its answer`);
    const request = checkTARequest({ ...body, id, deadline: Date.now() + timeout }, `${body.op} request`);
    const text = serializeMessage(request);
    const answer = new Promise<OkResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.unanswered++;
        reject(
          this.reachable
            ? new EnclaveEdgeError('TIMEOUT', `no answer from ta-runtime within ${timeout} ms (${body.op}${'ta' in body ? ` ${body.ta}` : ''})`)
            : new EnclaveEdgeError('UNAVAILABLE', `ta-runtime has not answered the last ${this.unanswered} calls`),
        );
      }, timeout);
      timer.unref?.();
      this.pending.set(id, { resolve, reject, timer, sentAt: Date.now() });
    });
    // The answer can come before edgeHub's PUBACK for the request (the hub syncs its journals
    // first); it is awaited below, so a rejection meanwhile is not unhandled.
    answer.catch(() => undefined);
    try {
      await this.client.sendOutputEvent(this.output, jsonMessage('taRequest', text, { messageId: id }));
    } catch (err) {
      const p = this.pending.get(id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(id);
      }
      throw new EnclaveEdgeError('UNAVAILABLE', `could not send to edgeHub: ${toEnclaveEdgeError(err).message}`);
    }
    return answer;
  }

  /** Take one message of the response input (what `start()`'s listener does for each). */
  acceptResponse(msg: Message): void {
    void this.client.complete?.(msg).catch(() => undefined);
    if (messageType(msg) === RUNTIME_READY_TYPE) {
      this.failPendingSentBefore(Date.now(), new EnclaveEdgeError('UNAVAILABLE', 'ta-runtime restarted before it answered; the call may not have run'));
      return;
    }
    let response;
    try {
      response = parseTAResponse(messageBytes(msg));
    } catch {
      return; // not ours or malformed: nothing waits on it by a valid id
    }
    const p = this.pending.get(response.id);
    if (!p) return; // late or duplicate answer
    this.pending.delete(response.id);
    clearTimeout(p.timer);
    this.unanswered = 0;
    this.lastAnswerAt = Date.now();
    if (response.ok) p.resolve(response);
    else p.reject(EnclaveEdgeError.fromJSON(response.error));
  }
}
