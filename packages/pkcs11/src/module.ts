/**
 * One loaded PKCS#11 library per path per process, initialised once and reference-counted:
 * C_Initialize twice is an error, and C_Finalize while another user holds sessions breaks them.
 */
import pkcs11js from 'pkcs11js';
import { EnclaveEdgeError } from '@enclave-edge/errors';

export const DEFAULT_MODULE_PATH = '/usr/lib/softhsm/libsofthsm2.so';

interface Loaded {
  lib: pkcs11js.PKCS11;
  refs: number;
}

const loaded = new Map<string, Loaded>();

export function acquireModule(path: string): pkcs11js.PKCS11 {
  const have = loaded.get(path);
  if (have) {
    have.refs++;
    return have.lib;
  }
  const lib = new pkcs11js.PKCS11();
  try {
    lib.load(path);
  } catch (err) {
    throw new EnclaveEdgeError('UNAVAILABLE', `cannot load PKCS#11 module ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // OS locking: the library may be entered from libuv worker threads (the *Async calls).
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test(String((err as Error).message))) {
      try { lib.close(); } catch { /* already failing */ }
      throw new EnclaveEdgeError('UNAVAILABLE', `cannot initialise PKCS#11 module ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  loaded.set(path, { lib, refs: 1 });
  return lib;
}

export function releaseModule(path: string): void {
  const have = loaded.get(path);
  if (!have) return;
  if (--have.refs > 0) return;
  loaded.delete(path);
  try { have.lib.C_Finalize(); } catch { /* finalising on shutdown: nothing useful to do */ }
  try { have.lib.close(); } catch { /* idem */ }
}

/** For tests and diagnostics: how many users hold a module. */
export function moduleRefCount(path: string): number {
  return loaded.get(path)?.refs ?? 0;
}
