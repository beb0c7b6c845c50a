import { base64urlDecode, base64urlEncode, canonicalJson, defineTA, TAError, utf8Decode, utf8Encode, type JsonWebKeyPublic, type TAContext, type Value } from '@enclave-edge/ta-sdk';

/**
 * A device signing key that exists only inside the enclave: created on first use, stored sealed
 * with the `product` policy (so a newer version from the same signer keeps the same key), and
 * used to sign sensor readings. Callers see the public key and signatures, never the key.
 */
const STORAGE_KEY = 'signing-key';
const SEAL_CONTEXT = 'sensor-signer/signing-key/v1';

interface SigningKey {
  privateKey: Uint8Array;
  publicKey: JsonWebKeyPublic;
  keyId: string;
}

/** RFC 7638 JWK thumbprint: a stable key id. */
function thumbprint(ctx: TAContext, jwk: JsonWebKeyPublic): string {
  return base64urlEncode(ctx.crypto.sha256(canonicalJson({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })));
}

let key: Promise<SigningKey> | undefined;

async function loadOrCreateKey(ctx: TAContext): Promise<SigningKey> {
  const sealed = await ctx.storage.get(STORAGE_KEY);
  if (sealed) {
    const stored = JSON.parse(utf8Decode(await ctx.unseal(sealed, { context: SEAL_CONTEXT }))) as { d: string; jwk: JsonWebKeyPublic };
    return { privateKey: base64urlDecode(stored.d), publicKey: stored.jwk, keyId: thumbprint(ctx, stored.jwk) };
  }
  const pair = ctx.crypto.generateKeyPair('ES256');
  const publicKey: JsonWebKeyPublic = { kty: 'EC', crv: 'P-256', x: pair.publicKey.x, y: pair.publicKey.y };
  const blob = await ctx.seal(utf8Encode(JSON.stringify({ d: base64urlEncode(pair.privateKey), jwk: publicKey })), { policy: 'product', context: SEAL_CONTEXT });
  await ctx.storage.put(STORAGE_KEY, blob);
  ctx.log.info('created signing key', { keyId: thumbprint(ctx, publicKey) });
  return { privateKey: pair.privateKey, publicKey, keyId: thumbprint(ctx, publicKey) };
}

function signingKey(ctx: TAContext): Promise<SigningKey> {
  // One promise per instance, so concurrent first calls create one key, not several.
  key ??= loadOrCreateKey(ctx).catch((e: unknown) => {
    key = undefined;
    throw e;
  });
  return key;
}

/**
 * Sealed readings (docs/confidential-calls.md, "Sealed readings"): per instance a random stream
 * id and a counter, so the holder of the recipient key sees a missing or repeated reading.
 */
let stream: string | undefined;
let seq = 0;
const SEALED_INFO = 'enclave-edge/sealed-reading/v1';
const PIPELINE = /^[A-Za-z0-9_.:-]{1,128}$/;

function isReading(v: Value): v is Record<string, Value> {
  return !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export default defineTA({
  commands: {
    /** params: the reading, a JSON object. Signature: ES256 over the UTF-8 canonical JSON of the reading. */
    async sign(ctx, params: Value) {
      if (!params || typeof params !== 'object' || Array.isArray(params) || params instanceof Uint8Array) {
        throw new TAError('BAD_PARAMETERS', 'params must be the reading as a JSON object, e.g. {"sensor":"t1","value":21.5}');
      }
      const k = await signingKey(ctx);
      const signature = ctx.crypto.sign('ES256', k.privateKey, utf8Encode(canonicalJson(params)));
      return { reading: params, signature: base64urlEncode(signature), keyId: k.keyId, alg: 'ES256' };
    },
    /**
     * params: { reading, recipient (X25519 OKP JWK), pipeline } — host-module's form for a
     * pipeline with a `recipient`. Signs the reading bound to its header, then HPKE-seals both
     * to the recipient: only the holder of that key reads it.
     */
    async signSealed(ctx, params: Value) {
      const p = isReading(params) ? params : undefined;
      if (!p || !isReading(p.reading as Value)) throw new TAError('BAD_PARAMETERS', 'params must be { reading: {...}, recipient: <X25519 JWK>, pipeline } (a pipeline with a recipient)');
      if (typeof p.pipeline !== 'string' || !PIPELINE.test(p.pipeline)) throw new TAError('BAD_PARAMETERS', 'params.pipeline must be the pipeline name');
      const recipient = p.recipient as JsonWebKeyPublic;
      if (!isReading(recipient as Value) || typeof recipient.x !== 'string') throw new TAError('BAD_PARAMETERS', 'params.recipient must be an X25519 public JWK');
      const k = await signingKey(ctx);
      stream ??= base64urlEncode(ctx.random(16));
      const header = {
        v: 1, kem: 0x0020, kdf: 0x0001, aead: 0x0002, ta: ctx.ta.name, m: ctx.ta.measurement, pipeline: p.pipeline, stream, seq: seq++,
        rcpt: base64urlEncode(ctx.crypto.sha256(canonicalJson({ crv: recipient.crv, kty: recipient.kty, x: recipient.x }))), kid: k.keyId,
      };
      const headerBytes = utf8Encode(JSON.stringify(header));
      const h = base64urlEncode(headerBytes);
      const signature = base64urlEncode(ctx.crypto.sign('ES256', k.privateKey, utf8Encode(canonicalJson({ h, reading: p.reading }))));
      const body = JSON.stringify({ reading: p.reading, signature, keyId: k.keyId, alg: 'ES256' });
      // hpkeSeal refuses a recipient that is not a strict X25519 public key (suite, length, small order).
      const { enc, ciphertext } = await ctx.crypto.hpkeSeal(recipient, body, { info: SEALED_INFO, aad: headerBytes });
      return { v: 1, h, enc: base64urlEncode(enc), ct: base64urlEncode(ciphertext) };
    },
    /** The public key as a JWK (with its kid), for verifiers and for attestation binding. */
    async publicKey(ctx) {
      const k = await signingKey(ctx);
      return { ...k.publicKey, kid: k.keyId, alg: 'ES256', use: 'sig' } as Value;
    },
    /** Evidence binding this key to this TA build (requires the runtime's attestation service). */
    async attest(ctx, params: Value) {
      const nonce = (params as { nonce?: unknown } | null)?.nonce;
      if (typeof nonce !== 'string') throw new TAError('BAD_PARAMETERS', 'params.nonce must be a string');
      const k = await signingKey(ctx);
      return { evidence: await ctx.attest({ nonce, publicKey: k.publicKey, claims: { keyId: k.keyId } }) };
    },
  },
});
