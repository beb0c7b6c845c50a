/**
 * The IoT Edge workload API (the part of aziot-edged that modules call): GET /trust-bundle,
 * POST /modules/{m}/genid/{g}/sign | encrypt | decrypt. Every response is JSON with
 * `Content-Type: application/json` (the SDK ignores bodies without it); errors are
 * `{"message": "…"}` as iotedged sends them, plus our error `code`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { z } from 'zod';
import { EnclaveEdgeError, type ErrorCode } from '@enclave-edge/errors';
import { aeadDecrypt, aeadEncrypt, deriveModuleKey, hmacSign } from './crypto.js';
import type { WorkloadApi, WorkloadApiOptions, WorkloadModuleIdentity } from './types.js';

/** api-versions that aziot-edged / iotedged have served; the Node SDK sends 2018-06-28. */
export const WORKLOAD_API_VERSIONS = ['2018-06-28', '2019-01-30', '2019-11-05', '2020-07-07', '2021-12-07', '2022-08-03'];
const MAX_BODY = 1024 * 1024;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const signSchema = z.object({
  keyId: z.literal('primary', { error: 'keyId must be "primary"' }),
  algo: z.literal('HMACSHA256', { error: 'algo must be "HMACSHA256"' }),
  data: b64,
});
const encryptSchema = z.object({ plaintext: b64, initializationVector: b64 });
const decryptSchema = z.object({ ciphertext: b64, initializationVector: b64 });

class HttpError extends EnclaveEdgeError {
  constructor(readonly httpStatus: number, code: ErrorCode, message: string) {
    super(code, message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Past the limit, keep reading (so the 413 can be sent on this connection) but keep nothing.
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY} bytes`));
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text === '' ? undefined : JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'BAD_FORMAT', 'request body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = i.path.map(String).join('.');
    throw new HttpError(400, 'BAD_PARAMETERS', `invalid ${what} request: ${field ? field + ': ' : ''}${i.message}`);
  }
  return r.data;
}

export function createWorkloadHandler(opts: Omit<WorkloadApiOptions, 'listen'>) {
  if (opts.masterSecret.length < 32) throw new EnclaveEdgeError('BAD_PARAMETERS', 'workload masterSecret must be at least 32 bytes');
  const trustBundle = typeof opts.trustBundlePem === 'function' ? opts.trustBundlePem : () => opts.trustBundlePem as string;
  const keyCache = new Map<string, Buffer>();

  function identity(moduleId: string, genid: string): WorkloadModuleIdentity {
    const id = opts.modules(moduleId);
    if (!id) throw new HttpError(404, 'ITEM_NOT_FOUND', `module ${moduleId} not found`);
    if (id.generationId !== genid) throw new HttpError(400, 'BAD_PARAMETERS', `generation id ${genid} does not match module ${moduleId}`);
    return id;
  }

  function moduleKey(moduleId: string, genid: string): Buffer {
    const k = JSON.stringify([moduleId, genid]);
    let key = keyCache.get(k);
    if (!key) {
      key = deriveModuleKey(opts.masterSecret, moduleId, genid);
      keyCache.set(k, key);
    }
    return key;
  }

  async function handle(req: IncomingMessage): Promise<[number, unknown]> {
    const url = new URL(req.url ?? '/', 'http://workload');
    const version = url.searchParams.get('api-version');
    if (!version) throw new HttpError(400, 'BAD_PARAMETERS', 'api-version query parameter is required');
    if (!WORKLOAD_API_VERSIONS.includes(version)) throw new HttpError(400, 'BAD_PARAMETERS', `unsupported api-version ${version}`);
    const path = url.pathname;
    if (path === '/trust-bundle') {
      if (req.method !== 'GET') throw new HttpError(405, 'NOT_SUPPORTED', `${req.method} is not allowed on /trust-bundle`);
      return [200, { certificate: trustBundle() }];
    }
    const m = /^\/modules\/([^/]+)\/genid\/([^/]+)\/(sign|encrypt|decrypt)$/.exec(path);
    if (!m) throw new HttpError(404, 'ITEM_NOT_FOUND', `no such workload API path ${path}`);
    if (req.method !== 'POST') throw new HttpError(405, 'NOT_SUPPORTED', `${req.method} is not allowed on ${path}`);
    let moduleId: string, genid: string;
    try {
      moduleId = decodeURIComponent(m[1]!);
      genid = decodeURIComponent(m[2]!);
    } catch {
      throw new HttpError(400, 'BAD_PARAMETERS', 'malformed module or generation id in path');
    }
    const body = await readBody(req);
    const id = identity(moduleId, genid);
    switch (m[3]) {
      case 'sign': {
        const r = parse(signSchema, body, 'sign');
        return [200, { digest: hmacSign(id.key, Buffer.from(r.data, 'base64')).toString('base64') }];
      }
      case 'encrypt': {
        const r = parse(encryptSchema, body, 'encrypt');
        const ct = aeadEncrypt(moduleKey(moduleId, genid), Buffer.from(r.plaintext, 'base64'), Buffer.from(r.initializationVector, 'base64'));
        return [200, { ciphertext: ct.toString('base64') }];
      }
      default: {
        const r = parse(decryptSchema, body, 'decrypt');
        try {
          const pt = aeadDecrypt(moduleKey(moduleId, genid), Buffer.from(r.ciphertext, 'base64'), Buffer.from(r.initializationVector, 'base64'));
          return [200, { plaintext: pt.toString('base64') }];
        } catch (err) {
          throw new HttpError(400, 'SEAL_INTEGRITY', (err as Error).message);
        }
      }
    }
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    handle(req).then(
      ([status, body]) => send(res, status, body),
      (err: unknown) => {
        if (err instanceof HttpError) send(res, err.httpStatus, { message: err.message, code: err.code });
        else send(res, 500, { message: 'internal error', code: 'INTERNAL' });
      },
    );
  };
}

/** Starts the workload API; resolves once it listens. */
export async function startWorkloadApi(opts: WorkloadApiOptions): Promise<WorkloadApi> {
  const server = createServer(createWorkloadHandler(opts));
  server.keepAliveTimeout = 1000;
  const listen = opts.listen;
  let uri: string;
  if ('socketPath' in listen) {
    removeStaleSocket(listen.socketPath);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The socket is bound synchronously inside listen(): a umask around it means the socket
      // is never reachable by others, not even between bind and the chmod below.
      const previous = setUmask(0o177);
      try {
        server.listen(listen.socketPath, () => resolve());
      } finally {
        if (previous !== undefined) setUmask(previous);
      }
    });
    chmodSync(listen.socketPath, 0o600);
    uri = `unix://${listen.socketPath}`;
  } else {
    const host = listen.host ?? '127.0.0.1';
    if (!LOOPBACK.has(host)) throw new EnclaveEdgeError('BAD_PARAMETERS', `workload API listens on loopback only, not ${host}`);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, host, () => resolve());
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : listen.port;
    uri = `http://${host === '::1' ? '[::1]' : host === 'localhost' ? '127.0.0.1' : host}:${port}`;
  }
  return {
    uri,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          if ('socketPath' in listen) removeStaleSocket(listen.socketPath);
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

/** process.umask(mask), or undefined where it cannot be set (worker threads). */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
    else throw new EnclaveEdgeError('CONFLICT', `${path} exists and is not a socket; refusing to replace it`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
