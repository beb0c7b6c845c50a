/** The two IoT Edge workload API calls the `workload` root of trust needs: encrypt and decrypt. */
import { request } from 'node:http';
import { EnclaveEdgeError } from '@enclave-edge/errors';

export const WORKLOAD_API_VERSION = '2019-01-30';

export interface WorkloadTarget {
  /** IOTEDGE_WORKLOADURI: `http://host:port/` or `unix:///path/to/workload.sock`. */
  uri: string;
  moduleId: string;
  generationId: string;
}

function endpoint(uri: string): { socketPath?: string; host?: string; port?: number; base: string } {
  if (uri.startsWith('unix://')) return { socketPath: uri.slice('unix://'.length), base: '' };
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new EnclaveEdgeError('CONFIG_INVALID', `IOTEDGE_WORKLOADURI "${uri}" is not a URL`);
  }
  if (u.protocol !== 'http:') throw new EnclaveEdgeError('CONFIG_INVALID', `IOTEDGE_WORKLOADURI must be http:// or unix://, got ${u.protocol}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80), base: u.pathname.replace(/\/$/, '') };
}

async function post(t: WorkloadTarget, op: 'encrypt' | 'decrypt', body: unknown): Promise<Record<string, unknown>> {
  const ep = endpoint(t.uri);
  const path = `${ep.base}/modules/${encodeURIComponent(t.moduleId)}/genid/${encodeURIComponent(t.generationId)}/${op}?api-version=${WORKLOAD_API_VERSION}`;
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'content-length': payload.length, host: 'localhost' },
        timeout: 10_000,
        ...(ep.socketPath ? { socketPath: ep.socketPath } : { host: ep.host, port: ep.port }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = text ? JSON.parse(text) : {};
          } catch { /* reported below */ }
          if (res.statusCode !== 200) {
            const msg = typeof json.message === 'string' ? json.message : `HTTP ${res.statusCode}`;
            const code = op === 'decrypt' && res.statusCode === 400 ? 'SEAL_INTEGRITY' : res.statusCode === 404 ? 'ITEM_NOT_FOUND' : 'UNAVAILABLE';
            reject(new EnclaveEdgeError(code, `workload API ${op} failed: ${msg}`));
          } else resolve(json);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new EnclaveEdgeError('TIMEOUT', `workload API ${op} timed out`)));
    req.on('error', (err) =>
      reject(err instanceof EnclaveEdgeError ? err : new EnclaveEdgeError('UNAVAILABLE', `workload API at ${t.uri} unreachable: ${(err as NodeJS.ErrnoException).code ?? err.message}`)),
    );
    req.end(payload);
  });
}

export async function workloadEncrypt(t: WorkloadTarget, plaintext: Uint8Array, iv: Uint8Array): Promise<Uint8Array> {
  const r = await post(t, 'encrypt', { plaintext: Buffer.from(plaintext).toString('base64'), initializationVector: Buffer.from(iv).toString('base64') });
  if (typeof r.ciphertext !== 'string') throw new EnclaveEdgeError('BAD_FORMAT', 'workload API encrypt returned no ciphertext');
  return new Uint8Array(Buffer.from(r.ciphertext, 'base64'));
}

export async function workloadDecrypt(t: WorkloadTarget, ciphertext: Uint8Array, iv: Uint8Array): Promise<Uint8Array> {
  const r = await post(t, 'decrypt', { ciphertext: Buffer.from(ciphertext).toString('base64'), initializationVector: Buffer.from(iv).toString('base64') });
  if (typeof r.plaintext !== 'string') throw new EnclaveEdgeError('BAD_FORMAT', 'workload API decrypt returned no plaintext');
  return new Uint8Array(Buffer.from(r.plaintext, 'base64'));
}
