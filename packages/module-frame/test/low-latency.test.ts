/**
 * Socket tuning on real TLS: with write coalescing, every byte still arrives in order, writes
 * made in later turns are not held back, and an echo round trip completes (no stall waiting for
 * an uncork). Nothing here measures time.
 */
import { describe, expect, it, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { enableLowLatencySockets } from '@enclave-edge/module-frame';

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
});
