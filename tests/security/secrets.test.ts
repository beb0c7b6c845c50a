/**
 * Secrets stay out of logs, error messages and evidence: the software root's seal secret and
 * attestation key, PKCS#11 PINs (in the URI or given directly), and key files are 0600.
 */
import 'reflect-metadata';
import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRootOfTrust, createTrustServices, SOFTWARE_KEY_FILE } from '@enclave-edge/trust';
import { openToken, createSoftHsmToken, formatPkcs11Uri } from '@enclave-edge/pkcs11';
import { tempDir, identity } from './helpers.js';

const cleanups: Array<() => void> = [];
afterAll(() => cleanups.forEach((c) => c()));

describe('software root of trust', () => {
  it('logs, errors and evidence never contain the seal secret or the attestation key; the key file is 0600', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const logs: string[] = [];
    const rotLog = (level: string, message: string, fields?: Record<string, unknown>) => logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
    const root = await createRootOfTrust({ kind: 'software', stateDir: t.dir }, rotLog);
    const svc = createTrustServices({ rootOfTrust: root, log: rotLog });
    const id = identity();
    const blob = await svc.seal(id, new TextEncoder().encode('payload'), { policy: 'product' });
    const errors: string[] = [];
    await svc.unseal(identity({ productId: 99 }), blob, {}).catch((e: Error) => errors.push(e.message));
    await svc.storage(id).put('k', new Uint8Array([1]));
    const token = await svc.attest(id, { nonce: randomBytes(16), tee: 'emulated' });
    await svc.close();

    const file = JSON.parse(readFileSync(join(t.dir, SOFTWARE_KEY_FILE), 'utf8')) as { sealSecret: string; attestationKey: string };
    expect(statSync(join(t.dir, SOFTWARE_KEY_FILE)).mode & 0o777).toBe(0o600);
    const secrets = [file.sealSecret, Buffer.from(file.sealSecret, 'base64').toString('hex'), Buffer.from(file.sealSecret, 'base64').toString('base64url'), file.attestationKey.slice(20, 80)];
    const payload = Buffer.from(token.split('.')[1]!, 'base64url').toString();
    expect(logs.length).toBeGreaterThan(0);
    expect(errors.length).toBe(1);
    for (const text of [...logs, ...errors, token, payload]) for (const s of secrets) expect(text.includes(s)).toBe(false);
  });

  it('refuses a key file readable by group or others instead of using it', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    await (await createRootOfTrust({ kind: 'software', stateDir: t.dir })).close();
    const { chmodSync } = await import('node:fs');
    chmodSync(join(t.dir, SOFTWARE_KEY_FILE), 0o644);
    await expect(createRootOfTrust({ kind: 'software', stateDir: t.dir })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/chmod 600/) });
  });
});

describe('PKCS#11 PINs', () => {
  it('a wrong PIN, a bad URI or a missing token never echo the PIN', async () => {
    const hsm = createSoftHsmToken({ pin: '4711' });
    cleanups.push(() => hsm.dispose());
    const secretPin = 'S3cr3t-PIN-9382';
    const attempts = [
      openToken({ uri: `${formatPkcs11Uri({ token: hsm.label })}?module-path=${hsm.modulePath}&pin-value=${secretPin}` }),
      openToken({ uri: formatPkcs11Uri({ token: hsm.label }), modulePath: hsm.modulePath, pin: secretPin }),
      openToken({ uri: `pkcs11:token=no-such-token?module-path=${hsm.modulePath}&pin-value=${secretPin}` }),
      openToken({ uri: `pkcs11:token=%ZZ?pin-value=${secretPin}` }),
      openToken({ uri: `pkcs11:token=x?pin-value=${secretPin}&pin-source=/etc/pin` }),
      createRootOfTrust({ kind: 'pkcs11', stateDir: '/nonexistent-ee', uri: `pkcs11:token=${hsm.label}?module-path=${hsm.modulePath}&pin-value=${secretPin}` }),
    ];
    const messages: string[] = [];
    for (const a of attempts) {
      await a.then(
        () => messages.push('opened'),
        (e: Error & { code?: string }) => messages.push(`${e.code}: ${e.message} ${String(e.stack)}`),
      );
    }
    expect(messages.some((m) => m === 'opened')).toBe(false);
    expect(messages[0]).toMatch(/^ACCESS_DENIED/);
    for (const m of messages) expect(m).not.toContain(secretPin);
  });
});
