/** IoT Hub shared access signatures: create, parse and verify (HMAC-SHA256 over `sr\nse`). */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface SasToken {
  /** The `sr` field exactly as it appears in the token (URL-encoded); the signature covers it. */
  sr: string;
  /** `sr` URL-decoded. */
  resource: string;
  sig: string;
  se: number;
  skn?: string;
}

/** encodeURIComponent plus the characters the Azure SDKs also escape. */
export function encodeUriStrict(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** `key`: base64 text (IoT Hub decodes it), or the raw HMAC key bytes (Event Hubs signs with the key text's UTF-8 bytes). */
function sign(key: string | Buffer, sr: string, se: number): string {
  return createHmac('sha256', typeof key === 'string' ? Buffer.from(key, 'base64') : key).update(`${sr}\n${se}`).digest('base64');
}

/** `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]` for `resource` (unencoded), valid `ttlSecs`. */
export function createSas(resource: string, keyBase64: string, opts: { ttlSecs?: number; keyName?: string; expiry?: number } = {}): string {
  const sr = encodeUriStrict(resource);
  const se = opts.expiry ?? Math.floor(Date.now() / 1000) + (opts.ttlSecs ?? 3600);
  let token = `SharedAccessSignature sr=${sr}&sig=${encodeUriStrict(sign(keyBase64, sr, se))}&se=${se}`;
  if (opts.keyName) token += `&skn=${encodeUriStrict(opts.keyName)}`;
  return token;
}

/** Parse a token; undefined when it is not a SharedAccessSignature with sr, sig and a numeric se. */
export function parseSas(token: string | undefined): SasToken | undefined {
  if (!token) return undefined;
  const m = /^SharedAccessSignature\s+(.+)$/.exec(token.trim());
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of m[1]!.split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = Number(fields.get('se'));
  if (!sr || !sig || !Number.isInteger(se)) return undefined;
  let resource: string;
  try {
    resource = decodeURIComponent(sr);
  } catch {
    return undefined;
  }
  const skn = fields.get('skn');
  return { sr, resource, sig: safeDecode(sig), se, ...(skn ? { skn: safeDecode(skn) } : {}) };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export type SasCheck = { ok: true; token: SasToken } | { ok: false; reason: string };

/** Check a token's signature with `key` (see sign) and its expiry; `resourceOk` validates the resource. */
export function verifySas(token: string | undefined, keyBase64: string | Buffer, resourceOk: (resource: string) => boolean, nowSecs = Date.now() / 1000): SasCheck {
  const t = parseSas(token);
  if (!t) return { ok: false, reason: 'not a SharedAccessSignature token' };
  if (!resourceOk(t.resource)) return { ok: false, reason: `token is for another resource (${t.resource})` };
  if (t.se <= nowSecs) return { ok: false, reason: 'token expired' };
  const expected = Buffer.from(sign(keyBase64, t.sr, t.se), 'base64');
  const given = Buffer.from(t.sig, 'base64');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'signature does not match' };
  return { ok: true, token: t };
}

/**
 * Remembers tokens whose signature checked out, so a client re-using its token (as the SDKs and
 * hub-client do for up to an hour) skips the HMAC; expiry and resource are still checked each time.
 */
export class VerifiedSasCache {
  private readonly ok = new Map<string, SasToken>();

  constructor(private readonly max = 1024) {}

  verify(token: string | undefined, keyBase64: string, resourceOk: (resource: string) => boolean, nowSecs = Date.now() / 1000): SasCheck {
    if (token) {
      const hit = this.ok.get(keyBase64 + '\u0000' + token);
      if (hit) {
        if (!resourceOk(hit.resource)) return { ok: false, reason: `token is for another resource (${hit.resource})` };
        if (hit.se <= nowSecs) return { ok: false, reason: 'token expired' };
        return { ok: true, token: hit };
      }
    }
    const r = verifySas(token, keyBase64, resourceOk, nowSecs);
    if (r.ok) {
      if (this.ok.size >= this.max) this.ok.clear();
      this.ok.set(keyBase64 + '\u0000' + token, r.token);
    }
    return r;
  }
}
