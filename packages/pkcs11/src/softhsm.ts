/**
 * Throw-away SoftHSM2 tokens for tests and development. SoftHSM2 reads SOFTHSM2_CONF when the
 * module is initialised, so one process uses one temp token directory; each call adds a token.
 * The directory is removed when every token made in it has been disposed (vitest fork workers
 * never run process 'exit' handlers, so tests must call dispose() in afterAll).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { DEFAULT_MODULE_PATH } from './module.js';
import { encodePkcs11Attr } from './uri.js';

export interface SoftHsmToken {
  label: string;
  pin: string;
  soPin: string;
  /** URI with module-path and pin-value, ready for openToken. */
  uri: string;
  /** The temp directory (config + tokens) shared by this process's tokens. */
  dir: string;
  conf: string;
  modulePath: string;
  /**
   * Idempotent. Removes the temp directory once every token created in it is disposed. Close
   * the sessions opened on it first: the module is finalised when its last user closes, and
   * SoftHSM2 only rereads the directory at C_Initialize.
   */
  dispose(): void;
}

let shared: { dir: string; conf: string; live: number } | undefined;

function sharedDir(): { dir: string; conf: string; live: number } {
  if (shared) return shared;
  const dir = mkdtempSync(join(tmpdir(), 'ee-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  shared = { dir, conf, live: 0 };
  // Backstop for plain Node processes that forget dispose(); forks killed by vitest skip it.
  process.once('exit', () => removeDir(dir));
  return shared;
}

function removeDir(dir: string): void {
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
}


/** Initialise a new SoftHSM2 token (needs softhsm2-util on PATH). */
export function createSoftHsmToken(opts: { label?: string; pin?: string; modulePath?: string } = {}): SoftHsmToken {
  const owner = sharedDir();
  const { dir, conf } = owner;
  const label = opts.label ?? `ee-${randomBytes(4).toString('hex')}`;
  const pin = opts.pin ?? '1234';
  const soPin = '5678';
  const modulePath = opts.modulePath ?? DEFAULT_MODULE_PATH;
  try {
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    if (owner.live === 0) {
      removeDir(dir);
      if (shared === owner) shared = undefined;
    }
    throw new EnclaveEdgeError('UNAVAILABLE', `softhsm2-util --init-token failed: ${e.stderr?.toString().trim() || e.message}`);
  }
  const uri = `pkcs11:token=${encodePkcs11Attr(label)}?module-path=${modulePath}&pin-value=${encodePkcs11Attr(pin)}`;
  owner.live += 1;
  let disposed = false;
  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    owner.live -= 1;
    if (owner.live > 0) return;
    removeDir(dir);
    // A later call starts a fresh directory (seen by the module at its next C_Initialize).
    if (shared === owner) shared = undefined;
  };
  return { label, pin, soPin, uri, dir, conf, modulePath, dispose };
}
