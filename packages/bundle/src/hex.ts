export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function isHex256(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}
