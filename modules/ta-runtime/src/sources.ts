/**
 * Where a TA bundle comes from: a file name in the bundle directory (`hello.tab`), an
 * absolute path or `file:` URL in the image, an `https://` URL, or `base64:<bundle>`.
 * Every source is size-bounded; nothing is trusted until verifyBundle and the policy pass.
 */
import { readFile, stat } from 'node:fs/promises';
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
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    const hint = isAbsolute(source) || source.startsWith('file:') ? '' : ' (for the samples, run `npm run build:tas -w @enclave-edge/ta-runtime`)';
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `bundle file ${path} does not exist${hint}`);
  }
  if (size > MAX_BUNDLE_BYTES) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `bundle file ${path} is ${size} bytes; the limit is ${MAX_BUNDLE_BYTES}`);
  return new Uint8Array(await readFile(path));
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
