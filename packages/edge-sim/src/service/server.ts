/**
 * The IoT Hub-shaped service API over HTTPS, plus the edgeHub endpoint modules use for
 * module-to-module methods (same route, module SAS + `x-ms-edge-moduleId`).
 *
 *   POST  /twins/{d}/modules/{m}/methods        invoke a direct method  (hub or module SAS)
 *   GET   /twins/{d}/modules/{m}                module twin             (hub SAS)
 *   PATCH /twins/{d}/modules/{m}                desired/tags patch      (hub SAS)
 *   POST  /devices/{d}/applyConfigurationContent redeploy               (hub SAS)
 *   GET   /devices[/{d}[/modules[/{m}]]]       identities                (hub SAS)
 *   GET/PATCH /twins/{d}                        device twin (If-Match)    (hub SAS)
 *   POST  /devices/query                        twin query                (hub SAS)
 *   PUT/GET/DELETE /configurations[/{id}]       deployments at scale, targetCondition on the device twin
 *   GET   /edge-sim/upstream                    NDJSON stream of $upstream messages (simulator only)
 *   GET   /edge-sim/status                      modules and connections (simulator only)
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { z } from 'zod';
import { toEnclaveEdgeError } from '@enclave-edge/errors';
import { VerifiedSasCache } from '../sas.js';
import { HubError } from '../hub/hub-error.js';
import { listenError } from '../listen-error.js';
import { privilegedPortAdvice } from '../port-advice.js';
import { BLOB_PATH_PREFIX } from '../agent/blob-target.js';
import type { UpstreamMessage } from '../hub/edge-hub.js';
import { upstreamJson } from '../upstream-json.js';
import { MethodRequestSchema, TwinPatchSchema, ConfigurationContentSchema, ConfigurationSchema, QuerySchema, describeZodError } from './schemas.js';

export interface ServiceBackend {
  hubHostName: string;
  deviceId: string;
  hubKey: string;
  moduleKey(moduleId: string): string | undefined;
  knownModule(moduleId: string): boolean;
  invokeMethod(moduleId: string, methodName: string, payload: unknown, responseTimeoutSecs: number, connectTimeoutSecs: number): Promise<{ status: number; payload: unknown }>;
  getTwin(moduleId: string): unknown;
  patchTwin(moduleId: string, patch: { desired?: Record<string, unknown>; tags?: Record<string, unknown> }): unknown;
  applyConfiguration(content: { modulesContent: Record<string, unknown> }): Promise<void>;
  onUpstream(listener: (m: UpstreamMessage) => void): () => void;
  status(): unknown;
  /** Absent: the registry routes answer 404 (a service API without a device registry behind it). */
  registry?: RegistryApi;
}

/** The registry calls of the service API (the simulated device, its modules, twins, queries, configurations). */
export interface RegistryApi {
  device(): unknown;
  modules(): unknown[];
  module(moduleId: string): unknown;
  deviceTwin(): unknown;
  patchDeviceTwin(patch: { desired?: Record<string, unknown>; tags?: Record<string, unknown> }, ifMatch: string | undefined): Promise<unknown>;
  checkModuleEtag(moduleId: string, ifMatch: string | undefined): void;
  query(sql: string, page: { maxItemCount?: string; continuation?: string }): { items: unknown[]; continuation?: string };
  putConfiguration(id: string, body: Record<string, unknown>, ifMatch: string | undefined): Promise<unknown>;
  getConfiguration(id: string): unknown;
  listConfigurations(): unknown[];
  removeConfiguration(id: string, ifMatch: string | undefined): Promise<void>;
}

export interface ServiceApiOptions {
  tls: { key: string; cert: string };
  port?: number;
  /** When `port` is taken (or not allowed, e.g. 443 without root), listen on a free port instead. */
  portFallback?: boolean;
  host?: string;
  log?: (line: string) => void;
  /** Bytes one `/edge-sim/upstream` reader may leave unread before its messages are dropped (default 8 MiB). */
  upstreamBufferBytes?: number;
  /**
   * WebSocket endpoints on the same port, by path and then by subprotocol (IoT Hub serves MQTT and
   * AMQP on `/$iothub/websocket`, told apart by the subprotocol the client offers): what gets the byte stream.
   */
  webSockets?: Record<string, Record<string, WebSocketHandler>>;
  /** The local blob target under `/edge-sim/blob/` (its own SAS in the URL, not the hub's). */
  blobTarget?: { handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> };
}

