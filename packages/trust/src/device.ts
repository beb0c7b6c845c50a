/**
 * Device identity for attestation: the certificate chain of the attestation key, kept in the
 * state directory (`device/chain.pem`, leaf first; `device/ca.pem` for a development CA).
 */
import { readFile, mkdir, access } from 'node:fs/promises';
import { X509Certificate, createHash } from 'node:crypto';
import { join } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { createDevelopmentCa, issueDeviceCertificate, createCsr, pemToX5c } from '@enclave-edge/attestation';
import { writeFileAtomic } from '@enclave-edge/durable-files';
import type { RootOfTrust } from './rot/types.js';

export const DEVICE_DIR = 'device';
export const CHAIN_FILE = 'chain.pem';
export const DEV_CA_FILE = 'ca.pem';
export const CSR_FILE = 'device.csr';

export function devicePaths(stateDir: string) {
  const dir = join(stateDir, DEVICE_DIR);
  return { dir, chain: join(dir, CHAIN_FILE), ca: join(dir, DEV_CA_FILE), csr: join(dir, CSR_FILE) };
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}

export interface DeviceInitResult {
  mode: 'self-signed' | 'csr';
  rot: string;
  /** Where the chain (self-signed) or the CSR was written. */
  chainPath?: string;
  caPath?: string;
  csrPath?: string;
  /** PEM of the development CA: give it to verifiers as --trust. */
  caPem?: string;
  csrPem?: string;
  subject: string;
  attestationKeySpkiSha256: string;
}

function spkiOf(cert: X509Certificate): Buffer {
  return cert.publicKey.export({ format: 'der', type: 'spki' });
}

/**
 * Create the device identity: the attestation key already exists in the root of trust; here
 * we either self-sign a development CA and issue the device certificate, or write a CSR.
 */
export async function initDeviceIdentity(opts: {
  root: RootOfTrust;
  mode: 'self-signed' | 'csr';
  subject?: string;
  csrPath?: string;
  force?: boolean;
}): Promise<DeviceInitResult> {
  const p = devicePaths(opts.root.stateDir);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  if (opts.mode === 'self-signed' && !opts.force && (await exists(p.chain))) {
    throw new EnclaveEdgeError('CONFLICT', `a device certificate chain already exists at ${p.chain} (use --force to replace it)`);
  }
  const signer = opts.root.attestationSigner;
  const fingerprint = createHash('sha256').update(signer.spki).digest('hex');
  const dev = opts.root.developmentGrade ? ' (development-grade software root of trust)' : '';
  const subject = opts.subject ?? `CN=enclave-edge device attestation ${fingerprint.slice(0, 16)}`;
  if (opts.mode === 'csr') {
    const csrPem = await createCsr({ signer, subject });
    const csrPath = opts.csrPath ?? p.csr;
    await writeFileAtomic(csrPath, Buffer.from(csrPem), 0o644);
    return { mode: 'csr', rot: opts.root.kind, csrPath, csrPem, subject, attestationKeySpkiSha256: fingerprint };
  }
  const ca = await createDevelopmentCa({ subject: `CN=enclave-edge development device CA ${fingerprint.slice(0, 8)}${dev}, O=NOT FOR PRODUCTION` });
  const leaf = await issueDeviceCertificate({ ca, subjectSpki: signer.spki, subject });
  await writeFileAtomic(p.ca, Buffer.from(ca.certPem), 0o644);
  await writeFileAtomic(p.chain, Buffer.from(leaf.toString('pem') + '\n'), 0o644);
  return { mode: 'self-signed', rot: opts.root.kind, chainPath: p.chain, caPath: p.ca, caPem: ca.certPem, subject, attestationKeySpkiSha256: fingerprint };
}

/** Store the chain an operator CA returned for our CSR, after checking it fits the attestation key. */
export async function importDeviceCertificate(opts: { root: RootOfTrust; chainPem: string }): Promise<{ chainPath: string; subjects: string[] }> {
  const x5c = pemToX5c(opts.chainPem);
  if (!x5c.length) throw new EnclaveEdgeError('BAD_FORMAT', 'no certificate in the given PEM');
  const certs = x5c.map((c) => new X509Certificate(Buffer.from(c, 'base64')));
  const leaf = certs[0]!;
  if (!spkiOf(leaf).equals(Buffer.from(opts.root.attestationSigner.spki))) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `the first certificate ("${leaf.subject}") is not for this device's attestation key`);
  }
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i]!.verify(certs[i + 1]!.publicKey)) {
      throw new EnclaveEdgeError('SIGNATURE_INVALID', `"${certs[i]!.subject}" is not signed by the next certificate "${certs[i + 1]!.subject}"; give the chain leaf first`);
    }
  }
  const now = Date.now();
  if (new Date(leaf.validTo).getTime() < now) throw new EnclaveEdgeError('BAD_PARAMETERS', `the device certificate expired on ${leaf.validTo}`);
  const p = devicePaths(opts.root.stateDir);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(p.chain, Buffer.from(certs.map((c) => c.toString()).join('')), 0o644);
  return { chainPath: p.chain, subjects: certs.map((c) => c.subject.replace(/\n/g, ', ')) };
}

/** The stored chain as JWS x5c, checked against the attestation key; undefined if absent. */
export async function loadDeviceChain(root: RootOfTrust): Promise<string[] | undefined> {
  let pem: string;
  try {
    pem = await readFile(devicePaths(root.stateDir).chain, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const x5c = pemToX5c(pem);
  const leaf = x5c[0] && new X509Certificate(Buffer.from(x5c[0], 'base64'));
  if (!leaf || !spkiOf(leaf).equals(Buffer.from(root.attestationSigner.spki))) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `the device chain in ${devicePaths(root.stateDir).chain} is not for this root of trust's attestation key (run \`enclave-edge device init --force\`)`);
  }
  return x5c;
}
