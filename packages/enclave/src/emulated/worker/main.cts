/**
 * The enclave worker: one per enclave instance, its own V8 isolate. Loads the TA (SES
 * compartment or Wasm instance), then serves calls from the host over postMessage. Runtime code here is trusted; the TA's code runs only inside the compartment.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { connect } from 'node:net';
import type { Value } from '@enclave-edge/ta-sdk';
import type { BatchOutcome, CallKind, FromWorker, HostPort, ToWorker, WireError, WorkerBoot, WorkerInit } from '../wire/protocol.cjs';
import { BATCH_REPORT_BYTES } from '../wire/protocol.cjs';
import { FrameChannel } from '../wire/frame-channel.cjs';
import { TA_PASSABLE_CODES } from '../wire/protocol.cjs';
import { copyValue, isProblem } from '../wire/values.cjs';
import { makeContextBase } from './context.cjs';
import { ServiceRpc, codedError, hostRefusalCode } from './rpc.cjs';
import { LogPoster } from './log-poster.cjs';
import { checkBinaryMemory, watchBinaryMemory } from './memory-watch.cjs';
import { lockdownRealm, loadJsTA } from './js-ta.cjs';
import type { LoadedTA, WorkerSession } from './loaded-ta.cjs';
import { CONFIDENTIAL_COMMAND, ENCLAVE_ATTEST_COMMAND } from '@enclave-edge/confidential/names';
import { ConfidentialEndpoint } from './confidential.cjs';

const now = () => performance.timeOrigin + performance.now();
const entered = now();
const boot = workerData as WorkerBoot;
const port: HostPort = boot.channel ? directChannel(boot.channel) : (parentPort as MessagePort);

/** In a TA's own process: straight to the runtime, not through the process's main thread (one hop less per message). */
function directChannel(a: NonNullable<WorkerBoot['channel']>): FrameChannel {
  const ch = new FrameChannel(connect({ path: a.path }));
  ch.postMessage({ t: 'hello', wid: a.wid, token: a.token });
  // The runtime closed the channel (or is gone): nobody can reach this instance any more.
  ch.on('close', () => process.exit(0));
  ch.on('error', () => undefined);
  return ch;
}
// A standby worker learns its one TA later, from a single `init` message; nothing calls in before that.
let init: WorkerInit | undefined = boot.init;
const post = (m: FromWorker) => port.postMessage(m);

/** Anything thrown, as a wire error. Reading a TA's thrown object may itself throw (getters, proxies). */
function toWire(err: unknown): WireError {
  try {
    if (err && typeof err === 'object') {
      const e = err as { code?: unknown; message?: unknown; stack?: unknown };
      const code = hostRefusalCode(err) ?? (typeof e.code === 'string' && (TA_PASSABLE_CODES.has(e.code) || (e.code === 'OUT_OF_MEMORY' && init?.manifest.runtime === 'wasm')) ? e.code : 'TA_ERROR');
      const message = typeof e.message === 'string' ? e.message.slice(0, 4096) : 'the TA threw a non-Error value';
      const w: WireError = { code: code as WireError['code'], message };
      if (init?.ta.debug && typeof e.stack === 'string') w.stack = e.stack.slice(0, 16384);
      return w;
    }
    return { code: 'TA_ERROR', message: `the TA threw ${typeof err === 'string' ? JSON.stringify(err.slice(0, 1024)) : String(err)}` };
  } catch {
    return { code: 'TA_ERROR', message: 'the TA threw a value that could not be inspected' };
  }
}

const sessions = new Map<string, WorkerSession>();
let implicitCounter = 0;
let ta: LoadedTA;
let confidential: ConfidentialEndpoint;
let confidentialOnly: ReadonlySet<string> = new Set();

type Outcome = { ok: true; value: Value; bin: boolean; bytes?: number } | { ok: false; error: WireError };

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

async function runCall(kind: CallKind, sid: string | undefined, cmd: string, params: Value): Promise<Outcome> {
  const out = await runCallInner(kind, sid, cmd, params);
  checkBinaryMemory();
  return out;
}

