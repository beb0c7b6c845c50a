/**
 * Socket tuning on real TLS: with write coalescing, every byte still arrives in order, writes
 * made in later turns are not held back, and an echo round trip completes (no stall waiting for
 * an uncork); behind a durability barrier, a turn's writes stay in the socket until its sync
 * ends, and writes made meanwhile follow them in order. Nothing here measures time.
 */
import { describe, expect, it, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { enableLowLatencySockets, holdWritesUntilDurable, writesCoalesced } from '@enclave-edge/module-frame';

const dir = mkdtempSync(join(tmpdir(), 'ee-lowlat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function certPair(): { key: string; cert: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

describe('enableLowLatencySockets', () => {
  it('keeps every write, in order, across turns, and answers round trips', async () => {
    const { key, cert } = certPair();
    const server = tls.createServer({ key, cert }, (s) => s.pipe(s)); // echo
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    enableLowLatencySockets();
    const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: cert, servername: 'localhost' });
    await new Promise<void>((r, j) => socket.once('secureConnect', r).once('error', j));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received += d));
    const until = (text: string) => new Promise<void>((resolve) => {
      const check = () => (received.endsWith(text) ? resolve() : socket.once('data', check));
      check();
    });

    // Many small writes in one turn, then more in later turns (immediate and timer).
    let expected = '';
    for (let i = 0; i < 50; i++) {
      socket.write(`a${i};`);
      expected += `a${i};`;
    }
    await new Promise((r) => setImmediate(r));
    socket.write('b;');
    expected += 'b;';
    await new Promise((r) => setTimeout(r, 5));
    socket.write('c;');
    expected += 'c;';
    await until('c;');
    expect(received).toBe(expected);

    // A lone write after the line went quiet still goes out: the round trip completes.
    socket.write('ping!');
    await until('ping!');
    expect(received.endsWith('c;ping!')).toBe(true);
    socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('holds a turn\'s writes until a pending barrier has synced; writes made meanwhile follow in order', async () => {
    const { key, cert } = certPair();
    let received = '';
    let accepted!: (s: tls.TLSSocket) => void;
    const serverSocket = new Promise<tls.TLSSocket>((r) => (accepted = r));
    const server = tls.createServer({ key, cert }, (s) => {
      s.setEncoding('utf8');
      s.on('data', (d: string) => (received += d));
      accepted(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    enableLowLatencySockets();
    expect(writesCoalesced()).toBe(true);
    const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: cert, servername: 'localhost' });
    await new Promise<void>((r, j) => socket.once('secureConnect', r).once('error', j));
    const serverSide = await serverSocket;
    const arrived = (text: string) => new Promise<void>((resolve) => {
      const check = () => (received.endsWith(text) ? resolve() : serverSide.once('data', check));
      check();
    });
    socket.write('open;');
    await arrived('open;');

    let pending = false;
    const waiting: Array<(err: Error | null) => void> = [];
    let syncCalled!: () => void;
    const syncAsked = new Promise<void>((r) => (syncCalled = r));
    const unhold = holdWritesUntilDurable({
      durable: () => !pending,
      sync: (cb) => {
        waiting.push(cb);
        syncCalled();
      },
    });
    try {
      pending = true; // an append, as the journal's take in the SDK's event
      socket.write('puback-1;');
      socket.write('puback-2;');
      await syncAsked;
      // The turn ended and the barrier was asked: its bytes are still in this process's socket buffer.
      expect(socket.writableCorked).toBeGreaterThan(0);
      expect(socket.writableLength).toBe('puback-1;puback-2;'.length);
      socket.write('later;'); // while the sync runs: queued behind the held ones
      pending = false;
      for (const cb of waiting.splice(0)) cb(null);
      await arrived('later;');
      expect(received).toBe('open;puback-1;puback-2;later;');

      // Durable: nothing is held.
      socket.write('free;');
      await arrived('free;');
      expect(waiting).toEqual([]);
    } finally {
      unhold();
    }
    socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
