/**
 * A small client of the workload API (over HTTP or a unix socket), for code that needs the
 * security manager's encrypt/decrypt/sign — e.g. the `workload` root of trust — and for tests.
 */
import { request } from 'node:http';
import { EnclaveEdgeError } from '@enclave-edge/errors';

export interface WorkloadClientOptions {
  /** IOTEDGE_WORKLOADURI: `http://127.0.0.1:PORT` or `unix:///path/workload.sock`. */
  uri: string;
  moduleId: string;
  generationId: string;
  apiVersion?: string;
}

export class WorkloadClient {
  private readonly target: { socketPath: string } | { host: string; port: number };
  private readonly base: string;
  private readonly apiVersion: string;

  constructor(opts: WorkloadClientOptions) {
    const u = new URL(opts.uri);
    if (u.protocol === 'unix:') this.target = { socketPath: u.pathname };
    else if (u.protocol === 'http:') this.target = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
    else throw new EnclaveEdgeError('BAD_PARAMETERS', `unsupported workload URI ${opts.uri} (expected http:// or unix://)`);
    this.base = `/modules/${encodeURIComponent(opts.moduleId)}/genid/${encodeURIComponent(opts.generationId)}`;
    this.apiVersion = opts.apiVersion ?? '2019-01-30';
  }

  /** From the environment edgeAgent gives a module (IOTEDGE_WORKLOADURI, _MODULEID, _MODULEGENERATIONID). */
  static fromEnvironment(env: Record<string, string | undefined> = process.env): WorkloadClient {
    const uri = env.IOTEDGE_WORKLOADURI;
    const moduleId = env.IOTEDGE_MODULEID;
    const generationId = env.IOTEDGE_MODULEGENERATIONID;
    if (!uri || !moduleId || !generationId) {
      throw new EnclaveEdgeError('CONFIG_INVALID', 'IOTEDGE_WORKLOADURI, IOTEDGE_MODULEID and IOTEDGE_MODULEGENERATIONID must be set');
    }
    return new WorkloadClient({ uri, moduleId, generationId });
  }

  async trustBundle(): Promise<string> {
    const r = (await this.call('GET', '/trust-bundle')) as { certificate?: unknown };
    if (typeof r.certificate !== 'string') throw new EnclaveEdgeError('BAD_FORMAT', 'trust bundle response has no certificate');
    return r.certificate;
  }

  async sign(data: Buffer): Promise<Buffer> {
    const r = (await this.call('POST', `${this.base}/sign`, { keyId: 'primary', algo: 'HMACSHA256', data: data.toString('base64') })) as { digest?: unknown };
    if (typeof r.digest !== 'string') throw new EnclaveEdgeError('BAD_FORMAT', 'sign response has no digest');
    return Buffer.from(r.digest, 'base64');
  }

  async encrypt(plaintext: Buffer, initializationVector: Buffer): Promise<Buffer> {
    const r = (await this.call('POST', `${this.base}/encrypt`, { plaintext: plaintext.toString('base64'), initializationVector: initializationVector.toString('base64') })) as { ciphertext?: unknown };
    if (typeof r.ciphertext !== 'string') throw new EnclaveEdgeError('BAD_FORMAT', 'encrypt response has no ciphertext');
    return Buffer.from(r.ciphertext, 'base64');
  }

  async decrypt(ciphertext: Buffer, initializationVector: Buffer): Promise<Buffer> {
    const r = (await this.call('POST', `${this.base}/decrypt`, { ciphertext: ciphertext.toString('base64'), initializationVector: initializationVector.toString('base64') })) as { plaintext?: unknown };
    if (typeof r.plaintext !== 'string') throw new EnclaveEdgeError('BAD_FORMAT', 'decrypt response has no plaintext');
    return Buffer.from(r.plaintext, 'base64');
  }

  private call(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          ...this.target,
          method,
          path: `${path}?api-version=${this.apiVersion}`,
          headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let json: unknown;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              reject(new EnclaveEdgeError('BAD_FORMAT', `workload API ${method} ${path}: response is not JSON (status ${res.statusCode})`));
              return;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(json);
            else {
              const msg = (json as { message?: unknown })?.message;
              const code = status === 404 ? 'ITEM_NOT_FOUND' : status === 400 && /decrypt/.test(path) ? 'SEAL_INTEGRITY' : status >= 500 ? 'UNAVAILABLE' : 'BAD_PARAMETERS';
              reject(new EnclaveEdgeError(code, `workload API ${method} ${path} failed (${status}): ${typeof msg === 'string' ? msg : 'no message'}`));
            }
          });
        },
      );
      req.on('error', (err) => reject(new EnclaveEdgeError('UNAVAILABLE', `workload API unreachable: ${err.message}`)));
      req.end(payload);
    });
  }
}
