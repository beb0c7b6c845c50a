/** The simulator's own PKI: a CA and a server certificate for localhost / 127.0.0.1 (ECDSA P-256). */
// @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// @peculiar/x509 wants the DOM Crypto type; node's webcrypto is that at run time.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface GeneratedPki {
  caCertPem: string;
  caKeyPem: string;
  serverCertPem: string;
  serverKeyPem: string;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  // Positive 16-byte serial.
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f;
  return Buffer.from(b).toString('hex');
}

/** Names and addresses the server certificate always covers; `extraIps` adds a loopback alias the simulator listens on. */
function serverSans(extraIps: string[]): Array<{ type: 'dns' | 'ip'; value: string }> {
  const ips = [...new Set(['127.0.0.1', '::1', ...extraIps])];
  return [{ type: 'dns', value: 'localhost' }, ...ips.map((value) => ({ type: 'ip' as const, value }))];
}

export async function generatePki(opts: { validDays?: number; ips?: string[] } = {}): Promise<GeneratedPki> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + (opts.validDays ?? 365) * 86_400_000);
  const subtle = webcrypto.subtle;
  const caKeys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=enclave-edge simulator CA (development only)',
    notBefore,
    notAfter,
    keys: caKeys as never,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as never),
    ],
  });
  const server = await issueServerCert(ca, caKeys.privateKey, opts.ips ?? [], notAfter);
  return { caCertPem: ca.toString('pem'), caKeyPem: await keyPem(caKeys.privateKey), ...server };
}

async function issueServerCert(ca: x509.X509Certificate, caKey: CryptoKey, ips: string[], notAfter: Date): Promise<{ serverCertPem: string; serverKeyPem: string }> {
  const serverKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=localhost',
    issuer: ca.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter,
    signingKey: caKey as never,
    publicKey: serverKeys.publicKey as never,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(serverSans(ips)),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey as never),
    ],
  });
  return { serverCertPem: server.toString('pem'), serverKeyPem: await keyPem(serverKeys.privateKey) };
}

/** Whether the server certificate names `ip` (a loopback alias chosen after it was made). */
export function serverCertCovers(serverCertPem: string, ip: string): boolean {
  const cert = new x509.X509Certificate(serverCertPem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return !!san?.names.items.some((n) => n.type === 'ip' && n.value === ip);
}

/** A new server certificate for more addresses, signed by the state folder's existing CA (clients keep trusting ca.pem). */
export async function reissueServerCert(caCertPem: string, caKeyPem: string, ips: string[]): Promise<{ serverCertPem: string; serverKeyPem: string }> {
  const ca = new x509.X509Certificate(caCertPem);
  const der = x509.PemConverter.decode(caKeyPem)[0]!;
  const caKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
  return issueServerCert(ca, caKey, ips, ca.notAfter);
}
