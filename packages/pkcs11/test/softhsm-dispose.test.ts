import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { createSoftHsmToken, openToken, moduleRefCount, DEFAULT_MODULE_PATH } from '@enclave-edge/pkcs11';

// Vitest fork workers never run 'exit' handlers, so the temp token folder must go on dispose().
describe('createSoftHsmToken().dispose()', () => {
  it('keeps the shared folder while another token lives, removes it after the last, and is idempotent', async () => {
    const a = createSoftHsmToken();
    const b = createSoftHsmToken();
    expect(b.dir).toBe(a.dir);
    const t = await openToken({ uri: a.uri });
    expect(t.label).toBe(a.label);
    await t.close();
    expect(moduleRefCount(DEFAULT_MODULE_PATH)).toBe(0);

    a.dispose();
    expect(existsSync(a.dir)).toBe(true);
    a.dispose(); // a second call must not count as b's dispose
    expect(existsSync(b.dir)).toBe(true);
    b.dispose();
    expect(existsSync(b.dir)).toBe(false);
    expect(() => b.dispose()).not.toThrow();
  });

  it('after every token is disposed, a new token gets a fresh folder the module can open', async () => {
    const c = createSoftHsmToken({ label: 'after-dispose' });
    try {
      expect(existsSync(c.conf)).toBe(true);
      expect(process.env.SOFTHSM2_CONF).toBe(c.conf);
      const t = await openToken({ uri: c.uri });
      try {
        expect(t.label).toBe('after-dispose');
      } finally {
        await t.close();
      }
    } finally {
      c.dispose();
    }
    expect(existsSync(c.dir)).toBe(false);
  });
});
