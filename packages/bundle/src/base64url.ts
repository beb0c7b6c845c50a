/** Strict base64url (RFC 4648 §5, no padding): refuses stray characters and non-canonical trailing bits. */
export function encodeBase64url(bytes: Uint8Array | string): string {
  return (typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('base64url');
}

export function decodeBase64urlStrict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  // Node ignores unused trailing bits; a canonical encoding must round-trip exactly.
  return bytes.toString('base64url') === text ? bytes : undefined;
}
