/** One entry point for "a key": a PEM file path or an RFC 7512 `pkcs11:` URI. */
import { readFileSync } from 'node:fs';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { Signer } from './signer.js';
import { pemSigner } from './pem.js';

export interface OpenedSigner {
  signer: Signer;
  /** Release the key (closes a PKCS#11 session; no-op for PEM). */
  close(): Promise<void>;
  kind: 'pem' | 'pkcs11';
}

export function isPkcs11Uri(spec: string): boolean {
  return spec.startsWith('pkcs11:');
}

export async function openSigner(spec: string, options: { certificateChain?: string[] } = {}): Promise<OpenedSigner> {
  if (isPkcs11Uri(spec)) {
    // Loaded on demand: the native PKCS#11 module is only needed when a token is used.
    const { openPkcs11Signer } = await import('./pkcs11.js');
    const signer = await openPkcs11Signer(spec, options.certificateChain ? { certificateChain: options.certificateChain } : {});
    return { signer, close: () => signer.close(), kind: 'pkcs11' };
  }
  let pem: Buffer;
  try {
    pem = readFileSync(spec);
  } catch (e) {
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot read key file ${spec}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return { signer: pemSigner(pem, options.certificateChain), close: async () => undefined, kind: 'pem' };
}
