// Verify a .tab bundle with nothing but `jose` and node:crypto — no enclave-edge code.
// Usage: node verify-with-jose.mjs <bundle.tab> [expected-signer-id]
import { readFileSync } from 'node:fs';
import { createHash, webcrypto } from 'node:crypto';
import * as jose from 'jose';

const [file, expectedSigner] = process.argv.slice(2);
const tab = readFileSync(file);
const view = new DataView(tab.buffer, tab.byteOffset, tab.byteLength);
if (tab.subarray(0, 8).toString('latin1') !== 'EETAB\r\n\x1a') throw new Error('not a .tab bundle');
const [m, c, s, g] = [16, 20, 24, 28].map((offset) => view.getUint32(offset));
const manifestBytes = tab.subarray(32, 32 + m);
const code = tab.subarray(32 + m, 32 + m + c);
const jws = tab.subarray(32 + m + c + s, 32 + m + c + s + g).toString('ascii');

// 1. The signature, with the public key carried in the JWS header.
const { payload, protectedHeader } = await jose.compactVerify(jws, jose.EmbeddedJWK);
const signed = JSON.parse(new TextDecoder().decode(payload));

// 2. The measurement: SHA-256("enclave-edge.ta.measurement.v1" 0x00 ‖ u64be(M) ‖ manifest ‖ u64be(C) ‖ code).
const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };
const measurement = createHash('sha256').update('enclave-edge.ta.measurement.v1\0').update(u64(m)).update(manifestBytes).update(u64(c)).update(code).digest('hex');
if (measurement !== signed.measurement) throw new Error(`measurement ${measurement} does not match the signed ${signed.measurement}`);
if (JSON.stringify(JSON.parse(manifestBytes.toString('utf8'))) !== JSON.stringify(signed.manifest)) throw new Error('manifest differs from the signed manifest');

// 3. Who signed: signer_id = SHA-256 of the public key's SPKI DER.
const key = await jose.importJWK(protectedHeader.jwk, 'ES256');
const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', key));
const signerId = createHash('sha256').update(spki).digest('hex');
if (expectedSigner && signerId !== expectedSigner) throw new Error(`signed by ${signerId}, not ${expectedSigner}`);

console.log(`OK ${signed.manifest.name} ${signed.manifest.version}\nmeasurement ${measurement}\nsigner_id   ${signerId}`);
