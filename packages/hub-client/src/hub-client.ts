/**
 * IoT Hub service REST client. One code path for a real hub and for the simulator's service
 * API: only the base URL, the CA and the credential differ.
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import type { TokenCredential } from '@azure/identity';
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import { parseServiceConnectionString } from './connection-string.js';
import { serviceSas } from './sas.js';
import { hubErrorFromResponse } from './errors.js';

export const API_VERSION = '2021-04-12';
const IOT_HUB_SCOPE = 'https://iothubs.azure.net/.default';

export interface MethodParams {
  methodName: string;
  payload?: unknown;
  responseTimeoutInSeconds?: number;
  connectTimeoutInSeconds?: number;
}

export interface MethodResult {
  status: number;
  payload: unknown;
}

export interface ConfigurationContent {
  modulesContent: Record<string, unknown>;
}

export interface Configuration {
  targetCondition: string;
  priority: number;
  content: ConfigurationContent;
  labels?: Record<string, string>;
}

/** One `$upstream` message from the simulator's stream. */
export interface UpstreamEvent {
  deviceId: string;
  moduleId: string;
  output?: string;
  enqueuedTimeUtc: string;
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
  /** Parsed JSON when the content type says JSON, text otherwise, base64 when `bodyEncoding` says so. */
  body: unknown;
  bodyEncoding?: 'base64';
}

export interface HubClientOptions {
  /** PEM of an extra CA to trust (the simulator's `.edge-sim/ca.pem`). */
  ca?: string;
}

type AuthHeader = () => Promise<string>;

export class HubClient {
  private readonly agent: https.Agent;
  private readonly host: string;
  private readonly port: number;

