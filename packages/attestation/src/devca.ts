/**
 * Certificates for the device attestation key: a development CA, device certificates and CSRs.
 * @peculiar/x509 signs through WebCrypto; a small WebCrypto wrapper routes the one `sign` call
 * for our key to an EvidenceSigner, so a non-extractable PKCS#11 key can sign certificates too.
 */
// @peculiar/x509 uses tsyringe, which needs a Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { nodeKeySigner, type EvidenceSigner } from './signer.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIG_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;

interface SignerKeys {
  crypto: webcrypto.Crypto;
  keys: webcrypto.CryptoKeyPair;
}

/** A WebCrypto whose subtle.sign, for the marker private key, asks the signer. */
async function signerKeys(signer: EvidenceSigner): Promise<SignerKeys> {
  const subtle = webcrypto.subtle;
  const publicKey = (await subtle.importKey('spki', Buffer.from(signer.spki), EC, true, ['verify'])) as unknown as webcrypto.CryptoKey;
  const privateKey = { type: 'private', extractable: false, algorithm: EC, usages: ['sign'] } as unknown as webcrypto.CryptoKey;
  const wrapped = new Proxy(subtle, {
    get(target, prop, receiver) {
      if (prop === 'sign') {
        return async (alg: unknown, key: unknown, data: ArrayBuffer | ArrayBufferView) => {
          if (key !== privateKey) return (target.sign as (...a: unknown[]) => Promise<ArrayBuffer>).call(target, alg, key, data);
          const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          const sig = await signer.sign(bytes);
          return sig.buffer.slice(sig.byteOffset, sig.byteOffset + sig.byteLength);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const crypto = {
    subtle: wrapped,
    getRandomValues: webcrypto.getRandomValues.bind(webcrypto),
    randomUUID: webcrypto.randomUUID.bind(webcrypto),
  } as unknown as webcrypto.Crypto;
  return { crypto, keys: { publicKey, privateKey } };
}

function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f; // positive INTEGER
  return b.toString('hex');
}

function days(n: number, from = new Date()): Date {
  return new Date(from.getTime() + n * 86_400_000);
}

export interface DevCa {
  /** PEM of the self-signed CA certificate (the verifier's trust anchor). */
  certPem: string;
  cert: x509.X509Certificate;
  signer: EvidenceSigner;
}

/**
 * A development CA whose key lives only in memory (issue the device certificate, then drop it):
 * nothing on the device can mint more certificates under it.
 */
export async function createDevelopmentCa(opts: { subject?: string; validDays?: number } = {}): Promise<DevCa> {
  const pair = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
  const signer = nodeKeySigner(pkcs8);
  const { crypto, keys } = await signerKeys(signer);
  const name = opts.subject ?? 'CN=enclave-edge development device CA (NOT FOR PRODUCTION)';
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: days(opts.validDays ?? 3650),
      keys,
      signingAlgorithm: SIG_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString('pem'), cert, signer };
}

/** A device attestation certificate for `subjectSpki`, signed by the CA. */
export async function issueDeviceCertificate(opts: {
  ca: { cert: x509.X509Certificate; signer: EvidenceSigner };
  subjectSpki: Uint8Array;
  subject?: string;
  validDays?: number;
}): Promise<x509.X509Certificate> {
  const { crypto, keys } = await signerKeys(opts.ca.signer);
  const subjectKey = (await webcrypto.subtle.importKey('spki', Buffer.from(opts.subjectSpki), EC, true, ['verify'])) as unknown as webcrypto.CryptoKey;
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: opts.subject ?? 'CN=enclave-edge device attestation key',
      issuer: opts.ca.cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: days(opts.validDays ?? 825),
      publicKey: subjectKey,
      signingKey: keys.privateKey,
      signingAlgorithm: SIG_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(subjectKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
}

/** A PKCS#10 request for an operator CA, signed by the device attestation key (proof of possession). */
export async function createCsr(opts: { signer: EvidenceSigner; subject: string }): Promise<string> {
  const { crypto, keys } = await signerKeys(opts.signer);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: opts.subject,
      keys,
      signingAlgorithm: SIG_ALG,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    },
    crypto,
  );
  return csr.toString('pem');
}

/** x5c entries (base64 DER, leaf first) from PEM text. */
export function pemToX5c(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => b.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''));
}
