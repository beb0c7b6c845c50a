/**
 * A fault domain is one TA: each TA's instances run in an OS process of its own, so whatever a
 * TA allocates ends as OUT_OF_MEMORY for that TA alone while every other TA keeps answering and
 * this (the runtime's) process lives on.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { EmulatedBackend, type EmulatedEnclave, type EnclaveEvent } from '@enclave-edge/enclave';
import { makeTestBundle, testManifest } from '@enclave-edge/enclave/testing';
import { probeOsLimits } from '@enclave-edge/enclave/internals';
import { compileWasmTA } from './fixtures/wasm-ta.js';

const backend = new EmulatedBackend({ restart: { backoffMs: 10, backoffMaxMs: 50 } });
const live: EmulatedEnclave[] = [];
afterAll(async () => {
  await Promise.all(live.map((e) => e.destroy()));
  await backend.destroy();
});
const track = (e: EmulatedEnclave) => (live.push(e), e);

const HELLO = `module.exports = { commands: { ping: (ctx, p) => ({ pong: p }) } };`;

/** Allocation patterns a TA can use to run a process out of memory, each in a command. */
const HOG = String.raw`
module.exports = { commands: {
  ping: () => 'pong',
  jsArray: () => new Array(3e7).fill(1.5).length,
  splitString: () => 'x'.repeat(1 << 24).split('').length,
  arrayBuffers: () => { const l = []; for (;;) l.push(new Uint8Array(64 << 20).fill(1)); },
} };`;

const CREATE_HOG = `module.exports = { onCreate() { globalThis.keep = new Array(3e7).fill(1.5); }, commands: { ping: () => 'pong' } };`;

/** LEB128, unsigned and signed, for the hand-assembled modules below. */
const uleb = (n: number): number[] => {
  const o: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    o.push(b);
  } while (n);
  return o;
};
const sleb = (n: number): number[] => {
  const o: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...o, b];
    o.push(b | 0x80);
  }
};

/**
 * A Wasm TA (the ABI's memory, ta_alloc, ta_invoke) with `tables` funcref tables of `initial`
 * entries each; every ta_invoke grows each table by `grow` entries. Tables live on the V8 heap,
 * outside what the linear-memory cap bounds: millions of entries are a fatal OOM for V8.
 */
