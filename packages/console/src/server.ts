/**
 * The console's HTTP server: one page and a small JSON/SSE API over the IoT Hub service API
 * (the simulator's, or a real hub's), on 127.0.0.1 only.
 *
 * Who may use it: whoever holds the URL's random token. `GET /?token=…` trades it for an
 * HttpOnly, SameSite=Strict cookie and drops it from the address bar; every other request needs
 * that cookie. The Host header must name this listener (no DNS rebinding), and requests that
 * change anything must come from this origin with a JSON body (no cross-site form posts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnclaveEdgeError, statusOf, toEnclaveEdgeError } from '@enclave-edge/errors';
import type { HubClient, UpstreamEvent } from '@enclave-edge/hub-client';
import { validateDesiredPatch } from './twin-patch.js';
import { attestAndVerify, type AttestRequest } from './attest.js';

export interface ConsoleOptions {
  client: HubClient;
  deviceId: string;
  /** Simulator status (modules, processes) is available only against the simulator. */
  simulator: boolean;
  /** 0 for a free port. */
  port?: number;
  /** Fixed token (tests); default 32 random bytes. */
  token?: string;
}

export interface ConsoleHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

const COOKIE = 'ee_console';
const MAX_BODY = 64 * 1024;
const UPSTREAM_KEEP = 500;
const here = dirname(fileURLToPath(import.meta.url));
const publicDir = join(here, '..', 'public');
const req = createRequire(import.meta.url);

/** A dependency's folder, found as Node would (some packages do not export their package.json). */
function packageDir(name: string): string {
  for (const base of req.resolve.paths(name) ?? []) if (existsSync(join(base, name, 'package.json'))) return join(base, name);
  throw new Error(`console asset package ${name} is not installed`);
}

