/** X.509 path checks for the `x5c` chain, with node:crypto (no runtime code, usable in the cloud). */
import { X509Certificate, createHash } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';

export interface ChainResult {
  leaf: X509Certificate;
  /** The certificate that issued the leaf: x5c[1], else the anchor (the leaf itself if it is the anchor). */
  issuer: X509Certificate;
  /** Subjects from leaf to anchor. */
  path: string[];
  /** The window in which every certificate on the path is valid (ms since epoch). */
  validFrom: number;
  validTo: number;
}

/** Parse PEM text holding one or more certificates. */
export function parseTrustAnchors(pem: string | string[]): X509Certificate[] {
  const texts = Array.isArray(pem) ? pem : [pem];
  const out: X509Certificate[] = [];
  for (const text of texts) {
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    for (const b of blocks) out.push(new X509Certificate(b));
  }
  if (!out.length) throw new EnclaveEdgeError('CONFIG_INVALID', 'no certificate found in the trust anchors');
  return out;
}

function inValidity(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom).getTime() <= now.getTime() && now.getTime() <= new Date(c.validTo).getTime();
}

export class ChainError extends Error {}

/** Each certificate issued and signed by the next; the last by (or equal to) a trust anchor; all valid now. */
export function verifyChain(x5c: string[], anchors: X509Certificate[], now: Date): ChainResult {
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > 8) throw new ChainError('x5c must hold 1..8 certificates');
  let certs: X509Certificate[];
  try {
    certs = x5c.map((c) => {
      if (typeof c !== 'string' || !/^[A-Za-z0-9+/]+=*$/.test(c)) throw new Error('x5c entries must be base64 DER');
      return new X509Certificate(Buffer.from(c, 'base64'));
    });
  } catch (err) {
    throw new ChainError(`x5c holds an unreadable certificate: ${(err as Error).message}`);
  }
  for (const c of certs) {
    if (!inValidity(c, now)) throw new ChainError(`certificate "${c.subject}" is not valid at ${now.toISOString()} (valid ${c.validFrom} – ${c.validTo})`);
  }
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i]!;
    const parent = certs[i + 1]!;
    if (!parent.ca) throw new ChainError(`"${parent.subject}" is not a CA certificate`);
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) throw new ChainError(`"${child.subject}" is not signed by "${parent.subject}"`);
  }
  const last = certs[certs.length - 1]!;
  const fp = last.fingerprint256;
  let anchored = anchors.some((a) => a.fingerprint256 === fp);
  let anchor: X509Certificate | undefined;
  if (!anchored) {
    for (const a of anchors) {
      if (a.ca && inValidity(a, now) && last.checkIssued(a) && last.verify(a.publicKey)) {
        anchored = true;
        anchor = a;
        break;
      }
    }
  }
  if (!anchored) throw new ChainError(`the chain ("${last.subject}", issuer "${last.issuer}") does not lead to a trusted anchor`);
  const leaf = certs[0]!;
  const details = leaf.publicKey.asymmetricKeyDetails;
  if (leaf.publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') throw new ChainError('the leaf certificate key is not ECDSA P-256');
  let validFrom = -Infinity;
  let validTo = Infinity;
  for (const c of anchor ? [...certs, anchor] : certs) {
    validFrom = Math.max(validFrom, new Date(c.validFrom).getTime());
    validTo = Math.min(validTo, new Date(c.validTo).getTime());
  }
  const issuer = certs[1] ?? anchor ?? leaf;
  return { leaf, issuer, path: certs.map((c) => c.subject.replace(/\n/g, ', ')), validFrom, validTo };
}

/** SHA-256 certificate fingerprint as 64 lowercase hex digits (node gives "AB:CD:…"). */
export function certFingerprint(c: X509Certificate): string {
  return c.fingerprint256.replace(/:/g, '').toLowerCase();
}

/**
 * O8: constraints on who issued the leaf, for anchors that also issue unrelated certificates
 * (e.g. a device CA that also certifies module server keys). Returns why it fails, or undefined.
 */
export function checkIssuerConstraints(chain: ChainResult, c: { attestationIssuers?: string[] | undefined; requiredLeafEku?: string[] | undefined }): string | undefined {
  if (c.attestationIssuers) {
    const fp = certFingerprint(chain.issuer);
    if (!c.attestationIssuers.includes(fp)) return `the leaf is issued by "${chain.issuer.subject.replace(/\n/g, ', ')}" (SHA-256 ${fp}), not by one of attestationIssuers`;
  }
  if (c.requiredLeafEku?.length) {
    const eku = chain.leaf.keyUsage ?? [];
    const missing = c.requiredLeafEku.filter((oid) => !eku.includes(oid));
    if (missing.length) return `the leaf certificate lacks the extended key usage ${missing.join(', ')} (has ${eku.length ? eku.join(', ') : 'none'})`;
  }
  return undefined;
}

/** A stable key for caching verified chains. */
export function chainCacheKey(x5c: string[]): string {
  return createHash('sha256').update(x5c.join('.')).digest('base64url');
}