  private constructor(
    readonly hostName: string,
    private readonly auth: AuthHeader,
    opts: HubClientOptions,
    readonly isSimulator: boolean,
  ) {
    const [host, port] = hostName.split(':');
    this.host = host!;
    this.port = port ? Number(port) : 443;
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 64, ...(opts.ca ? { ca: opts.ca } : {}) });
  }

  /** From an IoT Hub policy connection string (e.g. iothubowner); `HostName` may carry a port (simulator). */
  static fromConnectionString(cs: string, opts: HubClientOptions = {}): HubClient {
    const p = parseServiceConnectionString(cs);
    // One token per hour, renewed 5 minutes before it expires (the HMAC is not redone per call).
    let cached: { token: string; renewAt: number } | undefined;
    const auth: AuthHeader = async () => {
      const now = Date.now();
      if (!cached || now >= cached.renewAt) cached = { token: serviceSas(p.hostName, p.sharedAccessKeyName, p.sharedAccessKey, 3600), renewAt: now + 55 * 60_000 };
      return cached.token;
    };
    return new HubClient(p.hostName, auth, opts, !isAzureHubHost(p.hostName));
  }

  /**
   * Microsoft Entra ID bearer tokens for `<hub>.azure-devices.net` (a bare hub name gets the
   * suffix). Default credential: DefaultAzureCredential (az login, managed identity, env vars).
   */
  static async fromAzureCredential(hubHostName: string, credential?: TokenCredential, opts: HubClientOptions = {}): Promise<HubClient> {
    const host = hubHostName.includes('.') ? hubHostName : `${hubHostName}.azure-devices.net`;
    let cred = credential;
    if (!cred) {
      const { DefaultAzureCredential } = await import('@azure/identity');
      cred = new DefaultAzureCredential();
    }
    const c = cred;
    const auth: AuthHeader = async () => {
      try {
        const token = await c.getToken(IOT_HUB_SCOPE);
        if (!token) throw new Error('no token returned');
        return `Bearer ${token.token}`;
      } catch (err) {
        throw new EnclaveEdgeError('ACCESS_DENIED', `cannot get an Azure token for ${host}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
    };
    return new HubClient(host, auth, opts, false);
  }

  close(): void {
    this.agent.destroy();
  }

  async invokeModuleMethod(deviceId: string, moduleId: string, params: MethodParams): Promise<MethodResult> {
    if (!params.methodName) throw new EnclaveEdgeError('BAD_PARAMETERS', 'methodName is required');
    const responseTimeoutInSeconds = params.responseTimeoutInSeconds ?? 30;
    const connectTimeoutInSeconds = params.connectTimeoutInSeconds ?? 0;
    const body = { methodName: params.methodName, payload: params.payload ?? null, responseTimeoutInSeconds, connectTimeoutInSeconds };
    const r = (await this.request('POST', `/twins/${enc(deviceId)}/modules/${enc(moduleId)}/methods`, body, {
      what: `invoke ${deviceId}/${moduleId} ${params.methodName}`,
      timeoutMs: (responseTimeoutInSeconds + connectTimeoutInSeconds + 10) * 1000,
    })) as { status?: unknown; payload?: unknown };
    if (typeof r?.status !== 'number') throw new EnclaveEdgeError('BAD_FORMAT', 'method response lacks a numeric status');
    return { status: r.status, payload: r.payload ?? null };
  }

  async getModuleTwin(deviceId: string, moduleId: string): Promise<Record<string, unknown>> {
    return (await this.request('GET', `/twins/${enc(deviceId)}/modules/${enc(moduleId)}`, undefined, { what: `get twin of ${deviceId}/${moduleId}` })) as Record<string, unknown>;
  }

  /** PATCH a module twin: `{properties: {desired: {…}}}` and/or `{tags: {…}}` (null removes a key). */
  async updateModuleTwin(deviceId: string, moduleId: string, patch: Record<string, unknown>): Promise<Record<string, unknown>> {
    return (await this.request('PATCH', `/twins/${enc(deviceId)}/modules/${enc(moduleId)}`, patch, {
      what: `patch twin of ${deviceId}/${moduleId}`,
      headers: { 'if-match': '*' },
    })) as Record<string, unknown>;
  }

  /** Deploy to one device (what `az iot edge set-modules` does). */
  async applyConfigurationContent(deviceId: string, content: ConfigurationContent): Promise<void> {
    await this.request('POST', `/devices/${enc(deviceId)}/applyConfigurationContent`, content, { what: `apply configuration to ${deviceId}` });
  }

  /** A fleet (automatic) deployment: every device matching `targetCondition`. */
  async createOrUpdateConfiguration(id: string, config: Configuration): Promise<Record<string, unknown>> {
    return (await this.request('PUT', `/configurations/${enc(id)}`, { id, schemaVersion: '1.0', labels: {}, ...config }, {
      what: `create or update configuration ${id}`,
      headers: { 'if-match': '*' },
    })) as Record<string, unknown>;
  }

  /**
   * Live `$upstream` messages. Simulator only: a real IoT Hub delivers device-to-cloud messages
   * through its Event Hubs-compatible endpoint (use `az iot hub monitor-events` or an Event Hubs client).
   * A reader that falls too far behind loses messages: the simulator then sends `{"dropped":N}`,
   * passed to `onDropped` (never yielded as a message).
   */
  async *streamUpstream(opts: { signal?: AbortSignal; onDropped?: (count: number) => void } = {}): AsyncGenerator<UpstreamEvent> {
    if (!this.isSimulator) {
      throw new EnclaveEdgeError('NOT_SUPPORTED', 'a real IoT Hub has no upstream stream on its service API; read its Event Hubs-compatible endpoint (e.g. az iot hub monitor-events)');
    }
    const res = await this.open('GET', '/edge-sim/upstream', undefined, { what: 'stream upstream messages', accept: 'application/x-ndjson', ...(opts.signal ? { signal: opts.signal } : {}) });
    if (res.statusCode !== 200) throw hubErrorFromResponse(res.statusCode ?? 0, await readAll(res), 'stream upstream messages');
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line.trim()) continue;
        const e = JSON.parse(line) as UpstreamEvent | { dropped: number };
        if ('dropped' in e && !('moduleId' in e)) opts.onDropped?.(e.dropped);
        else yield e as UpstreamEvent;
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw toEnclaveEdgeError(err, 'UNAVAILABLE');
    } finally {
      lines.close();
      res.destroy();
    }
  }

  /** Simulator status (modules, connections); simulator only. */
  async simulatorStatus(): Promise<Record<string, unknown>> {
    return (await this.request('GET', '/edge-sim/status', undefined, { what: 'simulator status' })) as Record<string, unknown>;
  }

  private async open(
    method: string,
    path: string,
    body: unknown,
    o: { what: string; timeoutMs?: number; headers?: Record<string, string>; accept?: string; signal?: AbortSignal },
  ): Promise<IncomingMessage> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const authorization = await this.auth();
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request(
        {
          host: this.host,
          port: this.port,
          method,
          path: `${path}?api-version=${API_VERSION}`,
          agent: this.agent,
          headers: {
            authorization,
            accept: o.accept ?? 'application/json',
            ...(data ? { 'content-type': 'application/json; charset=utf-8', 'content-length': data.length } : {}),
            ...o.headers,
          },
          ...(o.signal ? { signal: o.signal } : {}),
        },
        resolve,
      );
      req.on('error', (err) => {
        const e = err as NodeJS.ErrnoException;
        const reason = e.code === 'ECONNREFUSED' ? `nothing listens on ${this.hostName} (is the simulator running?)` : e.message;
        reject(new EnclaveEdgeError(e.name === 'AbortError' ? 'TIMEOUT' : 'UNAVAILABLE', `${o.what}: ${reason}`, { cause: err }));
      });
      if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${o.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.end(data);
    });
  }

  private async request(method: string, path: string, body: unknown, o: { what: string; timeoutMs?: number; headers?: Record<string, string> }): Promise<unknown> {
    const res = await this.open(method, path, body, { timeoutMs: 60_000, ...o });
    const text = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw hubErrorFromResponse(status, text, o.what);
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new EnclaveEdgeError('BAD_FORMAT', `${o.what}: response is not JSON`);
    }
  }
}

/** Public-cloud and sovereign IoT Hub host names; anything else is taken to be the simulator. */
function isAzureHubHost(host: string): boolean {
  return /\.azure-devices(-int)?\.(net|cn|us|de)(:\d+)?$/i.test(host);
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