/** The page's files and the vendored front-end libraries, read once: the console serves nothing else. */
function assets(): Map<string, { type: string; body: Buffer }> {
  const pkg = (name: string, rel: string) => join(packageDir(name), rel);
  const files: Array<[string, string, string]> = [
    ['/', join(publicDir, 'index.html'), 'text/html; charset=utf-8'],
    ['/app.js', join(publicDir, 'app.js'), 'text/javascript; charset=utf-8'],
    ['/style.css', join(publicDir, 'style.css'), 'text/css; charset=utf-8'],
    ['/vendor/preact.js', pkg('preact', 'dist/preact.module.js'), 'text/javascript; charset=utf-8'],
    ['/vendor/preact-hooks.js', pkg('preact', 'hooks/dist/hooks.module.js'), 'text/javascript; charset=utf-8'],
    ['/vendor/htm.js', pkg('htm', 'dist/htm.module.js'), 'text/javascript; charset=utf-8'],
    ['/vendor/uplot.js', pkg('uplot', 'dist/uPlot.esm.js'), 'text/javascript; charset=utf-8'],
    ['/vendor/uplot.css', pkg('uplot', 'dist/uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  return new Map(files.map(([path, file, type]) => [path, { type, body: readFileSync(file) }]));
}

/** The inline import map's hash, so the Content-Security-Policy allows exactly it and no other inline script. */
function importMapHash(html: string): string {
  const m = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('console index.html has no import map');
  return `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

async function readJson(r: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/.test(r.headers['content-type'] ?? '')) throw new EnclaveEdgeError('BAD_PARAMETERS', 'send a JSON body (Content-Type: application/json)');
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of r) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'the request body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = toEnclaveEdgeError(err);
  send(res, statusOf(e.code), { error: { code: e.code, message: e.message } });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function startConsole(opts: ConsoleOptions): Promise<ConsoleHandle> {
  const token = opts.token ?? randomBytes(32).toString('base64url');
  const files = assets();
  const csp = `default-src 'none'; script-src 'self' ${importMapHash(files.get('/')!.body.toString('utf8'))}; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  const upstream: UpstreamEvent[] = [];
  const streams = new Set<ServerResponse>();
  const ac = new AbortController();
  let port = 0;

  // One reader of $upstream for every open page: the last events are kept for a page that opens later.
  void (async () => {
    try {
      for await (const e of opts.client.streamUpstream({ signal: ac.signal })) {
        upstream.push(e);
        if (upstream.length > UPSTREAM_KEEP) upstream.splice(0, upstream.length - UPSTREAM_KEEP);
        const frame = `event: upstream\ndata: ${JSON.stringify(e)}\n\n`;
        for (const s of streams) s.write(frame);
      }
    } catch (err) {
      if (!ac.signal.aborted) for (const s of streams) s.write(`event: problem\ndata: ${JSON.stringify({ message: `telemetry stream ended: ${(err as Error).message}` })}\n\n`);
    }
  })();

  async function overview(): Promise<Record<string, unknown>> {
    const [runtime, status] = await Promise.all([
      opts.client.getModuleTwin(opts.deviceId, 'ta-runtime').catch(() => undefined),
      opts.simulator ? opts.client.simulatorStatus().catch(() => undefined) : Promise.resolve(undefined),
    ]);
    const reported = (runtime?.properties as { reported?: { tas?: unknown; runtime?: unknown } } | undefined)?.reported;
    return { deviceId: opts.deviceId, simulator: opts.simulator, modules: (status as { modules?: unknown } | undefined)?.modules ?? [], tas: reported?.tas ?? {}, runtime: reported?.runtime ?? null };
  }

  async function api(method: string, path: string, r: IncomingMessage, res: ServerResponse): Promise<void> {
    if (method === 'GET' && path === '/api/overview') return send(res, 200, await overview());
    if (method === 'GET' && path === '/api/upstream') return send(res, 200, upstream);
    if (method === 'GET' && path === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(': connected\n\n');
      streams.add(res);
      r.on('close', () => streams.delete(res));
      return;
    }
    const twin = /^\/api\/twin\/([A-Za-z0-9_$.-]{1,128})$/.exec(path);
    if (twin && method === 'GET') return send(res, 200, await opts.client.getModuleTwin(opts.deviceId, twin[1]!));
    if (method === 'GET') throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no such console resource: ${path}`);

    // Everything below changes something: this origin only, JSON only.
    const origin = r.headers.origin;
    if (origin !== `http://127.0.0.1:${port}`) throw new EnclaveEdgeError('ACCESS_DENIED', 'requests that change anything must come from the console page itself');
    const body = await readJson(r);
    if (twin && method === 'PATCH') {
      const current = await opts.client.getModuleTwin(opts.deviceId, twin[1]!);
      const patch = validateDesiredPatch(twin[1]!, (current.properties as { desired?: unknown } | undefined)?.desired, body);
      return send(res, 200, await opts.client.updateModuleTwin(opts.deviceId, twin[1]!, { properties: { desired: patch } }));
    }
    if (method === 'POST' && path === '/api/invoke') {
      if (!isObject(body) || typeof body.module !== 'string' || typeof body.method !== 'string') throw new EnclaveEdgeError('BAD_PARAMETERS', 'invoke needs {module, method, payload}');
      const timeout = typeof body.timeoutSec === 'number' && body.timeoutSec > 0 && body.timeoutSec <= 300 ? body.timeoutSec : 30;
      return send(res, 200, await opts.client.invokeModuleMethod(opts.deviceId, body.module, { methodName: body.method, payload: body.payload ?? null, responseTimeoutInSeconds: timeout }));
    }
    if (method === 'POST' && path === '/api/attest') return send(res, 200, await attestAndVerify(opts.client, opts.deviceId, body as AttestRequest));
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no such console resource: ${method} ${path}`);
  }

  const server: Server = createServer((r, res) => {
    void (async () => {
      try {
        if (r.headers.host !== `127.0.0.1:${port}` && r.headers.host !== `localhost:${port}`) throw new EnclaveEdgeError('ACCESS_DENIED', 'unexpected Host header');
        const url = new URL(r.url ?? '/', `http://127.0.0.1:${port}`);
        const method = r.method ?? 'GET';
        const offered = url.searchParams.get('token');
        if (method === 'GET' && url.pathname === '/' && offered !== null) {
          if (!sameSecret(offered, token)) throw new EnclaveEdgeError('ACCESS_DENIED', 'wrong console token: open the URL `enclave-edge console --url` prints');
          res.writeHead(303, { location: '/', 'set-cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`, 'cache-control': 'no-store' });
          return res.end();
        }
        const cookie = cookieValue(r.headers.cookie, COOKIE);
        if (cookie === undefined || !sameSecret(cookie, token)) throw new EnclaveEdgeError('ACCESS_DENIED', 'this console needs its token: open the URL `enclave-edge console --url` prints');
        if (url.pathname.startsWith('/api/')) return await api(method, url.pathname, r, res);
        const file = method === 'GET' ? files.get(url.pathname) : undefined;
        if (!file) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no such console resource: ${url.pathname}`);
        res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store', 'content-security-policy': csp, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
        res.end(file.body);
      } catch (err) {
        if (!res.headersSent) sendError(res, err);
        else res.end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    async close() {
      ac.abort();
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