function tableModule(tables: number, initial: number, grow: number): Uint8Array {
  const sec = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
  const str = (s: string) => [...uleb(s.length), ...Buffer.from(s)];
  const growAll = Array.from({ length: tables }, (_, k) => [0xd0, 0x70, 0x41, ...sleb(grow), 0xfc, 0x0f, ...uleb(k), 0x1a]).flat();
  const bodies = [
    [0x00, 0x41, 0x00, 0x0b],
    [0x00, ...growAll, 0x41, 0x00, 0x0b],
  ].map((b) => [...uleb(b.length), ...b]);
  return new Uint8Array([
    ...[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...sec(1, vec([[0x60, 1, 0x7f, 1, 0x7f], [0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f]])),
    ...sec(3, vec([[0], [1]])),
    ...sec(4, vec(Array.from({ length: tables }, () => [0x70, 0x00, ...uleb(initial)]))),
    ...sec(5, vec([[0x00, 0x01]])),
    ...sec(7, vec([[...str('memory'), 2, 0], [...str('ta_alloc'), 0, 0], [...str('ta_invoke'), 0, 1]])),
    ...sec(10, vec(bodies)),
  ]);
}

/** Keep calling `hello` until stopped; every answer must be right. */
function keepCalling(e: EmulatedEnclave): { stop: () => Promise<{ ok: number; failed: unknown[] }> } {
  let running = true;
  let ok = 0;
  const failed: unknown[] = [];
  const loop = (async () => {
    for (let n = 0; running; n++) {
      try {
        const r = await e.invoke(undefined, 'ping', n);
        if ((r as { pong: number }).pong === n) ok++;
        else failed.push(r);
      } catch (err) {
        failed.push(err);
        break;
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      // One more answered call after the fault (the marker).
      expect(await e.invoke(undefined, 'ping', -1)).toEqual({ pong: -1 });
      return { ok, failed };
    },
  };
}

describe('fault domain: a process per TA', () => {
  it('runs each TA in an OS process of its own, apart from this one', async () => {
    const a = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-a' })));
    const b = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-b' })));
    const pa = a.processInfo()!.pid;
    const pb = b.processInfo()!.pid;
    expect(new Set([pa, pb, process.pid]).size).toBe(3);
    // The TA's process starts bare: none of the runtime's environment.
    expect(readFileSync(`/proc/${pa}/environ`, 'latin1').split('\0').filter((v) => v && !v.startsWith('NODE_CHANNEL_'))).toEqual(['MALLOC_ARENA_MAX=2']);
  });

  it.each(['jsArray', 'splitString', 'arrayBuffers'])('%s in a command: OUT_OF_MEMORY for that TA only; the others answer throughout', async (command) => {
    const hello = track(await backend.create(makeTestBundle(HELLO, { name: `fd-hello-${command.toLowerCase()}` })));
    const hog = track(await backend.create(makeTestBundle(HOG, { name: `fd-hog-${command.toLowerCase()}` })));
    const crashed = new Promise<EnclaveEvent>((r) => hog.on('event', (ev) => ev.type === 'crashed' && r(ev)));
    const before = hog.processInfo()!.pid;
    const calls = keepCalling(hello);
    // Either the call itself ends OUT_OF_MEMORY, or (a split that just fits) it answers and the
    // TA's process dies of it right after: OUT_OF_MEMORY for the TA either way.
    const answer = await hog.invoke(undefined, command).then(
      () => undefined,
      (err: { code: string }) => err.code,
    );
    expect([undefined, 'OUT_OF_MEMORY']).toContain(answer);
    expect(await crashed).toMatchObject({ type: 'crashed', code: 'OUT_OF_MEMORY' });
    const { ok, failed } = await calls.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    // The TA serves again, in a new instance (a new process when its process was the one that died).
    expect(await hog.invoke(undefined, 'ping')).toBe('pong');
    expect(hog.processInfo()!.pid).toBeGreaterThan(0);
    expect([before, hog.processInfo()!.pid]).not.toContain(process.pid);
  });

  it('OOM in onCreate: create() fails OUT_OF_MEMORY, the other TAs answer throughout', async () => {
    const hello = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-hello-create' })));
    const calls = keepCalling(hello);
    for (let i = 0; i < 3; i++) {
      await expect(backend.create(makeTestBundle(CREATE_HOG, { name: 'fd-create-hog' }))).rejects.toMatchObject({ code: 'OUT_OF_MEMORY' });
    }
    const { ok, failed } = await calls.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
  });

  it('a Wasm table grown to millions of entries in a command: OUT_OF_MEMORY for that TA only; the others answer throughout', async () => {
    const hello = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-hello-table' })));
    const hog = track(await backend.create(makeTestBundle(tableModule(8, 0, 10_000_000), { name: 'fd-table-grow', runtime: 'wasm', limits: { heapMb: 4 } })));
    const crashed = new Promise<EnclaveEvent>((r) => hog.on('event', (ev) => ev.type === 'crashed' && r(ev)));
    const calls = keepCalling(hello);
    await expect(hog.invoke(undefined, 'grow')).rejects.toMatchObject({ code: 'OUT_OF_MEMORY' });
    expect(await crashed).toMatchObject({ type: 'crashed', code: 'OUT_OF_MEMORY' });
    const { ok, failed } = await calls.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
  });

  it('a Wasm module declaring tables of millions of entries: create() fails OUT_OF_MEMORY, the others answer throughout', async () => {
    const hello = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-hello-table-decl' })));
    const calls = keepCalling(hello);
    await expect(backend.create(makeTestBundle(tableModule(8, 10_000_000, 0), { name: 'fd-table-declared', runtime: 'wasm', limits: { heapMb: 4 } }))).rejects.toMatchObject({ code: 'OUT_OF_MEMORY' });
    const { ok, failed } = await calls.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
  });

  it("a Wasm TA's process has V8's Wasm trap handler and room for its guarded memory; a JS TA's has neither; every hard RLIMIT_AS is the TA's bound", async () => {
    const wasm = await compileWasmTA();
    const wasmLimits = { heapMb: 4 };
    await backend.prewarm(testManifest({ runtime: 'wasm', limits: wasmLimits }));
    // A JS TA whose bound is exactly its standby's soft limit, a Wasm TA on a prepared Wasm standby, one spawned fresh.
    const js = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-trap-js' })));
    const fromStandby = track(await backend.create(makeTestBundle(wasm, { name: 'fd-trap-wasm', runtime: 'wasm', limits: wasmLimits })));
    expect(fromStandby.lastStartup!.origin).toBe('standby');
    const fresh = track(await backend.create(makeTestBundle(wasm, { name: 'fd-trap-wasm-fresh', runtime: 'wasm', limits: { heapMb: 8 } })));
    expect(await fromStandby.invoke(undefined, 'echo', 1)).toBe(1);
    expect(await fresh.invoke(undefined, 'echo', 2)).toBe(2);
    const status = (pid: number) => readFileSync(`/proc/${pid}/status`, 'latin1');
    // V8's trap handler is a SIGSEGV handler (a Wasm access past the memory faults in a guard page).
    const catchesSegv = (pid: number) => ((BigInt('0x' + /^SigCgt:\s+(\w+)/m.exec(status(pid))![1]) >> 10n) & 1n) === 1n;
    const vmBytes = (pid: number) => Number(/^VmSize:\s+(\d+) kB/m.exec(status(pid))![1]) * 1024;
    const asLimit = (pid: number) => /^Max address space\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'latin1'))!.slice(1);
    const GUARDED = 10 * 2 ** 30;
    for (const e of [fromStandby, fresh]) {
      const pid = e.processInfo()!.pid;
      expect(catchesSegv(pid)).toBe(true);
      // Its one memory reserves the guarded size although it may only grow to a few MiB.
      expect(vmBytes(pid)).toBeGreaterThan(GUARDED);
    }
    const jsPid = js.processInfo()!.pid;
    expect(catchesSegv(jsPid)).toBe(false);
    expect(vmBytes(jsPid)).toBeLessThan(GUARDED);
    if (probeOsLimits().addressSpace.enforced) {
      for (const e of [js, fromStandby, fresh]) {
        const [soft, hard] = asLimit(e.processInfo()!.pid);
        expect(hard).not.toBe('unlimited');
        expect(soft).toBe(hard);
      }
      // Raised by exactly each instance's reservation beyond its memory's cap (4 MiB = 64 pages):
      // a JS TA of the same heapMb and instances has the rest.
      const js4 = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-trap-js-4', limits: wasmLimits })));
      const limitOf = (e: EmulatedEnclave) => Number(asLimit(e.processInfo()!.pid)[0]);
      expect(limitOf(fromStandby) - limitOf(js4)).toBe(2 * (GUARDED - 64 * 65536));
    }
  });

  it("a Wasm TA growing its memory stops at its manifest's bound; growing past it is OUT_OF_MEMORY for that TA only; the others answer throughout", async () => {
    const wasm = await compileWasmTA();
    const hello = track(await backend.create(makeTestBundle(HELLO, { name: 'fd-hello-wasm-grow' })));
    const neighbour = track(await backend.create(makeTestBundle(wasm, { name: 'fd-wasm-neighbour', runtime: 'wasm', limits: { heapMb: 4 } })));
    const hog = track(await backend.create(makeTestBundle(wasm, { name: 'fd-wasm-grow', runtime: 'wasm', limits: { heapMb: 4 } })));
    const pid = hog.processInfo()!.pid;
    const initialPages = Number(await hog.invoke(undefined, 'pages'));
    const calls = keepCalling(hello);
    let wasmOk = 0;
    const wasmFailed: unknown[] = [];
    let running = true;
    const neighbourLoop = (async () => {
      for (let n = 0; running; n++) {
        try {
          if ((await neighbour.invoke(undefined, 'echo', n)) === n) wasmOk++;
          else wasmFailed.push(n);
        } catch (err) {
          wasmFailed.push(err);
          break;
        }
      }
    })();
    // memory.grow fails at exactly heapMb (4 MiB = 64 pages), trap handler or not.
    expect(await hog.invoke(undefined, 'growMax')).toBe(64);
    // Past it the module traps: OUT_OF_MEMORY, the instance starts afresh, again and again (each
    // fresh instance needs its memory's reservation; the old ones' are given back).
    for (let i = 0; i < 4; i++) await expect(hog.invoke(undefined, 'grow')).rejects.toMatchObject({ code: 'OUT_OF_MEMORY' });
    expect(await hog.invoke(undefined, 'pages')).toBe(initialPages);
    expect(hog.processInfo()!.pid).toBe(pid);
    running = false;
    await neighbourLoop;
    expect(await neighbour.invoke(undefined, 'echo', -1)).toBe(-1);
    expect(wasmFailed).toEqual([]);
    expect(wasmOk).toBeGreaterThan(0);
    const { ok, failed } = await calls.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
  });

  it.runIf(process.getuid?.() === 0)('as root, taUids runs each TA process under a uid of its own', async () => {
    const b = new EmulatedBackend({ standby: 0, taUids: { from: 61_000, count: 4 } });
    const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))![1]);
    try {
      const a = await b.create(makeTestBundle(HELLO, { name: 'uid-a' }));
      const c = await b.create(makeTestBundle(HELLO, { name: 'uid-b' }));
      expect(await a.invoke(undefined, 'ping', 1)).toEqual({ pong: 1 });
      expect(await c.invoke(undefined, 'ping', 2)).toEqual({ pong: 2 });
      expect([uidOf(a.processInfo()!.pid), uidOf(c.processInfo()!.pid)]).toEqual([61_000, 61_001]);
      await Promise.all([a.destroy(), c.destroy()]);
    } finally {
      await b.destroy();
    }
  });

  it('refuses taUids unless it runs as root, or without process isolation', () => {
    expect(() => new EmulatedBackend({ isolation: 'thread', taUids: { from: 61_000, count: 1 } })).toThrow(/process/);
  });

  it('says what the OS bounds here', () => {
    const p = probeOsLimits();
    expect(typeof p.addressSpace.enforced).toBe('boolean');
    expect(p.residentWatch.enforced).toBe(process.platform === 'linux');
    if (!p.addressSpace.enforced) expect(p.addressSpace.reason).toMatch(/prlimit/);
  });
});
