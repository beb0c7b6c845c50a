/**
 * The cloud-facing direct methods. Each handler validates its payload, calls ta-runtime
 * through TAClient, and returns `{status, payload}`; every error becomes
 * `{error:{code,message}}` with the taxonomy's status (400/404/409/413/500/503/504).
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import {
  LIMITS, attestSchema, checkPayloadSize, closeSessionSchema, emptySchema, invokeTASchema, methodError, methodOk,
  openSessionSchema, parseWith, type JsonValue, type MethodResult,
} from '@enclave-edge/protocol';
import type { TAClient } from '@enclave-edge/ta-client';
import type { CallRecorder } from './call-recorder.js';

export interface MethodContext {
  ta: TAClient;
  defaultTimeoutMs: () => number;
  recorder: CallRecorder;
  health: () => Promise<Record<string, unknown>>;
}

type Handler = (payload: unknown, ctx: MethodContext) => Promise<unknown>;

const handlers: Record<string, Handler> = {
  async invokeTA(payload, ctx) {
    const p = parseWith(invokeTASchema, payload, 'invokeTA payload');
    const started = performance.now();
    try {
      const result = await ctx.ta.invokeJson(p.ta, p.command, p.params as JsonValue | undefined, {
        timeoutMs: p.timeoutMs ?? ctx.defaultTimeoutMs(),
        ...(p.sessionId ? { sessionId: p.sessionId } : {}),
      });
      ctx.recorder.record(p.ta, p.command, performance.now() - started);
      return { result: result ?? null };
    } catch (err) {
      ctx.recorder.record(p.ta, p.command, performance.now() - started, err);
      throw err;
    }
  },
  async listTAs(payload, ctx) {
    parseWith(emptySchema, payload, 'listTAs payload');
    return { tas: await ctx.ta.listTAs({ timeoutMs: ctx.defaultTimeoutMs() }) };
  },
  async openSession(payload, ctx) {
    const p = parseWith(openSessionSchema, payload, 'openSession payload');
    const sessionId = await ctx.ta.call({ op: 'openSession', ta: p.ta, ...(p.params === undefined ? {} : { params: p.params as JsonValue }) }, p.timeoutMs ?? ctx.defaultTimeoutMs());
    return sessionId;
  },
  async closeSession(payload, ctx) {
    const p = parseWith(closeSessionSchema, payload, 'closeSession payload');
    await ctx.ta.closeSession(p.ta, p.sessionId, { timeoutMs: ctx.defaultTimeoutMs() });
    return { closed: true };
  },
  async attest(payload, ctx) {
    const p = parseWith(attestSchema, payload, 'attest payload');
    const r = await ctx.ta.call({ op: 'attest', ta: p.ta, nonce: p.nonce, ...(p.claims ? { claims: p.claims as Record<string, JsonValue> } : {}) }, ctx.defaultTimeoutMs());
    return r;
  },
  async health(payload, ctx) {
    parseWith(emptySchema, payload, 'health payload');
    return ctx.health();
  },
};

export const HOST_METHOD_NAMES = Object.keys(handlers);

export async function handleMethod(name: string, payload: unknown, ctx: MethodContext): Promise<MethodResult> {
  try {
    const handler = handlers[name];
    if (!handler) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no method "${name}"`);
    checkPayloadSize(payload, `${name} payload`);
    const result = await handler(payload, ctx);
    checkPayloadSize(result, `${name} result`, LIMITS.maxMethodPayloadBytes - 64);
    return methodOk(result);
  } catch (err) {
    return methodError(err);
  }
}