type WebSocketHandler = (stream: Duplex, req: IncomingMessage) => void;

const MAX_BODY = 256 * 1024;
export const DEFAULT_UPSTREAM_BUFFER_BYTES = 8 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

type Caller = { kind: 'hub' } | { kind: 'module'; moduleId: string };

export async function startServiceApi(backend: ServiceBackend, opts: ServiceApiOptions): Promise<{ port: number; close(): Promise<void> }> {
  const streams = new Set<ServerResponse>();
  const upstreamBound = opts.upstreamBufferBytes ?? DEFAULT_UPSTREAM_BUFFER_BYTES;
  if (!Number.isInteger(upstreamBound) || upstreamBound < 1) throw new RangeError(`upstreamBufferBytes must be a positive integer (got ${upstreamBound})`);
  let upstreamDropped = 0;
  const sasCache = new VerifiedSasCache();
  const server = https.createServer({ key: opts.tls.key, cert: opts.tls.cert, noDelay: true }, (req, res) => {
    handle(req, res).catch((err) => sendError(res, err));
  });
  server.on('tlsClientError', () => {});
  server.keepAliveTimeout = 30_000;
  // Paths and subprotocols come from the client: looked up in Maps only.
  const endpoints = new Map(Object.entries(opts.webSockets ?? {}).map(([path, byProtocol]) => [path, new Map(Object.entries(byProtocol))]));
  const endpointFor = (req: IncomingMessage): Map<string, WebSocketHandler> | undefined => endpoints.get(new URL(req.url ?? '/', 'https://sim').pathname);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024 * 1024,
    handleProtocols: (offered, req) => {
      const served = endpointFor(req);
      for (const p of offered) if (served?.has(p)) return p;
      return false;
    },
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const endpoint = endpointFor(req);
    if (!endpoint) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    // Authentication happens inside the protocol (MQTT CONNECT, AMQP CBS), as on IoT Hub.
    wss.handleUpgrade(req, socket, head, (ws) => {
      const handle = endpoint.get(ws.protocol);
      if (!handle) {
        ws.close(1002, 'unsupported subprotocol');
        return;
      }
      const stream = createWebSocketStream(ws);
      stream.on('error', () => ws.terminate());
      handle(stream, req);
    });
  });

  function authenticate(req: IncomingMessage): Caller {
    const auth = req.headers.authorization;
    const edgeModule = req.headers['x-ms-edge-moduleid'];
    if (typeof edgeModule === 'string') {
      const [d, m] = edgeModule.split('/');
      const key = m ? backend.moduleKey(m) : undefined;
      if (d !== backend.deviceId || !m || !key) throw new HttpError(401, 401002, `unknown module identity ${edgeModule}`);
      const resource = `${backend.hubHostName}/devices/${d}/modules/${m}`.toLowerCase();
      const check = sasCache.verify(auth, key, (r) => r.toLowerCase() === resource);
      if (!check.ok) throw new HttpError(401, 401002, `unauthorized: ${check.reason}`);
      return { kind: 'module', moduleId: m };
    }
    // The token's resource is the hub name, or the host the client dialled (`localhost:PORT`);
    // `:443` may or may not be spelled out on either side.
    const norm = (h: string): string => h.toLowerCase().replace(/:443$/, '');
    const host = norm(String(req.headers.host ?? ''));
    const hub = norm(backend.hubHostName);
    const check = sasCache.verify(auth, backend.hubKey, (r) => {
      const head = r.toLowerCase().split('/')[0]!;
      return [hub, host].some((h) => h && norm(head) === h);
    });
    if (!check.ok) throw new HttpError(401, 401002, `unauthorized: ${auth ? check.reason : 'missing Authorization header'}`);
    if (check.token.skn !== 'iothubowner') throw new HttpError(401, 401002, 'unauthorized: the simulator accepts policy iothubowner only');
    return { kind: 'hub' };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://sim');
    if (opts.blobTarget && url.pathname.startsWith(BLOB_PATH_PREFIX)) return opts.blobTarget.handle(req, res, url);
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const caller = authenticate(req);
    const method = req.method ?? 'GET';
    const hubOnly = (): void => {
      if (caller.kind !== 'hub') throw new HttpError(401, 401002, 'unauthorized: module credentials may only invoke methods');
    };
    // Module credentials reach the methods route only, whatever else this server serves.
    const isMethodCall = parts[0] === 'twins' && parts[2] === 'modules' && parts.length === 5 && parts[4] === 'methods' && method === 'POST';
    if (!isMethodCall) hubOnly();
    const device = (d: string | undefined): void => {
      if (d !== backend.deviceId) throw new HttpError(404, 404001, `Device ${d} not found (the simulator runs device ${backend.deviceId}).`);
    };
    const mod = (m: string | undefined): string => {
      if (!m || !backend.knownModule(m)) throw new HttpError(404, 404010, `Module ${m} not found on device ${backend.deviceId}.`);
      return m;
    };

    // /twins/{d}/modules/{m}/methods
    if (parts[0] === 'twins' && parts[2] === 'modules' && parts.length === 5 && parts[4] === 'methods' && method === 'POST') {
      device(parts[1]);
      const body = parse(MethodRequestSchema, await readJson(req));
      const target = parts[3]!;
      const timeout = body.responseTimeoutInSeconds ?? 30;
      const t0 = Date.now();
      const result = await backend.invokeMethod(target, body.methodName, body.payload ?? null, timeout, body.connectTimeoutInSeconds ?? 0);
      if (caller.kind === 'module') opts.log?.(`${caller.moduleId} invoked ${target}.${body.methodName} (${Date.now() - t0} ms)`);
      return sendJson(res, 200, result);
    }
    const ifMatch = typeof req.headers['if-match'] === 'string' ? req.headers['if-match'] : undefined;
    const reg = backend.registry;
    if (parts[0] === 'twins' && parts[2] === 'modules' && parts.length === 4) {
      hubOnly();
      device(parts[1]);
      const m = mod(parts[3]);
      if (method === 'GET') return sendJson(res, 200, backend.getTwin(m));
      if (method === 'PATCH') {
        const body = parse(TwinPatchSchema, await readJson(req));
        reg?.checkModuleEtag(m, ifMatch);
        return sendJson(res, 200, backend.patchTwin(m, { ...(body.properties?.desired ? { desired: body.properties.desired } : {}), ...(body.tags ? { tags: body.tags } : {}) }));
      }
    }
    if (reg && parts[0] === 'twins' && parts.length === 2) {
      hubOnly();
      device(parts[1]);
      if (method === 'GET') return sendJson(res, 200, reg.deviceTwin());
      if (method === 'PATCH') {
        const body = parse(TwinPatchSchema, await readJson(req));
        return sendJson(res, 200, await reg.patchDeviceTwin({ ...(body.properties?.desired ? { desired: body.properties.desired } : {}), ...(body.tags ? { tags: body.tags } : {}) }, ifMatch));
      }
    }
    if (reg && parts[0] === 'devices' && parts[1] === 'query' && parts.length === 2 && method === 'POST') {
      hubOnly();
      const body = parse(QuerySchema, await readJson(req));
      const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
      const maxItemCount = header('x-ms-max-item-count');
      const continuation = header('x-ms-continuation');
      const page = reg.query(body.query, { ...(maxItemCount !== undefined ? { maxItemCount } : {}), ...(continuation !== undefined ? { continuation } : {}) });
      return sendJson(res, 200, page.items, page.continuation !== undefined ? { 'x-ms-continuation': page.continuation } : {});
    }
    if (reg && parts[0] === 'devices' && method === 'GET') {
      hubOnly();
      if (parts.length === 1) return sendJson(res, 200, [reg.device()]);
      device(parts[1]);
      if (parts.length === 2) return sendJson(res, 200, reg.device());
      if (parts[2] === 'modules' && parts.length === 3) return sendJson(res, 200, reg.modules());
      if (parts[2] === 'modules' && parts.length === 4) return sendJson(res, 200, reg.module(mod(parts[3])));
    }
    if (parts[0] === 'devices' && parts[2] === 'applyConfigurationContent' && parts.length === 3 && method === 'POST') {
      hubOnly();
      device(parts[1]);
      const body = parse(ConfigurationContentSchema, await readJson(req));
      await backend.applyConfiguration(body);
      res.writeHead(204).end();
      return;
    }
    if (reg && parts[0] === 'configurations') {
      hubOnly();
      if (parts.length === 1 && method === 'GET') return sendJson(res, 200, reg.listConfigurations());
      if (parts.length === 2 && method === 'GET') return sendJson(res, 200, reg.getConfiguration(parts[1]!));
      if (parts.length === 2 && method === 'PUT') {
        const body = parse(ConfigurationSchema, await readJson(req));
        return sendJson(res, 200, await reg.putConfiguration(parts[1]!, body as Record<string, unknown>, ifMatch));
      }
      if (parts.length === 2 && method === 'DELETE') {
        await reg.removeConfiguration(parts[1]!, ifMatch);
        res.writeHead(204).end();
        return;
      }
    }
    if (parts[0] === 'edge-sim' && parts[1] === 'upstream' && method === 'GET') {
      hubOnly();
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
      res.flushHeaders();
      streams.add(res);
      const off = backend.onUpstream(slowReaderGuard(res));
      res.on('close', () => {
        off();
        streams.delete(res);
      });
      return;
    }
    if (parts[0] === 'edge-sim' && parts[1] === 'status' && method === 'GET') {
      hubOnly();
      const status = backend.status() as Record<string, unknown>;
      return sendJson(res, 200, { ...status, upstream: { readers: streams.size, dropped: upstreamDropped, bufferBytes: upstreamBound } });
    }
    throw new HttpError(404, 404000, `no such resource: ${method} ${url.pathname}`);
  }

  /**
   * Writes upstream messages to one reader without buffering without bound: past `upstreamBound`
   * unread bytes its messages are dropped and counted; once it catches up it first gets a
   * `{"dropped":N}` line, then messages again.
   */
  function slowReaderGuard(res: ServerResponse): (m: UpstreamMessage) => void {
    let pending = 0;
    let waiting = false;
    const notice = (): void => {
      if (pending === 0) return;
      res.write(JSON.stringify({ dropped: pending }) + '\n');
      pending = 0;
    };
    return (m) => {
      if (res.destroyed || res.writableEnded) return;
      if (res.writableLength > upstreamBound) {
        if (pending === 0) opts.log?.(`warning: an upstream reader is not keeping up (${res.writableLength} bytes unread > ${upstreamBound}); dropping messages for it`);
        pending++;
        upstreamDropped++;
        if (!waiting) {
          waiting = true;
          res.once('drain', () => {
            waiting = false;
            if (res.writableLength <= upstreamBound) notice();
          });
        }
        return;
      }
      notice();
      res.write(JSON.stringify(upstreamJson(m)) + '\n');
    };
  }

  function sendError(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HubError) return sendJson(res, err.httpStatus, err.body());
    if (err instanceof HttpError) return sendJson(res, err.status, new HubError(err.status, err.errorCode, err.message, 'BAD_PARAMETERS').body());
    const e = toEnclaveEdgeError(err);
    opts.log?.(`service API error: ${e.code}: ${e.message}`);
    sendJson(res, e.status, { ...new HubError(e.status, e.status * 1000, e.message, e.code).body(), code: e.code });
  }

  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen(opts.port ?? 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!opts.portFallback || (code !== 'EADDRINUSE' && code !== 'EACCES')) throw listenError(err, 'https', opts.port ?? 0);
    await listen(0);
    const port = (server.address() as AddressInfo).port;
    const clients =
      'The azure-iothub service SDK, ModuleClient.invokeMethod (module-to-module), modules over MQTT over WebSockets (MqttWs) and AMQP over WebSockets (AmqpWs), and the Event Hub-compatible endpoint over WebSockets (@azure/event-hubs with webSocketOptions)';
    const workaround = `@azure/event-hubs alone can be told this port: pass customEndpointAddress: 'https://<host>:${port}' (serviceUrl in sim credentials --json).`;
    opts.log?.(`warning: HTTPS ${privilegedPortAdvice(opts.port ?? 443, code, opts.host ?? '127.0.0.1', port, clients, workaround)}`);
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        for (const c of wss.clients) c.terminate();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parse<T extends z.ZodTypeAny>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new HttpError(400, 400004, `malformed body: ${describeZodError(r.error)}`);
  return r.data;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 413001, `body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) throw new HttpError(400, 400004, 'malformed body: empty; a JSON object is required');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 400004, `malformed body: not JSON (${(err as Error).message})`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}
