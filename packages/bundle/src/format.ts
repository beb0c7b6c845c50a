/**
 * The .tab container (see docs/bundle-format.md): a fixed 32-byte header, then the
 * manifest, code, source map and signature sections back to back. Parsing is defensive:
 * every length is bounded and the sum must equal the file size exactly.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { TAManifest } from './types.js';
import { canonicalManifestBytes, validateManifest } from './manifest.js';
import { canonicalJson } from './canonical-json.js';

export const TAB_MAGIC = new Uint8Array([0x45, 0x45, 0x54, 0x41, 0x42, 0x0d, 0x0a, 0x1a]); // "EETAB\r\n\x1a"
export const TAB_VERSION = 1;
export const TAB_HEADER_LENGTH = 32;

export const SECTION_LIMITS = {
  manifest: 64 * 1024,
  code: 64 * 1024 * 1024,
  sourceMap: 64 * 1024 * 1024,
  signature: 64 * 1024,
} as const;

export interface BundleSections {
  /** Canonical manifest JSON bytes. */
  manifestBytes: Uint8Array;
  manifest: TAManifest;
  code: Uint8Array;
  sourceMap?: Uint8Array;
  /** Compact JWS (ASCII); undefined when unsigned. */
  signature?: string;
  size: number;
}

// Stateless (no stream option), so one instance serves every call. ignoreBOM keeps a leading BOM
// in the text, so a BOM-prefixed manifest fails the canonical comparison below.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const bad = (what: string) => new EnclaveEdgeError('BAD_FORMAT', `bundle format: ${what}`);

export function encodeBundle(parts: { manifest: TAManifest; code: Uint8Array; sourceMap?: Uint8Array; signature?: string }): Uint8Array {
  const manifest = canonicalManifestBytes(validateManifest(parts.manifest));
  const signature = parts.signature ? Buffer.from(parts.signature, 'ascii') : new Uint8Array(0);
  const sourceMap = parts.sourceMap ?? new Uint8Array(0);
  const lengths = { manifest: manifest.byteLength, code: parts.code.byteLength, sourceMap: sourceMap.byteLength, signature: signature.byteLength };
  for (const [k, v] of Object.entries(lengths)) {
    if (v > SECTION_LIMITS[k as keyof typeof SECTION_LIMITS]) throw bad(`${k} section is ${v} bytes, larger than the limit ${SECTION_LIMITS[k as keyof typeof SECTION_LIMITS]}`);
  }
  if (lengths.code === 0) throw bad('code section is empty');
  const out = new Uint8Array(TAB_HEADER_LENGTH + lengths.manifest + lengths.code + lengths.sourceMap + lengths.signature);
  const view = new DataView(out.buffer);
  out.set(TAB_MAGIC, 0);
  view.setUint16(8, TAB_VERSION);
  view.setUint16(10, TAB_HEADER_LENGTH);
  view.setUint32(12, 0);
  view.setUint32(16, lengths.manifest);
  view.setUint32(20, lengths.code);
  view.setUint32(24, lengths.sourceMap);
  view.setUint32(28, lengths.signature);
  let off = TAB_HEADER_LENGTH;
  for (const part of [manifest, parts.code, sourceMap, signature]) {
    out.set(part, off);
    off += part.byteLength;
  }
  return out;
}

/** Split and check the container and the manifest (no measurement, no signature). */
export function decodeBundle(input: Uint8Array): BundleSections {
  if (!(input instanceof Uint8Array)) throw bad('input is not bytes');
  if (input.byteLength < TAB_HEADER_LENGTH) throw bad(`file is truncated: ${input.byteLength} bytes, shorter than the ${TAB_HEADER_LENGTH}-byte header`);
  for (let i = 0; i < TAB_MAGIC.length; i++) if (input[i] !== TAB_MAGIC[i]) throw bad('wrong magic: this is not a .tab bundle');
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  const version = view.getUint16(8);
  if (version !== TAB_VERSION) throw bad(`unsupported format version ${version} (this build reads version ${TAB_VERSION})`);
  const headerLength = view.getUint16(10);
  if (headerLength !== TAB_HEADER_LENGTH) throw bad(`header length ${headerLength} is not ${TAB_HEADER_LENGTH} (oversized or corrupt header)`);
  const flags = view.getUint32(12);
  if (flags !== 0) throw bad(`reserved flags are ${flags}, must be 0`);
  const lengths = { manifest: view.getUint32(16), code: view.getUint32(20), sourceMap: view.getUint32(24), signature: view.getUint32(28) };
  for (const [k, v] of Object.entries(lengths)) {
    const limit = SECTION_LIMITS[k as keyof typeof SECTION_LIMITS];
    if (v > limit) throw bad(`${k} section length ${v} exceeds the limit ${limit}`);
  }
  if (lengths.manifest === 0) throw bad('manifest section is empty');
  if (lengths.code === 0) throw bad('code section is empty');
  const expected = TAB_HEADER_LENGTH + lengths.manifest + lengths.code + lengths.sourceMap + lengths.signature;
  if (expected > input.byteLength) throw bad(`file is truncated or section lengths lie: header declares ${expected} bytes, file has ${input.byteLength}`);
  if (expected < input.byteLength) throw bad(`section lengths lie: header declares ${expected} bytes, file has ${input.byteLength} (trailing data)`);

  let off = TAB_HEADER_LENGTH;
  const take = (n: number) => input.subarray(off, (off += n));
  const manifestBytes = take(lengths.manifest);
  const code = take(lengths.code);
  const sourceMap = lengths.sourceMap ? take(lengths.sourceMap) : undefined;
  const signatureBytes = take(lengths.signature);

  let parsed: unknown;
  let manifestText: string;
  try {
    manifestText = utf8.decode(manifestBytes);
    parsed = JSON.parse(manifestText);
  } catch {
    throw bad('manifest section is not valid UTF-8 JSON');
  }
  const manifest = validateManifest(parsed, 'bundle manifest');
  // Strict UTF-8 decoding is one-to-one and canonicalJson's output is well-formed, so equal text means equal bytes.
  if (canonicalJson(manifest) !== manifestText) throw bad('manifest section is not in canonical form (sorted keys, no whitespace)');
  if (manifest.runtime === 'wasm' && !(code[0] === 0 && code[1] === 0x61 && code[2] === 0x73 && code[3] === 0x6d)) {
    throw bad('code section of a wasm TA does not start with the WebAssembly magic');
  }
  if (sourceMap && !manifest.debug) throw bad('a release (non-debug) bundle must not carry a source map');

  let signature: string | undefined;
  if (signatureBytes.byteLength) {
    signature = Buffer.from(signatureBytes.buffer, signatureBytes.byteOffset, signatureBytes.byteLength).toString('latin1');
    if (!/^[\x21-\x7e]+$/.test(signature)) throw bad('signature section is not a printable ASCII compact JWS');
  }
  const out: BundleSections = { manifestBytes, manifest, code, size: input.byteLength };
  if (sourceMap) out.sourceMap = sourceMap;
  if (signature !== undefined) out.signature = signature;
  return out;
}