async function runCallInner(kind: CallKind, sid: string | undefined, cmd: string, params: Value): Promise<Outcome> {
  try {
    if (kind === 'open') {
      if (!sid || sessions.has(sid)) throw codedError('CONFLICT', `session ${sid} already exists`);
      const s: WorkerSession = Object.freeze({ id: sid, state: {} });
      sessions.set(sid, s);
      try {
        await ta.open(s, params);
      } catch (err) {
        sessions.delete(sid);
        throw err;
      }
      return { ok: true, value: null, bin: false };
    }
    if (kind === 'close') {
      const s = sid === undefined ? undefined : sessions.get(sid);
      if (s) {
        sessions.delete(s.id);
        await ta.close(s);
      }
      return { ok: true, value: null, bin: false };
    }
    let s: WorkerSession | undefined;
    let implicit = false;
    if (sid === undefined) {
      s = Object.freeze({ id: `implicit-${++implicitCounter}`, state: {} });
      implicit = true;
      const o = ta.open(s, null);
      if (o) await o;
    } else {
      s = sessions.get(sid);
      if (!s) throw codedError('ITEM_NOT_FOUND', `no open session ${sid}`);
    }
    try {
      if (cmd === CONFIDENTIAL_COMMAND) {
        const session = s;
        const out = await confidential.serve(params, (command, p) => invokeTA(session, command, p, true));
        return out.ok ? { ok: true, value: out.value, bin: false } : out;
      }
      if (cmd === ENCLAVE_ATTEST_COMMAND) return { ok: true, value: await confidential.attest(params), bin: false };
      if (confidentialOnly.has(cmd)) throw codedError('ACCESS_DENIED', `command "${cmd}" answers only confidential calls (an envelope sealed to this TA's attested key; see docs/confidential-calls.md)`);
      return await invokeTA(s, cmd, params, false);
    } finally {
      if (implicit) {
        const c = ta.close(s);
        if (c) await c;
      }
    }
  } catch (err) {
    return { ok: false, error: toWire(err) };
  }
}

async function invokeTA(s: WorkerSession, cmd: string, params: Value, isConfidential: boolean): Promise<{ ok: true; value: Value; bin: boolean; bytes: number }> {
  let raw = ta.invoke(s, cmd, params, isConfidential ? CONFIDENTIAL_CALLER : PLAIN_CALLER);
  if (isThenable(raw)) raw = await raw;
  const c = copyValue(raw === undefined ? null : raw, init!.maxPayloadBytes, 'result');
  if (isProblem(c)) throw codedError(c.code === 'PAYLOAD_TOO_LARGE' ? 'PAYLOAD_TOO_LARGE' : 'TA_ERROR', `command "${cmd}": ${c.message}`);
  return { ok: true, value: c.value, bin: c.hasBinary, bytes: c.bytes };
}

/**
 * A batch: each item is one session-less invoke through runCall, exactly as a `call` message,
 * one after another. Answers go out together at the end, and earlier: before an item starts,
 * once they have waited reportMs or are large (`restart`: the host times the rest from there),
 * and when any service call goes out (it may take long; no restart, an item is running).
 */
async function runBatch(rpc: ServiceRpc, id: number, cmd: string, items: Value[], reportMs: number): Promise<void> {
  let from = 0;
  let outcomes: BatchOutcome[] = [];
  let bytes = 0;
  let since = performance.now();
  const report = (restart: boolean, last: boolean) => {
    post({ t: 'batchPart', id, from, outcomes, last, restart });
    from += outcomes.length;
    outcomes = [];
    bytes = 0;
    since = performance.now();
  };
  const beforeCall = () => {
    if (outcomes.length > 0) report(false, false);
  };
  rpc.beforeCall.add(beforeCall);
  try {
    for (let i = 0; i < items.length; i++) {
      if (outcomes.length > 0 && (performance.now() - since >= reportMs || bytes >= BATCH_REPORT_BYTES)) report(true, false);
      const out = await runCall('invoke', undefined, cmd, items[i]!);
      outcomes.push(out.ok ? { ok: true, value: out.value } : { ok: false, error: out.error });
      bytes += out.ok ? (out.bytes ?? init!.maxPayloadBytes) : 4096;
    }
  } finally {
    rpc.beforeCall.delete(beforeCall);
  }
  report(true, true);
}

