/**
 * `software` root of trust: the seal secret and the attestation key in one 0600 file.
 * Development only: anyone who can read the file (root on the device) has every secret.
 */
import { readFile, stat } from 'node:fs/promises';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { nodeKeySigner } from '@enclave-edge/attestation';
import { createFileExclusive } from '@enclave-edge/durable-files';
import { hkdfExpandSha256 } from '../hkdf.js';
import type { RootOfTrust, RotLog } from './types.js';

export const SOFTWARE_KEY_FILE = 'software-root.json';

const FileSchema = z.object({
  version: z.literal(1),
  kind: z.literal('software'),
  sealSecret: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  attestationKey: z.string().min(40),
  createdAt: z.string(),
});

export async function openSoftwareRoot(opts: { stateDir: string; log?: RotLog }): Promise<RootOfTrust> {
  const path = join(opts.stateDir, SOFTWARE_KEY_FILE);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const fresh = {
    version: 1,
    kind: 'software',
    sealSecret: randomBytes(32).toString('base64'),
    attestationKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    createdAt: new Date().toISOString(),
  };
  const created = await createFileExclusive(path, Buffer.from(JSON.stringify(fresh) + '\n'), 0o600);
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `software root-of-trust key file ${path} is accessible to group/others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  let parsed: z.infer<typeof FileSchema>;
  try {
    parsed = FileSchema.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    throw new EnclaveEdgeError('CONFIG_INVALID', `software root-of-trust key file ${path} is corrupt`);
  }
  const secret = Buffer.from(parsed.sealSecret, 'base64');
  const signer = nodeKeySigner(new Uint8Array(Buffer.from(parsed.attestationKey, 'base64')));
  opts.log?.('warn', `root of trust "software" (DEVELOPMENT-GRADE): keys are in ${path}; anyone who can read it can unseal everything and forge evidence`, { created });
  return {
    kind: 'software',
    developmentGrade: true,
    stateDir: opts.stateDir,
    protects:
      'Development only. The seal secret and attestation key are in a 0600 file: they protect sealed data from other ' +
      'unprivileged users of the device and from copies of the sealed blobs alone, not from root or from a copy of the state directory.',
    rollbackProtection: 'None: restoring an older copy of the state directory restores older sealed data undetected.',
    async deriveKey(info) {
      return hkdfExpandSha256(secret, info, 32);
    },
    attestationSigner: signer,
    async close() {
      secret.fill(0);
    },
  };
}
