// The `tpm` root of trust on a real software TPM (swtpm), one per file.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createPublicKey, verify, randomBytes } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createRootOfTrust, openTpmRoot, TpmDriver, Sealer, createTrustServices, TPM_ROOT_FILE, TPM_DEFAULTS, rootOfTrustConfigFromEnv,
  type TpmRootOfTrust,
} from '@enclave-edge/trust';
import { classifyToolFailure } from '@enclave-edge/trust/tpm/tools';
import { startSwtpm, type Swtpm } from '../../../tests/support/swtpm.js';
import { tempDir, identity } from './helpers.js';

const run = promisify(execFile);
let tpm: Swtpm;
let t: ReturnType<typeof tempDir>;
let root: TpmRootOfTrust;

beforeAll(async () => {
  tpm = await startSwtpm();
  t = tempDir('ee-tpm-root-');
  root = await openTpmRoot({ stateDir: t.dir, tcti: tpm.tcti });
});
afterAll(async () => {
  await root?.close();
  await tpm?.stop();
  t?.cleanup();
});

const hex = (n: number) => `0x${n.toString(16)}`;

describe('tpm root of trust (swtpm)', () => {
  it('creates non-exportable keys in the TPM; an export attempt fails', async () => {
    const d = new TpmDriver(tpm.tcti);
    try {
      for (const h of [TPM_DEFAULTS.sealKeyHandle, TPM_DEFAULTS.attestationKeyHandle]) {
        const info = (await d.readPublic(h))!;
        expect(info.attributes).toEqual(expect.arrayContaining(['fixedtpm', 'fixedparent', 'sensitivedataorigin']));
      }
      // Duplication (the only way a TPM object leaves the TPM) is refused.
      const env = { ...process.env, TPM2TOOLS_TCTI: tpm.tcti };
      const dup = join(t.dir, 'dup');
      await expect(run('tpm2_duplicate', ['-C', 'null', '-c', hex(TPM_DEFAULTS.sealKeyHandle), '-G', 'null', '-r', `${dup}.priv`, '-s', `${dup}.seed`], { env })).rejects.toThrow();
      await expect(run('tpm2_duplicate', ['-C', 'null', '-c', hex(TPM_DEFAULTS.attestationKeyHandle), '-G', 'null', '-r', `${dup}.priv`, '-s', `${dup}.seed`], { env })).rejects.toThrow();
    } finally {
      await d.close();
    }
    expect(root.kind).toBe('tpm');
    expect(root.developmentGrade).toBe(false);
    expect(JSON.parse(readFileSync(join(t.dir, TPM_ROOT_FILE), 'utf8'))).toMatchObject({ kind: 'tpm', counterIndex: TPM_DEFAULTS.counterIndex });
  });

  it('derives HKDF-Expand keys in the TPM, stable across reopen and a TPM reset', async () => {
    const info = Buffer.from('enclave-edge/v1/seal/product/x/1');
    const k1 = await root.deriveKey(info);
    expect(k1).toHaveLength(32);
    expect(Buffer.from(await root.deriveKey(Buffer.from('other'))).equals(Buffer.from(k1))).toBe(false);
    const again = await openTpmRoot({ stateDir: t.dir, tcti: tpm.tcti });
    try {
      expect(Buffer.from(await again.deriveKey(info))).toEqual(Buffer.from(k1));
    } finally {
      await again.close();
    }
    await tpm.restart();
    expect(Buffer.from(await root.deriveKey(info))).toEqual(Buffer.from(k1));
  });

  it('seals and unseals with the tpm root; sealed storage works', async () => {
    const sealer = new Sealer(root);
    const data = randomBytes(4096);
    const blob = await sealer.seal(identity(), data);
    expect(Buffer.from(await sealer.unseal(identity(), blob))).toEqual(data);
    await expect(sealer.unseal(identity({ signerId: 'e'.repeat(64) }), blob)).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(t.dir, 'seal-storage') });
    const s = svc.storage(identity());
    await s.put('k', Buffer.from('v'));
    expect(Buffer.from((await s.get('k'))!).toString()).toBe('v');
  });

  it('signs ES256 with the attestation key (verifiable with its SPKI)', async () => {
    const data = randomBytes(3000); // above the TPM's 1 KiB input buffer: hashed in a TPM sequence
    const sig = await root.attestationSigner.sign(data);
    expect(sig).toHaveLength(64);
    const key = createPublicKey({ key: Buffer.from(root.attestationSigner.spki), format: 'der', type: 'spki' });
    expect(verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
  });

  it('counter reads and increments', async () => {
    const a = await root.counter.read();
    expect(await root.counter.increment()).toBe(a + 1n);
  });

  it('is picked from the environment', async () => {
    const r = await createRootOfTrust(rootOfTrustConfigFromEnv({ ENCLAVE_EDGE_ROT: 'tpm', ENCLAVE_EDGE_TPM_TCTI: tpm.tcti, ENCLAVE_EDGE_STATE_DIR: t.dir }));
    try {
      expect(r.kind).toBe('tpm');
      expect(Buffer.from(r.attestationSigner.spki)).toEqual(Buffer.from(root.attestationSigner.spki));
    } finally {
      await r.close();
    }
  });
});

