/**
 * A TA's own process: it hosts that TA's enclave workers (threads, each its own isolate with
 * SES inside) and relays their messages to and from the runtime over the IPC channel. It holds
 * no keys and no other TA; the OS bounds its memory (RLIMIT_AS, see ../process/os-limits.ts).
 */
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { FromChild, ToChild } from '../wire/process-protocol.cjs';
import { spawnWorkerThread } from '../wire/worker-spawn.cjs';

const WORKER_FILE = join(__dirname, '..', 'worker', 'main.cjs');
const workers = new Map<number, Worker>();
const send = (m: FromChild) => {
  if (process.connected) process.send!(m);
};
let assigned = false;

function assign(m: Extract<ToChild, { t: 'assign' }>): void {
  if (assigned) throw new Error('this process already serves a TA');
  assigned = true;
  process.title = `enclave-ta:${m.ta.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)}`;
  // Group first: once the uid is dropped, setgid is no longer allowed.
  if (m.gid !== undefined) process.setgid!(m.gid);
  if (m.uid !== undefined) process.setuid!(m.uid);
}

function spawn(m: Extract<ToChild, { t: 'spawn' }>): void {
  const w = spawnWorkerThread(WORKER_FILE, { heapMb: m.heapMb, stackMb: m.stackMb }, m.boot, m.name);
  workers.set(m.wid, w);
  w.on('message', (x: unknown) => send({ t: 'msg', wid: m.wid, m: x }));
  w.on('error', (e: Error & { code?: string }) => send({ t: 'error', wid: m.wid, code: String(e?.code ?? 'ERR_WORKER_ERROR'), message: String(e?.message ?? e).slice(0, 2048) }));
  w.on('exit', (code) => {
    workers.delete(m.wid);
    send({ t: 'exit', wid: m.wid, code });
  });
}

process.on('message', (m: ToChild) => {
  switch (m?.t) {
    case 'post':
      workers.get(m.wid)?.postMessage(m.m);
      return;
    case 'spawn':
      spawn(m);
      return;
    case 'terminate':
      void workers.get(m.wid)?.terminate();
      return;
    case 'assign':
      try {
        assign(m);
      } catch (err) {
        // Never serve a TA under the wrong identity: end the process, the runtime sees it exit.
        process.stderr.write(`cannot take TA: ${(err as Error).message}\n`);
        process.exit(70);
      }
      return;
  }
});
// The runtime gone: nobody can reach these workers any more.
process.on('disconnect', () => process.exit(0));
send({ t: 'hello', pid: process.pid });
