/**
 * One TA's own OS process (its fault domain), seen from the runtime: it hosts that TA's enclave
 * workers, which the runtime drives as RemoteWorkers exactly like worker threads. Memory is
 * bounded by the OS (RLIMIT_AS via prlimit) and by a resident-set watch from this side; when
 * the process dies, every worker in it reports the cause (OUT_OF_MEMORY or a crash) and the
 * enclave restarts instances with its back-off. Nothing of another TA or of the runtime is in it.
 */
import { fork, execFile, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { TAManifest } from '@enclave-edge/bundle/types';
import type { WorkerBoot } from '../wire/protocol.cjs';
import type { FromChild, ToChild } from '../wire/process-protocol.cjs';
import type { EnclaveWorker, WorkerHost } from '../threads/enclave-worker.js';
import { WORKER_OUT_OF_MEMORY } from '../threads/enclave-worker.js';
import type { WorkerShape } from '../threads/worker-shape.js';
import { probeOsLimits, residentOf } from './os-limits.js';
import type { ChannelAddress, FrameChannel } from '../wire/frame-channel.cjs';
import { directChannels, expectChannel, forgetChannel } from './channel-server.js';

const CHILD_FILE = fileURLToPath(new URL('../child/main.cjs', import.meta.url));
/** What V8 or the allocator prints when a process runs out of memory. */
const OOM_TEXT = /out of memory|Allocation failed|Reached heap limit|bad_alloc|Cannot allocate memory|could not allocate/i;
const STDERR_TAIL = 8192;
const WATCH_EVERY_MS = 100;

export interface TaProcessLimits {
  /** RLIMIT_AS in bytes (applied when prlimit is installed). */
  addressSpace: number;
  /** Resident-set bound in bytes, watched from the runtime. */
  resident: number;
  /** V8's Wasm trap handler on (fixed at spawn; `addressSpace` then has room for guarded memories). */
  wasmTrapHandler: boolean;
}

export interface RunAs {
  uid: number;
  gid: number;
}

/** How an enclave puts its TA in a process: the bounds for its manifest, the uid, a new process. */
export interface ProcessIsolation {
  limitsFor(m: TAManifest): TaProcessLimits;
  runAsFor(ta: string): RunAs | undefined;
  create(limits: TaProcessLimits): TaProcess;
}

let nextWid = 1;

/** An enclave worker thread inside a TA process, driven from the runtime. */
export class RemoteWorker extends EventEmitter implements EnclaveWorker {
  readonly wid = nextWid++;
  exited = false;

  /** Like a Worker's: -1 once it has exited. */
  get threadId(): number {
    return this.exited ? -1 : this.wid;
  }

  private refd = true;
  /** Direct channel to the worker (see channel-server): absent until it connects, or when messages go through the process. */
  private channel: FrameChannel | undefined;
  /** Messages posted before the worker's channel is up. */
  private outbox: unknown[] | undefined;
  private channelClosed = false;
  private exitCode: number | undefined;

  constructor(readonly proc: TaProcess) {
    super();
  }

  /** Messages go over a channel of this worker's own, once it connects: the address it is spawned with. */
  expectDirect(): ChannelAddress {
    this.outbox = [];
    return expectChannel(this.wid, (ch) => this.attach(ch));
  }

  postMessage(m: unknown): void {
    if (this.exited) return;
    if (this.channel) this.channel.postMessage(m);
    else if (this.outbox) this.outbox.push(m);
    else this.proc.send({ t: 'post', wid: this.wid, m });
  }

  terminate(): Promise<number> {
    if (this.exited) return Promise.resolve(1);
    const done = new Promise<number>((r) => this.once('exit', r));
    // Whoever awaits the end is held until it comes (a standby is unref'd; ended() lets go).
    this.ref();
    this.proc.send({ t: 'terminate', wid: this.wid });
    return done;
  }

  ref(): void {
    if (!this.refd) this.proc.refs(+1);
    this.refd = true;
    this.channel?.socket.ref();
  }

  unref(): void {
    if (this.refd) this.proc.refs(-1);
    this.refd = false;
    this.channel?.socket.unref();
  }

  /** From the process: the worker thread exited. What it sent before is still read off its channel first. */
  exitReported(code: number): void {
    if (!this.channel || this.channelClosed) return this.ended(code);
    this.exitCode = code;
    // A thread's sockets close when it ends; should this one not, stop waiting for it.
    setTimeout(() => this.channel?.close(), 2000).unref();
  }

  /** From the process: the worker's exit (or the process's). */
  ended(code: number): void {
    if (this.exited) return;
    this.exited = true;
    forgetChannel(this.wid);
    this.channel?.close();
    this.outbox = undefined;
    if (this.refd) this.proc.refs(-1);
    this.refd = false;
    this.emit('exit', code);
  }

  private attach(ch: FrameChannel): void {
    if (this.exited) return ch.close();
    this.channel = ch;
    if (this.refd) ch.socket.ref();
    ch.on('message', (m: unknown) => {
      if (!this.exited) this.emit('message', m);
    });
    ch.on('error', (e: Error) => this.proc.violated(`the channel of one of its workers broke (${e.message.slice(0, 200)})`));
    ch.on('close', () => {
      this.channelClosed = true;
      if (this.exitCode !== undefined) this.ended(this.exitCode);
    });
    for (const m of this.outbox?.splice(0) ?? []) ch.postMessage(m);
    this.outbox = undefined;
  }
}

export class TaProcess implements WorkerHost {
  readonly child: ChildProcess;
  /** The TA this process serves once assigned; a standby serves none yet. */
  owner: string | undefined;
  /** The uid it was told to run under (as root), if any. */
  uid: number | undefined;
  private readonly workers = new Map<number, RemoteWorker>();
  private readonly queue: ToChild[] = [];
  private holds = 1; // until the child says hello
  private saidHello = false;
  /** assign()'s limit change, held until the child runs node (see assign). */
  private afterHello: (() => void) | undefined;
  private refCount = 0;
  private stderrTail = '';
  private oom: string | undefined;
  private gone = false;
  private watch: NodeJS.Timeout | undefined;
  private readonly events = new EventEmitter();

  /**
   * `standby`: spawned before its TA is known, so only the soft RLIMIT_AS is set and the hard
   * one stays open; assign() sets both to the TA's bound (lowering a hard limit needs no
   * privilege, raising one would). Its kind (Wasm trap handler or not) is fixed here.
   */
  constructor(
    private limits: TaProcessLimits,
    private readonly standby = false,
  ) {
    const os = probeOsLimits();
    // The TA's process starts bare: no runtime environment (connection strings, tokens), no inherited flags.
    const nodeFlags = [...(limits.wasmTrapHandler ? [] : ['--disable-wasm-trap-handler']), '--max-old-space-size=64', '--no-warnings'];
    const as = os.addressSpace;
    this.child = fork(CHILD_FILE, [], {
      ...(as.enforced ? { execPath: as.prlimit, execArgv: [`--as=${limits.addressSpace}:${standby ? 'unlimited' : limits.addressSpace}`, process.execPath, ...nodeFlags] } : { execArgv: nodeFlags }),
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { MALLOC_ARENA_MAX: '2' },
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-STDERR_TAIL);
    });
    this.child.on('message', (m: FromChild) => this.onMessage(m));
    this.child.on('error', () => this.end(null, null));
    // 'close', not 'exit': by then its stderr is read to the end (what V8 printed when it ran out of memory).
    this.child.on('close', (code, signal) => this.end(code, signal));
    this.unrefHandles();
    if (probeOsLimits().residentWatch.enforced) {
      this.watch = setInterval(() => this.checkResident(), WATCH_EVERY_MS);
      this.watch.unref();
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isGone(): boolean {
    return this.gone;
  }

  get workerCount(): number {
    return this.workers.size;
  }

  on(event: 'gone', listener: (why: string) => void): this {
    this.events.on(event, listener);
    return this;
  }

  spawn(shape: WorkerShape, boot: WorkerBoot, name: string): RemoteWorker {
    const w = new RemoteWorker(this);
    this.workers.set(w.wid, w);
    this.refs(+1);
    if (this.gone) queueMicrotask(() => this.fail(w, this.deathError()));
    else {
      // An inspected worker may block in waitForDebugger right after it says where its inspector is:
      // that word must travel by the thread's port (delivered while it blocks), not a socket it has yet to connect.
      const channel = directChannels() && !boot.init?.inspect ? w.expectDirect() : undefined;
      this.send({ t: 'spawn', wid: w.wid, heapMb: shape.heapMb, stackMb: shape.stackMb, boot: channel ? { ...boot, channel } : boot, name });
    }
    return w;
  }

  /**
   * Make this the process of one TA: its memory bound (RLIMIT_AS lowered or raised to fit the
   * TA's instances) and, as root, its own uid. Messages sent meanwhile wait until it is done.
   */
  assign(ta: string, limits: TaProcessLimits, runAs?: RunAs): void {
    if (this.owner !== undefined) throw new Error(`process ${this.pid} already serves TA "${this.owner}"`);
    if (limits.wasmTrapHandler !== this.limits.wasmTrapHandler) throw new Error(`process ${this.pid} was started for TAs of another runtime than "${ta}"`);
    this.owner = ta;
    this.uid = runAs?.uid;
    const msg: ToChild = { t: 'assign', ta, ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}) };
    const os = probeOsLimits();
    // A standby's hard limit is still open even when its soft one already is the TA's bound
    // (assign runs once per process, so this is the state the constructor left).
    const changed = limits.addressSpace !== this.limits.addressSpace || this.standby;
    this.limits = limits;
    if (!(os.addressSpace.enforced && changed) || this.pid === undefined) {
      this.queue.unshift(msg);
      this.flush();
      return;
    }
    this.holds++;
    const prlimit = os.addressSpace.prlimit;
    const setLimit = () => execFile(prlimit, ['--pid', String(this.pid), `--as=${limits.addressSpace}:${limits.addressSpace}`], (err) => {
      // Fail closed: a TA never runs in a process whose bound could not be set.
      if (err) {
        this.oom = undefined;
        this.kill(`its address-space limit could not be set (${err.message.split('\n')[0]})`);
      }
      this.queue.unshift(msg);
      this.holds--;
      this.flush();
    });
    // Until the child says hello, its pid may still be the prlimit wrapper, which has yet to set
    // its own limits: lowering the hard limit first would make that raise fail (EPERM without
    // CAP_SYS_RESOURCE) and the process exit before node starts.
    if (this.saidHello) setLimit();
    else this.afterHello = setLimit;
  }

  send(m: ToChild): void {
    if (this.gone) return;
    if (this.holds > 0) this.queue.push(m);
    else this.child.send(m);
  }

  /** Workers that keep the runtime alive (standbys do not). */
  refs(delta: number): void {
    const before = this.refCount;
    this.refCount += delta;
    if (before === 0 && this.refCount > 0) {
      this.child.ref();
      this.child.channel?.ref();
      (this.child.stderr as Socket | null)?.ref();
    } else if (before > 0 && this.refCount === 0) this.unrefHandles();
  }

  /** End the process (orderly: its workers are terminated first by their instances). */
  close(): void {
    this.kill('closed');
  }

  /** A worker broke the protocol: nothing this process says can be trusted any more. */
  violated(why: string): void {
    this.kill(why);
  }

  private kill(why: string): void {
    if (this.gone) return;
    this.closing = why;
    this.child.kill('SIGKILL');
  }

  private closing: string | undefined;

  private unrefHandles(): void {
    this.child.unref();
    this.child.channel?.unref();
    (this.child.stderr as Socket | null)?.unref();
  }

  /** End the process once its last worker has exited (an instance's onDestroy still runs). */
  closeWhenIdle(): void {
    this.retiring = true;
    if (this.workers.size === 0) this.close();
  }

  private retiring = false;

  private flush(): void {
    if (this.holds > 0 || this.gone) return;
    for (const m of this.queue.splice(0)) this.child.send(m);
  }

  private checkResident(): void {
    if (this.gone || this.pid === undefined) return;
    const rss = residentOf(this.pid);
    if (rss !== undefined && rss > this.limits.resident) {
      this.oom = `its resident memory reached ${Math.round(rss / 1048576)} MiB, past the TA's bound of ${Math.round(this.limits.resident / 1048576)} MiB`;
      this.kill(this.oom);
    }
  }

  /** Anything the child sends is checked: a message no honest relay sends ends the process. */
  private onMessage(raw: unknown): void {
    const m = raw as FromChild;
    if (!m || typeof m !== 'object' || typeof m.t !== 'string') return this.kill('it sent a message that is not an object with a type');
    if (m.t === 'hello') {
      if (this.saidHello) return this.kill('it said hello twice');
      this.saidHello = true;
      const after = this.afterHello;
      this.afterHello = undefined;
      after?.();
      this.holds--;
      this.flush();
      return;
    }
    const w = Number.isSafeInteger((m as { wid?: unknown }).wid) ? this.workers.get((m as { wid: number }).wid) : undefined;
    if (!w) return; // a worker this side already let go of
    switch (m.t) {
      case 'msg':
        w.emit('message', m.m);
        return;
      case 'error':
        w.emit('error', Object.assign(new Error(String(m.message).slice(0, 2048)), { code: String(m.code).slice(0, 64) }));
        return;
      case 'exit':
        this.workers.delete(w.wid);
        w.exitReported(typeof m.code === 'number' ? m.code : 1);
        if ((this.owner === undefined || this.retiring) && this.workers.size === 0) this.close(); // a standby let go, or a retired process
        return;
      default:
        this.kill(`it sent an unknown message type "${String((m as { t: unknown }).t).slice(0, 40)}"`);
    }
  }

  private deathError(): Error & { code: string; taProcess: true } {
    const oom = this.oom ?? (OOM_TEXT.test(this.stderrTail) ? 'V8 or the allocator reported out of memory' : undefined);
    if (oom) return Object.assign(new Error(`the TA's process ran out of memory: ${oom}`), { code: WORKER_OUT_OF_MEMORY, taProcess: true as const });
    const why = this.closing && this.closing !== 'closed' ? `the runtime ended it: ${this.closing}` : `it exited (${this.exitText})`;
    return Object.assign(new Error(`the TA's process ended: ${why}`), { code: 'ERR_TA_PROCESS_EXITED', taProcess: true as const });
  }

  private exitText = '';

  private fail(w: RemoteWorker, err: Error): void {
    if (w.exited) return;
    w.emit('error', err);
    w.ended(1);
  }

  private end(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.gone) return;
    this.gone = true;
    if (this.watch) clearInterval(this.watch);
    this.exitText = signal ? `signal ${signal}` : `code ${code}`;
    const err = this.deathError();
    const all = [...this.workers.values()];
    this.workers.clear();
    for (const w of all) this.fail(w, err);
    this.events.emit('gone', err.message);
  }
}