describe('tpm root of trust: bad input and faults', () => {
  it('a malformed TCTI is a clear CONFIG_INVALID', async () => {
    await expect(openTpmRoot({ stateDir: t.dir, tcti: 'bogus:x' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('bogus:x') });
    await expect(createRootOfTrust({ kind: 'tpm', stateDir: t.dir, tcti: tpm.tcti, counterIndex: '0x81000000' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('counterIndex') });
  });

  it('TPM absent or not listening: UNAVAILABLE naming the TCTI', async () => {
    await expect(openTpmRoot({ stateDir: t.dir, tcti: 'device:/dev/ee-no-such-tpm' })).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/TPM absent.*ee-no-such-tpm/) });
    await expect(openTpmRoot({ stateDir: t.dir, tcti: 'swtpm:host=127.0.0.1,port=1' })).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('port=1') });
  });

  it('a TPM that goes away mid-run gives UNAVAILABLE; nothing sealed is lost once it is back', async () => {
    const sealer = new Sealer(root);
    const id = identity({ productId: 77 });
    const blob = await sealer.seal(id, Buffer.from('kept'));
    await tpm.down();
    try {
      // Cached keys keep working; anything that needs the TPM says it is gone.
      expect(Buffer.from(await sealer.unseal(id, blob)).toString()).toBe('kept');
      await expect(new Sealer(root).unseal(id, blob)).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining(tpm.tcti) });
      await expect(root.counter.read()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      await tpm.up();
    }
    expect(Buffer.from(await new Sealer(root).unseal(id, blob)).toString()).toBe('kept');
  });

  it('dictionary-attack lockout (provoked on swtpm): the error names it; the root (noDA keys) keeps sealing, storage, counter and quotes, nothing lost', async () => {
    const w = tempDir('ee-tpm-lockout-');
    const tool = (cmd: string, args: string[]) => run(cmd, args, { env: { ...process.env, TPM2TOOLS_TCTI: tpm.tcti }, cwd: w.dir, encoding: 'buffer' });
    const svc = createTrustServices({ rootOfTrust: root, storageDir: join(w.dir, 'storage'), freshness: { maxIncrementsPerHour: 1000 } });
    const store = svc.storage(identity({ productId: 91 }));
    try {
      await store.put('before', Buffer.from('sealed before the lockout'));
      // One failed authorization locks the TPM out (lockout auth is empty on a fresh swtpm).
      // No resource manager on swtpm: free the transient slots other tests' tools left behind.
      for (const f of ['-t', '-l', '-s']) await tool('tpm2_flushcontext', [f]);
      // Earlier failures (other tests of this file) count too: start from zero failed tries.
      await tool('tpm2_dictionarylockout', ['-c']);
      await tool('tpm2_dictionarylockout', ['-s', '-n', '1', '-t', '600', '-l', '600']);
      // A DA-protected key (no noda attribute) with a password, as any other tenant of the TPM might hold.
      await tool('tpm2_createprimary', ['-C', 'o', '-G', 'ecc256', '-c', 'prim.ctx']);
      await tool('tpm2_flushcontext', ['-t']);
      await tool('tpm2_create', ['-C', 'prim.ctx', '-G', 'hmac', '-p', 'right', '-c', 'da.ctx']);
      await tool('tpm2_flushcontext', ['-t']);
      writeFileSync(join(w.dir, 'msg'), 'x');
      const hmacWith = (pw: string) => tool('tpm2_hmac', ['-c', 'da.ctx', '-p', pw, 'msg']).then(() => '', (e: { stderr: Buffer }) => e.stderr.toString());
      expect(await hmacWith('wrong')).not.toBe('');
      // Now even the right password is refused: the TPM is in lockout, and the error names it.
      const locked = await hmacWith('right');
      expect(classifyToolFailure('tpm2_hmac', tpm.tcti, locked)).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('dictionary-attack lockout (TPM_RC_LOCKOUT)') });
      expect((await tool('tpm2_getcap', ['properties-variable'])).stdout.toString()).toMatch(/inLockout:\s+1/);
      // The root's keys are noDA and the counter is owner-authorized: none of it is stopped by the lockout.
      expect(Buffer.from((await store.get('before'))!).toString()).toBe('sealed before the lockout');
      await store.put('during', Buffer.from('written in lockout'));
      const fresh = new Sealer(root);
      const id = identity({ productId: 92 });
      expect(Buffer.from(await fresh.unseal(id, await fresh.seal(id, Buffer.from('x')))).toString()).toBe('x');
      expect(await svc.freshness!.commit({ force: true })).toBe(true);
      expect((await root.quoter!.quote(randomBytes(32))).signature.length).toBeGreaterThan(0);
      await svc.freshness!.close();
      // Reopened as the next process would: both values there, no rollback reported.
      const again = createTrustServices({ rootOfTrust: root, storageDir: join(w.dir, 'storage') }).storage(identity({ productId: 91 }));
      expect(Buffer.from((await again.get('before'))!).toString()).toBe('sealed before the lockout');
      expect(Buffer.from((await again.get('during'))!).toString()).toBe('written in lockout');
    } finally {
      await tool('tpm2_dictionarylockout', ['-c']).catch(() => undefined);
      await tool('tpm2_dictionarylockout', ['-s', '-n', '1000', '-t', '1', '-l', '1']).catch(() => undefined);
      for (const f of ['-t', '-l', '-s']) await tool('tpm2_flushcontext', [f]).catch(() => undefined);
      w.cleanup();
    }
  });

  it('counter index of the wrong type, or missing after creation, is refused by name', async () => {
    const d = new TpmDriver(tpm.tcti);
    const s2 = tempDir('ee-tpm-wrongnv-');
    try {
      const idx = 0x01500ef1;
      await run('tpm2_nvdefine', [hex(idx), '-C', 'o', '-s', '8', '-a', 'ownerwrite|ownerread'], { env: { ...process.env, TPM2TOOLS_TCTI: tpm.tcti } });
      await expect(openTpmRoot({ stateDir: s2.dir, tcti: tpm.tcti, counterIndex: idx })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('0x01500ef1 is not a monotonic counter') });
      await d.nvUndefine(idx);
      // Created with a counter, which then disappears (TPM cleared / another TPM): fail closed.
      const idx2 = 0x01500ef2;
      await (await openTpmRoot({ stateDir: s2.dir, tcti: tpm.tcti, sealKeyHandle: 0x81010ef4, attestationKeyHandle: 0x81010ef5, counterIndex: idx2 })).close();
      await d.nvUndefine(idx2);
      await expect(openTpmRoot({ stateDir: s2.dir, tcti: tpm.tcti })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('0x01500ef2') });
    } finally {
      await d.close();
      s2.cleanup();
    }
  });

  it('a different key at the recorded handle is refused, not silently used', async () => {
    const s3 = tempDir('ee-tpm-otherkey-');
    const d = new TpmDriver(tpm.tcti);
    try {
      const handles = { sealKeyHandle: 0x81010ef0, attestationKeyHandle: 0x81010ef1, counterIndex: 0x01500ef3 };
      await (await openTpmRoot({ stateDir: s3.dir, tcti: tpm.tcti, ...handles })).close();
      await d.evict(handles.sealKeyHandle);
      await d.createPersistentKey('hmac', handles.sealKeyHandle);
      await expect(openTpmRoot({ stateDir: s3.dir, tcti: tpm.tcti })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('is not the seal key this state directory was created with') });
      await d.evict(handles.sealKeyHandle);
      await expect(openTpmRoot({ stateDir: s3.dir, tcti: tpm.tcti })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('is gone from the TPM') });
    } finally {
      await d.close();
      s3.cleanup();
    }
  });

  it('TPM response codes become errors that name the problem (lockout, retry, missing handle)', () => {
    // stderr as tpm2-tools prints it for these response codes
    const rc = (hex: string) => `ERROR:esys:src/tss2-esys/api/Esys_HMAC.c:100:Esys_HMAC() Esys Finish ErrorCode (0x${hex}) \nERROR: Esys_HMAC(0x${hex}) - tpm:warn(2.0): …\nERROR: Unable to run tpm2_hmac`;
    expect(classifyToolFailure('tpm2_hmac', tpm.tcti, rc('00000921'))).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('dictionary-attack lockout (TPM_RC_LOCKOUT)') });
    expect(classifyToolFailure('tpm2_nvincrement', tpm.tcti, rc('00000920'))).toMatchObject({ code: 'BUSY', message: expect.stringContaining('NV write rate limit') });
    expect(classifyToolFailure('tpm2_hmac', tpm.tcti, rc('0000018b'))).toMatchObject({ code: 'ITEM_NOT_FOUND', rc: 0x8b });
  });

  it('a corrupt root file is CONFIG_INVALID', async () => {
    const s4 = tempDir('ee-tpm-corrupt-');
    try {
      writeFileSync(join(s4.dir, TPM_ROOT_FILE), '{"version":1');
      await expect(openTpmRoot({ stateDir: s4.dir, tcti: tpm.tcti })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('corrupt') });
    } finally {
      s4.cleanup();
    }
  });
});
