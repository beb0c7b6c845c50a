/**
 * Where a TA bundle comes from: a file name in the bundle directory (`hello.tab`), an
 * absolute path or `file:` URL in the image, an `https://` URL, or `base64:<bundle>`.
 * Every source is size-bounded; nothing is trusted until verifyBundle and the policy pass.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnclaveEdgeError } from '@enclave-edge/errors';

export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export interface SourceOptions {
  bundleDir: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export async function readSource(source: string, opts: SourceOptions): Promise<Uint8Array> {
  if (source.startsWith('base64:')) {
    const text = source.slice('base64:'.length).trim();
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) throw new EnclaveEdgeError('BAD_FORMAT', 'inline bundle is not base64');
    return new Uint8Array(Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64'));
  }
  if (source.startsWith('https://')) return fetchBundle(source, opts);
  if (source.startsWith('http:')) throw new EnclaveEdgeError('POLICY_VIOLATION', 'bundles are fetched over https only');
  let path: string;
  if (source.startsWith('file:')) path = fileURLToPath(source);
  else if (isAbsolute(source)) path = source;
  else {
    if (basename(source) !== source || source === '.' || source === '..') {
      throw new EnclaveEdgeError('BAD_PARAMETERS', `TA source "${source}" must be a file name in the bundle directory, an absolute path, or a URL`);
    }
    path = join(opts.bundleDir, source);
  }
  // Non-blocking open, then checks on the open file itself: a FIFO must not hang the reconcile
  // loop, a device (/dev/zero) must not be read without end, and a file that grows after the
  // size check is still read only up to the limit.
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    const hint = isAbsolute(source) || source.startsWith('file:') ? '' : ' (for the samples, run `npm run build:tas -w @enclave-edge/ta-runtime`)';
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `bundle file ${path} does not exist${hint}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EnclaveEdgeError('BAD_PARAMETERS', `bundle source ${path} is not a regular file`);
    if (st.size > MAX_BUNDLE_BYTES) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `bundle file ${path} is ${st.size} bytes; the limit is ${MAX_BUNDLE_BYTES}`);
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) throw new EnclaveEdgeError('CONFLICT', `bundle file ${path} changed while it was read`);
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, n);
  } finally {
    await fh.close();
  }
}

async function fetchBundle(url: string, opts: SourceOptions): Promise<Uint8Array> {
  const doFetch = opts.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000), redirect: 'error' });
  } catch (err) {
    throw new EnclaveEdgeError('UNAVAILABLE', `could not fetch ${url}: ${(err as Error).message}`);
  }
  if (!res.ok) throw new EnclaveEdgeError('UNAVAILABLE', `fetching ${url} answered HTTP ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_BUNDLE_BYTES) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `${url} is ${declared} bytes; the limit is ${MAX_BUNDLE_BYTES}`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > MAX_BUNDLE_BYTES) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `${url} exceeds ${MAX_BUNDLE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