const PLAIN_CALLER = Object.freeze({ confidential: false });
const CONFIDENTIAL_CALLER = Object.freeze({ confidential: true });

async function main(): Promise<void> {
  const rpc = new ServiceRpc(port);
  let sesCache: Uint8Array | undefined;
  let lockedDown = entered;
  let loaded = entered;
  let assign: ((i: WorkerInit) => void) | undefined;
  const assigned = new Promise<WorkerInit>((r) => (assign = r));
  const logs = new LogPoster(port);
  process.on('unhandledRejection', (reason) => {
    const message = `unhandled promise rejection in the TA: ${toWire(reason).message}`;
    logs.post('warn', message, undefined, message.length);
  });
  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'init':
        // Exactly once, and only for a standby: a worker never takes a second TA.
        if (!init && assign) {
          assign(m.init);
          assign = undefined;
        }
        break;
      case 'call':
        void runCall(m.kind, m.sid, m.cmd, m.params).then((out) => post(out.ok ? { t: 'done', id: m.id, ok: true, value: out.value } : { t: 'done', id: m.id, ok: false, error: out.error }));
        break;
      case 'batch':
        void runBatch(rpc, m.id, m.cmd, m.items, m.reportMs);
        break;
      case 'svcReply':
        rpc.settle(m.id, m.ok, m.ok ? m.value : undefined, m.ok ? undefined : m.error);
        break;
      case 'destroy':
        void (ta ? ta.destroy() : Promise.resolve())
          .catch(() => undefined)
          .then(() => {
            // A debugger still attached would keep the worker from ending: let it go first.
            if (init?.inspect) (require('node:inspector') as typeof import('node:inspector')).close();
            post({ t: 'destroyed' });
          });
        break;
    }
  });
  try {
    if (boot.init?.inspect) {
      // Loopback only; the host prints the URL before any TA code runs, so a debugger can attach to set breakpoints.
      const inspector = require('node:inspector') as typeof import('node:inspector');
      inspector.open(0, '127.0.0.1', false);
      post({ t: 'inspector', url: inspector.url() ?? '' });
      if (boot.init.inspectWait) {
        // The wait blocks this thread: the URL must have left on the channel first.
        if (port instanceof FrameChannel) await port.flushed();
        inspector.waitForDebugger();
      }
    }
    if (boot.prep.ses) sesCache = lockdownRealm(boot.prep);
    lockedDown = now();
  } catch (err) {
    post({ t: 'initError', error: toWire(err) });
    return;
  }
  if (!init) {
    post(sesCache ? { t: 'standby', sesCache } : { t: 'standby' });
    init = await assigned;
  }
  const got = now();
  const me = init;
  try {
    confidential = new ConfidentialEndpoint(me, rpc, logs, toWire);
    confidentialOnly = new Set(me.manifest.confidentialCommands ?? []);
    const base = makeContextBase(me, logs, rpc, me.maxPayloadBytes, () => confidential.publicKey());
    ta = me.manifest.runtime === 'js' ? loadJsTA(me, base, base.log) : (require('./wasm-ta.cjs') as typeof import('./wasm-ta.cjs')).loadWasmTA(me, base);
    loaded = now();
    watchBinaryMemory(me.manifest.limits.heapMb);
    await ta.create();
    checkBinaryMemory(true);
  } catch (err) {
    const w = toWire(err);
    post({ t: 'initError', error: w.code === 'TA_ERROR' && !(err as { code?: string })?.code ? { ...w, message: `TA failed to start: ${w.message}` } : w });
    return;
  }
  const startup = { entered, lockedDown, assigned: got, loaded, created: now() };
  post({ t: 'ready', startup, ...(sesCache ? { sesCache } : {}) });
}

void main();
