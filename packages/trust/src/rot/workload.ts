/**
 * `workload` root of trust: a random root secret kept on disk only wrapped by the IoT Edge
 * workload API (encrypt/decrypt, which aziot-keyd may back with an HSM). The attestation key is
 * a software P-256 key sealed under that root — so it is as strong as the wrapping, no stronger.
 */
import { readFile } from 'node:fs/promises';
import { randomBytes, generateKeyPairSync, createCipheriv, createDecipheriv } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { nodeKeySigner } from '@enclave-edge/attestation';
import { createFileExclusive } from '@enclave-edge/durable-files';
import { hkdfExpandSha256 } from '../hkdf.js';
import { workloadEncrypt, workloadDecrypt, type WorkloadTarget } from './workload-client.js';
import type { RootOfTrust, RotLog } from './types.js';

export const WORKLOAD_ROOT_FILE = 'workload-root.json';
const ATT_INFO = Buffer.from('enclave-edge/v1/workload/attestation-key');

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
const FileSchema = z.object({
  version: z.literal(1),
  kind: z.literal('workload'),
  moduleId: z.string(),
  wrappedSecret: b64,
  wrapIv: b64,
  attestationKey: z.object({ iv: b64, ciphertext: b64, tag: b64 }),
  createdAt: z.string(),
});

function gcm(key: Uint8Array, iv: Uint8Array, data: Uint8Array): { ciphertext: Buffer; tag: Buffer } {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(ATT_INFO);
  const ciphertext = Buffer.concat([c.update(data), c.final()]);
  return { ciphertext, tag: c.getAuthTag() };
}

export async function openWorkloadRoot(opts: { stateDir: string; workload: WorkloadTarget; log?: RotLog }): Promise<RootOfTrust> {
  const path = join(opts.stateDir, WORKLOAD_ROOT_FILE);
  let raw: string | undefined;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (raw === undefined) {
    const secret = randomBytes(32);
    const wrapIv = randomBytes(16);
    const wrapped = await workloadEncrypt(opts.workload, secret, wrapIv);
    const attKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'der', type: 'pkcs8' });
    const iv = randomBytes(12);
    const sealed = gcm(hkdfExpandSha256(secret, ATT_INFO, 32), iv, attKey);
    attKey.fill(0);
    const file = {
      version: 1,
      kind: 'workload',
      moduleId: opts.workload.moduleId,
      wrappedSecret: Buffer.from(wrapped).toString('base64'),
      wrapIv: wrapIv.toString('base64'),
      attestationKey: { iv: iv.toString('base64'), ciphertext: sealed.ciphertext.toString('base64'), tag: sealed.tag.toString('base64') },
      createdAt: new Date().toISOString(),
    };
    secret.fill(0);
    // Two first starts racing: the loser reads the winner's file below.
    await createFileExclusive(path, Buffer.from(JSON.stringify(file) + '\n'), 0o600);
    raw = await readFile(path, 'utf8');
  }
  let f: z.infer<typeof FileSchema>;
  try {
    f = FileSchema.parse(JSON.parse(raw));
  } catch {
    throw new EnclaveEdgeError('CONFIG_INVALID', `workload root-of-trust file ${path} is corrupt`);
  }
  let secret: Uint8Array;
  try {
    secret = await workloadDecrypt(opts.workload, Buffer.from(f.wrappedSecret, 'base64'), Buffer.from(f.wrapIv, 'base64'));
  } catch (err) {
    const e = err as EnclaveEdgeError;
    if (e.code === 'SEAL_INTEGRITY') {
      throw new EnclaveEdgeError('SEAL_INTEGRITY', `the workload API cannot unwrap the root secret in ${path} (module re-created with a new generation id, or the file was altered); sealed data of this module is unrecoverable`, { cause: err });
    }
    throw err;
  }
  if (secret.length !== 32) throw new EnclaveEdgeError('SEAL_INTEGRITY', 'the unwrapped root secret has the wrong length');
  let attKey: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', hkdfExpandSha256(secret, ATT_INFO, 32), Buffer.from(f.attestationKey.iv, 'base64'));
    d.setAAD(ATT_INFO);
    d.setAuthTag(Buffer.from(f.attestationKey.tag, 'base64'));
    attKey = Buffer.concat([d.update(Buffer.from(f.attestationKey.ciphertext, 'base64')), d.final()]);
  } catch {
    throw new EnclaveEdgeError('SEAL_INTEGRITY', `the sealed attestation key in ${path} failed its integrity check`);
  }
  const signer = nodeKeySigner(new Uint8Array(attKey));
  attKey.fill(0);
  opts.log?.('info', 'root of trust "workload": root secret unwrapped by the IoT Edge workload API', { module: opts.workload.moduleId });
  return {
    kind: 'workload',
    developmentGrade: false,
    stateDir: opts.stateDir,
    protects:
      'The root secret is on disk only wrapped by the IoT Edge security manager (workload API encrypt/decrypt, bound to this ' +
      'module id and generation id, and to an HSM when aziot-keyd uses one): a copy of the state directory alone reveals nothing. ' +
      'The unwrapped secret and the attestation key (a software key sealed under it) are in the runtime\'s memory while it runs. ' +
      'Re-creating the module (new generation id) makes the wrapped secret, and so all sealed data, unrecoverable.',
    rollbackProtection: 'None: an older copy of the state directory unwraps just as well.',
    async deriveKey(info) {
      return hkdfExpandSha256(secret, info, 32);
    },
    attestationSigner: signer,
    async close() {
      secret.fill(0);
    },
  };
}
