/**
 * The cloud-facing direct methods. Each handler validates its payload and calls ta-runtime
 * through TAClient; the module frame's dispatch turns results and errors into `{status, payload}`
 * (errors as `{error:{code,message}}` with the taxonomy's status: 400/404/409/413/500/503/504).
 */
import {
  attestSchema, closeSessionSchema, emptySchema, invokeTASchema, openSessionSchema, parseWith, type JsonValue, type MethodResult,
} from '@enclave-edge/protocol';
import type { TAClient } from '@enclave-edge/ta-client';
import { dispatchMethod, type CallRecorder, type MethodTable } from '@enclave-edge/module-frame';

export interface MethodContext {
  ta: TAClient;
  defaultTimeoutMs: () => number;
  recorder: CallRecorder;
  health: () => Promise<Record<string, unknown>>;
}

type Handler = (payload: unknown, ctx: MethodContext) => Promise<unknown>;

const handlers: Record<string, Handler> = {
  async invokeTA(payload: unknown, ctx: MethodContext) {
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
  async listTAs(payload: unknown, ctx: MethodContext) {
    parseWith(emptySchema, payload, 'listTAs payload');
    return { tas: await ctx.ta.listTAs({ timeoutMs: ctx.defaultTimeoutMs() }) };
  },
  async openSession(payload: unknown, ctx: MethodContext) {
    const p = parseWith(openSessionSchema, payload, 'openSession payload');
    const sessionId = await ctx.ta.call({ op: 'openSession', ta: p.ta, ...(p.params === undefined ? {} : { params: p.params as JsonValue }) }, p.timeoutMs ?? ctx.defaultTimeoutMs());
    return sessionId;
  },
  async closeSession(payload: unknown, ctx: MethodContext) {
    const p = parseWith(closeSessionSchema, payload, 'closeSession payload');
    await ctx.ta.closeSession(p.ta, p.sessionId, { timeoutMs: ctx.defaultTimeoutMs() });
    return { closed: true };
  },
  async attest(payload: unknown, ctx: MethodContext) {
    const p = parseWith(attestSchema, payload, 'attest payload');
    const r = await ctx.ta.call({ op: 'attest', ta: p.ta, nonce: p.nonce, ...(p.claims ? { claims: p.claims as Record<string, JsonValue> } : {}) }, ctx.defaultTimeoutMs());
    return r;
  },
  async health(payload: unknown, ctx: MethodContext) {
    parseWith(emptySchema, payload, 'health payload');
    return ctx.health();
  },
};

export const HOST_METHOD_NAMES = Object.keys(handlers);

/** The methods bound to a context, for the module frame. */
export function hostMethods(ctx: MethodContext): MethodTable {
  return new Map(Object.entries(handlers as Record<string, Handler>).map(([name, h]) => [name, (payload: unknown) => h(payload, ctx)]));
}

/** Run one method as the module does (tests call this without a frame). */
export function handleMethod(name: string, payload: unknown, ctx: MethodContext): Promise<MethodResult> {
  return dispatchMethod(hostMethods(ctx), name, payload);
}
