import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { StateDir } from '@enclave-edge/edge-sim';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'edge-sim-state-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('state folder', () => {
  it('creates a CA and a localhost server certificate once, keys readable by the owner only', async () => {
    const dir = join(tmp(), '.edge-sim');
    const s = await StateDir.open(dir);
    const ca = new X509Certificate(s.caCertPem);
    const server = new X509Certificate(s.serverCertPem);
    expect(ca.ca).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of ['keys.json', 'server-key.pem', 'ca-key.pem']) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    const again = await StateDir.open(dir);
    expect(again.caCertPem).toBe(s.caCertPem);
    expect(again.hubKey).toBe(s.hubKey);
  });

  it('gives each module its own random key and keeps it', async () => {
    const dir = tmp();
    const s = await StateDir.open(dir);
    const a = s.moduleIdentity('a')!;
    const b = s.moduleIdentity('b')!;
    expect(a.key.length).toBe(32);
    expect(a.keyBase64).not.toBe(b.keyBase64);
    expect(s.moduleIdentity('unknown', false)).toBeUndefined();
    expect((await StateDir.open(dir)).moduleIdentity('a', false)!.keyBase64).toBe(a.keyBase64);
    // An identity added by another process (the CLI) is found without a restart.
    const cli = StateDir.openExisting(dir);
    const c = cli.moduleIdentity('fromCli')!;
    expect(s.moduleIdentity('fromCli', false)?.keyBase64).toBe(c.keyBase64);
  });

  it('ignores a state.json whose process is gone and refuses a corrupt key file', async () => {
    const dir = tmp();
    const s = await StateDir.open(dir);
    s.writeRuntime({ pid: process.pid, startedAt: 'now', hubHostName: 'h', deviceId: 'd', mqttPort: 1, httpsPort: 2, workloadUri: 'http://x', modules: [] });
    expect(s.readRuntime()?.pid).toBe(process.pid);
    const dead = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ ...dead, pid: 2 ** 22 + 12345 }));
    expect(s.readRuntime()).toBeUndefined();
    writeFileSync(join(dir, 'keys.json'), '{"hubKey": 1}');
    await expect(StateDir.open(dir)).rejects.toThrow(/keys\.json is corrupt/);
    expect(() => StateDir.openExisting(tmp())).toThrow(/no simulator state/);
  });
});
