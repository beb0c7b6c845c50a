/**
 * A local stand-in for an Azure Blob Storage container with a SAS URL, for `$edgeAgent`
 * UploadModuleLogs / UploadSupportBundle: `PUT /edge-sim/blob/{container}/{blob}?…&sig=…` writes
 * `<state dir>/blobs/{container}/{blob}`. The SAS is the simulator's own (HMAC with the hub key over
 * container, permissions and expiry); the uploader speaks the Blob REST call any SAS URL takes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import https from 'node:https';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const BLOB_PATH_PREFIX = '/edge-sim/blob/';
const MAX_BLOB_BYTES = 64 * 1024 * 1024;
const CONTAINER = /^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$/;

function signature(key: Buffer, container: string, permissions: string, expiry: string): string {
  return createHmac('sha256', key).update(`${container}\n${permissions}\n${expiry}`).digest('base64');
}

/** The blob target's signing key, derived from the hub key (one secret fewer to keep). */
export function blobKey(hubKeyBase64: string): Buffer {
  return createHmac('sha256', Buffer.from(hubKeyBase64, 'base64')).update('edge-sim blob target').digest();
}

/** A container SAS URL (write + create) for the simulator's blob target. */
export function containerSasUrl(baseUrl: string, container: string, key: Buffer, validSecs = 86400): string {
  if (!CONTAINER.test(container)) throw new RangeError(`not a container name: ${container}`);
  const se = new Date(Date.now() + validSecs * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const q = new URLSearchParams({ sv: '2021-08-06', sr: 'c', sp: 'cw', se, sig: signature(key, container, 'cw', se) });
  return `${baseUrl.replace(/\/$/, '')}${BLOB_PATH_PREFIX}${container}?${q}`;
}

export class BlobTarget {
  constructor(
    private readonly dir: string,
    private readonly key: Buffer,
  ) {}

  /** Handles a PUT under BLOB_PATH_PREFIX (Put Blob); answers as Blob Storage would. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const fail = (status: number, code: string, message: string): void => {
      res.writeHead(status, { 'content-type': 'application/xml', 'x-ms-error-code': code }).end(`<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message.replace(/[<>&]/g, '')}</Message></Error>`);
    };
    const rest = url.pathname.slice(BLOB_PATH_PREFIX.length).split('/').map(decodeURIComponent);
    const [container, ...nameParts] = rest;
    const name = nameParts.join('/');
    if (req.method !== 'PUT') return fail(405, 'UnsupportedHttpVerb', 'only Put Blob is served');
    if (!container || !CONTAINER.test(container) || !name) return fail(400, 'InvalidUri', 'expected /edge-sim/blob/{container}/{blob}');
    // eslint-disable-next-line no-control-regex
    if (nameParts.some((p) => p === '' || p === '.' || p === '..' || /[\u0000-\u001f\\]/.test(p))) return fail(400, 'InvalidResourceName', 'blob name has an empty, relative or control-character segment');
    const sp = url.searchParams.get('sp') ?? '';
    const se = url.searchParams.get('se') ?? '';
    const sig = url.searchParams.get('sig') ?? '';
    const want = Buffer.from(signature(this.key, container, sp, se));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return fail(403, 'AuthenticationFailed', 'the SAS signature does not match');
    if (!sp.includes('w') && !sp.includes('c')) return fail(403, 'AuthorizationPermissionMismatch', 'the SAS does not allow writing');
    if (!(Date.parse(se) > Date.now())) return fail(403, 'AuthenticationFailed', 'the SAS has expired');
    if (req.headers['x-ms-blob-type'] !== 'BlockBlob') return fail(400, 'MissingRequiredHeader', 'x-ms-blob-type: BlockBlob is required');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BLOB_BYTES) return fail(413, 'RequestBodyTooLarge', `blob larger than ${MAX_BLOB_BYTES} bytes`);
      chunks.push(c as Buffer);
    }
    const root = resolve(this.dir, container);
    const file = resolve(root, ...nameParts);
    if (!file.startsWith(root + sep)) return fail(400, 'InvalidResourceName', 'blob name leaves the container');
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, Buffer.concat(chunks), { mode: 0o600 });
    res.writeHead(201, { etag: `"0x${Date.now().toString(16)}"` }).end();
  }

  /** Where a container's blobs are written. */
  containerDir(container: string): string {
    return join(this.dir, container);
  }
}

/** Put Blob to `{container SAS URL}` + `/{blobName}`, as edgeAgent uploads logs and bundles. */
export function putBlob(sasUrl: string, blobName: string, data: Buffer, ca?: string): Promise<void> {
  let url: URL;
  try {
    url = new URL(sasUrl);
  } catch {
    return Promise.reject(new Error('sasUrl is not a URL'));
  }
  if (url.protocol !== 'https:') return Promise.reject(new Error('sasUrl must be an https URL'));
  const path = `${url.pathname.replace(/\/$/, '')}/${blobName.split('/').map(encodeURIComponent).join('/')}${url.search}`;
  return new Promise((resolvePut, reject) => {
    const req = https.request(
      { host: url.hostname, port: url.port || 443, path, method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob', 'content-length': data.length, 'x-ms-version': '2021-08-06' }, ...(ca ? { ca } : {}) },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => (res.statusCode === 201 ? resolvePut() : reject(new Error(`blob upload answered ${res.statusCode}: ${/<Message>([^<]*)/.exec(body)?.[1] ?? body.slice(0, 200)}`))));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}
