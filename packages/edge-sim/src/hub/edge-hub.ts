/**
 * edgeHub emulation: aedes (MQTT 3.1.1) over TLS with SAS authentication, a per-module ACL,
 * IoT Hub topic semantics (events, inputs, methods, twins), routes and store-and-forward.
 * `$iothub/*` traffic never goes through aedes' fan-out: it is written to the one client it is for.
 * Modules over AMQP (amqp-modules.ts) reach the same routes, stores, methods and twins: every
 * transport is a ModuleChannel here.
 */
import { EventEmitter } from 'node:events';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Aedes, type Client as AedesClient, type AuthenticateError } from 'aedes';

/** aedes keeps each client's granted subscriptions here (not in its typings). */
type Client = AedesClient & { subscriptions: Record<string, unknown> };
import type { CompiledRoute, RouteMessage } from '../routes/types.js';
import { routeMessage } from '../routes/compile.js';
import { verifySas } from '../sas.js';
import { listenError } from '../listen-error.js';
import { TwinStore, type JsonObject } from './twins.js';
import { StoreAndForward, type StoreLimits } from './store-forward.js';
import type { ForwardingJournal } from '../state/hub-state-forwarding.js';
import { deviceNotOnline, gatewayTimeout, HubError, moduleDisconnected } from './hub-error.js';
import {
  type PropertyBag,
  decodeBag,
  encodeBag,
  parseClientTopic,
  inputTopic,
  inputFilter,
  METHOD_FILTER,
  TWIN_RES_FILTER,
  TWIN_DESIRED_FILTER,
  methodRequestTopic,
  twinResponseTopic,
  desiredPatchTopic,
} from './topics.js';

export interface UpstreamMessage {
  deviceId: string;
  moduleId: string;
  output?: string;
  /** `$.`-prefixed system properties as sent (`$.mid`, `$.ct`, …) plus `$.cdid`/`$.cmid`. */
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
  body: Buffer;
  enqueuedTimeUtc: string;
}

export interface EdgeHubOptions {
  hubHostName: string;
  deviceId: string;
  tls: { key: string; cert: string };
  port?: number;
  /** When `port` is taken (or not allowed), listen on a free port instead of failing. */
  portFallback?: boolean;
  host?: string;
  /** Base64 SAS key of a module identity, or undefined when unknown. */
  moduleKey: (moduleId: string) => string | undefined;
  routes?: CompiledRoute[];
  /** storeAndForwardConfiguration.timeToLiveSecs. */
  timeToLiveSecs?: number;
  /** Bounds of store-and-forward per destination (default 10,000 messages / 64 MiB). */
  storeLimits?: Partial<StoreLimits>;
  /** Messages for module inputs kept on disk until the module acknowledges them (survives a simulator crash). */
  forwarding?: ForwardingJournal;
  /** Where upstream messages are kept (the built-in endpoint's events); a message's PUBACK waits for it. */
  upstream?: { sync(cb: (err: Error | null) => void): void };
  log?: (line: string) => void;
}

export interface ForwardingStats {
  /** Messages held for modules not connected (all destinations). */
  stored: number;
  /** Messages dropped, oldest first, because a destination was full (since start). */
  dropped: number;
  destinations: Array<{ module: string; input: string; messages: number; bytes: number; dropped: number }>;
}

/** 256 KiB, IoT Hub's device-to-cloud message limit. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** What a module connection listens for: its inputs, direct-method calls, desired-property updates. */
export type ModuleListen = 'inputs' | 'methods' | 'desired';

/**
 * One module's connection as edgeHub reaches it, whatever the transport (MQTT here, AMQP in
 * amqp-modules.ts): routing, store-and-forward, methods and twins go through this and nothing else.
 */
export interface ModuleChannel {
  listens(what: ModuleListen): boolean;
  /** How many more input messages it takes now (a module that does not settle them stops getting more). */
  room(): number;
  /** Send a routed message to an input; the transport calls EdgeHub.delivered(body) once the module has it. */
  deliver(input: string, topicBag: string, body: Buffer): void;
  requestMethod(methodName: string, rid: string, payload: Buffer): void;
  pushDesired(patch: JsonObject): void;
  close(): void;
}

/** What a module's reported-properties patch gets: a status, and the twin version or an error body. */
export type ReportedResult = { status: 204; version: number } | { status: number; error: { errorCode: number; message: string } };

interface PendingMethod {
  resolve: (r: { status: number; payload: unknown }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Delivery {
  input: string;
  topicBag: string;
  /** Its own Buffer object per delivery: the module's acknowledgement names it by this payload. */
  body: Buffer;
}

export class EdgeHub extends EventEmitter {
  readonly twins: TwinStore;
  private readonly aedes: Aedes;
  private server?: tls.Server;
  private routes: CompiledRoute[];
  private ttlSecs: number;
  private readonly saf: StoreAndForward<Delivery>;
  /** When each destination last warned about dropped messages (one warning per 10 s at most). */
  private readonly dropWarned = new Map<string, { at: number; since: number }>();
  private readonly pending = new Map<string, PendingMethod>();
  /** Forwarding-journal key of each delivery not yet acknowledged, by its payload object. */
  private readonly unacked = new Map<Buffer, number>();
  private nextRid = 1;
  private amqp?: (stream: import('node:stream').Duplex) => void;
  /** Modules connected over a transport other than MQTT, by module id. */
  private readonly channels = new Map<string, ModuleChannel>();
  /** 'listening' (moduleId, what) when a channel starts listening; not part of the public events. */
  private readonly internal = new EventEmitter().setMaxListeners(0); // one per method call waiting for its module
  private sweeper?: NodeJS.Timeout;
  private readonly log: (line: string) => void;
  /** Test only: modules whose MQTT connections are refused as by an edgeHub not ready, with how many were (refuseConnectionsForTest). */
  private readonly refusedForTest = new Map<string, { refused: number }>();
  /** Test only: MQTT links set to go dead at their module's next event (loseLinkForTest). */
  private readonly deadLinksForTest = new Map<string, { lost: number; closing: boolean; resolve: (lost: number) => void }>();
  port = 0;

  constructor(private readonly opts: EdgeHubOptions) {
    super();
    this.twins = new TwinStore(opts.deviceId);
    this.routes = opts.routes ?? [];
    this.ttlSecs = opts.timeToLiveSecs ?? 7200;
    this.saf = new StoreAndForward<Delivery>(opts.storeLimits);
    this.log = opts.log ?? (() => {});
    this.aedes = new Aedes({
      id: 'edge-sim-edgehub',
      authenticate: (client, username, password, cb) => this.authenticate(client as Client, username, password, cb),
      authorizeSubscribe: (client, sub, cb) => cb(null, this.allowedSubscription(client as Client, sub.topic) ? sub : null),
      authorizePublish: (client, packet, cb) => this.onPublish(client as Client | null, packet.topic, packet.payload as Buffer, cb),
    });
    this.aedes.on('subscribe', (subs, client) => {
      if (subs.some((s) => s.topic === inputFilter(this.opts.deviceId, moduleOf(client)) && (s.qos as number) !== 128)) this.flush(moduleOf(client));
    });
    // A module's PUBACK: the delivery is done (aedes hands back the packet it kept, same payload).
    this.aedes.on('ack', (packet) => {
      const payload = (packet as { payload?: unknown } | undefined)?.payload;
      if (Buffer.isBuffer(payload)) this.delivered(payload);
    });
    for (const { key, message: m } of opts.forwarding?.pending() ?? []) {
      const d: Delivery = { input: m.input, topicBag: m.topicBag, body: m.body };
      this.unacked.set(d.body, key);
      this.store(m.module, `${m.module}\u0000${m.input}`, d, Math.max(1, (m.expiresAt - Date.now()) / 1000));
    }
    if (opts.forwarding && opts.forwarding.size > 0) this.log(`store and forward: ${opts.forwarding.size} message(s) kept from before the restart`);
    this.aedes.on('clientReady', (client) => {
      // One connection per module identity, as on IoT Hub: a newer one replaces an older one.
      const older = this.channels.get(moduleOf(client));
      if (older) {
        this.channels.delete(moduleOf(client));
        older.close();
        this.endPendingMethods(moduleOf(client));
      }
      this.log(`module ${moduleOf(client)} connected`);
      this.emit('connected', moduleOf(client));
    });
    this.aedes.on('clientDisconnect', (client) => {
      this.log(`module ${moduleOf(client)} disconnected`);
      // Already connected again over another transport: its calls and its state there stay.
      if (this.channels.has(moduleOf(client))) return;
      this.endPendingMethods(moduleOf(client));
      this.emit('disconnected', moduleOf(client));
    });
  }

  async start(): Promise<number> {
    await this.aedes.listen();
    this.server = tls.createServer({ key: this.opts.tls.key, cert: this.opts.tls.cert, noDelay: true }, (socket) => this.accept(socket));
    this.server.on('tlsClientError', () => {}); // bad handshakes are the client's problem
    const server = this.server;
    const listen = (port: number): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, this.opts.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    try {
      await listen(this.opts.port ?? 8883);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!this.opts.portFallback || (code !== 'EADDRINUSE' && code !== 'EACCES')) throw listenError(err, 'mqtt', this.opts.port ?? 8883);
      this.log(`MQTT port ${this.opts.port ?? 8883} unavailable (${code}); using a free port`);
      await listen(0);
    }
    this.port = (this.server.address() as AddressInfo).port;
    this.sweeper = setInterval(() => this.saf.sweep(), 10_000).unref();
    return this.port;
  }

  /** Where AMQP connections that reach the MQTT port go (see accept). */
  serveAmqp(handler: (stream: import('node:stream').Duplex) => void): void {
    this.amqp = handler;
  }

  /**
   * The SDK's AMQP transport dials the gateway host name, which names this port when MQTT is not
   * on 8883: a connection whose first byte is the AMQP header's `A` (an MQTT CONNECT starts 0x10) is AMQP.
   */
  private accept(socket: tls.TLSSocket): void {
    const amqp = this.amqp;
    if (!amqp) return void this.aedes.handle(socket);
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] !== 0x41) return void this.aedes.handle(socket); // aedes reads on 'readable'
      amqp(socket);
      socket.resume(); // rhea reads on 'data', which does not restart a paused stream
    });
  }

  /** Serve one MQTT connection over any byte stream (MQTT over WebSockets on the service port). */
  handleStream(stream: import('node:stream').Duplex): void {
    this.aedes.handle(stream);
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    if (this.server) {
      const server = this.server;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  setRoutes(routes: CompiledRoute[], timeToLiveSecs?: number): void {
    this.routes = routes;
    if (timeToLiveSecs !== undefined) this.ttlSecs = timeToLiveSecs;
  }

  private get clients(): Record<string, Client> {
    return (this.aedes as unknown as { clients: Record<string, Client> }).clients;
  }

  private client(moduleId: string): Client | undefined {
    return this.clients[`${this.opts.deviceId}/${moduleId}`];
  }

  /** The module's connection, MQTT or another transport's; undefined when it is not connected. */
  private channel(moduleId: string): ModuleChannel | undefined {
    // A channel in the map is the newest connection (an MQTT CONNECT removes it).
    const ch = this.channels.get(moduleId);
    if (ch) return ch;
    const c = this.client(moduleId);
    return c?.connected ? this.mqttChannel(c) : undefined;
  }

  private mqttChannel(c: Client): ModuleChannel {
    const moduleId = moduleOf(c);
    const filters: Record<ModuleListen, string> = { inputs: inputFilter(this.opts.deviceId, moduleId), methods: METHOD_FILTER, desired: TWIN_DESIRED_FILTER };
    return {
      listens: (what) => !!c.subscriptions[filters[what]],
      room: () => Infinity, // aedes queues per client
      deliver: (input, topicBag, body) => {
        this.send(c, inputTopic(this.opts.deviceId, moduleId, input, topicBag), body, 1);
        // A clean-session client gets no redelivery from aedes, so it is done once written.
        if ((c as { clean?: boolean }).clean) this.delivered(body);
      },
      requestMethod: (name, rid, payload) => this.send(c, methodRequestTopic(name, rid), payload),
      pushDesired: (patch) => this.send(c, desiredPatchTopic(patch.$version as number), Buffer.from(JSON.stringify(patch))),
      close: () => c.close(),
    };
  }

  isConnected(moduleId: string): boolean {
    return this.channel(moduleId) !== undefined;
  }

  connectedModules(): string[] {
    const mqtt = Object.values(this.clients)
      .filter((c) => c.connected)
      .map(moduleOf);
    return [...new Set([...mqtt, ...this.channels.keys()])];
  }

  /** Close a module's connection (used when the module is stopped or its identity changes). */
  disconnect(moduleId: string): void {
    this.client(moduleId)?.close();
    this.channels.get(moduleId)?.close();
  }

  /**
   * Test only: the module's MQTT link goes dead at its next event. That publish and everything
   * read after it on the connection are neither routed nor acknowledged (lost on the wire, as
   * when a link fails), then the connection is closed. Resolves with how many events were lost.
   */
  loseLinkForTest(moduleId: string): Promise<number> {
    return new Promise((resolve) => this.deadLinksForTest.set(moduleId, { lost: 0, closing: false, resolve }));
  }

  /**
   * Test only: from now on the module's MQTT connections are refused "server unavailable" (an
   * edgeHub restarting) until `allow()`; `refused()` counts the attempts refused.
   */
  refuseConnectionsForTest(moduleId: string): { refused(): number; allow(): void } {
    const state = { refused: 0 };
    this.refusedForTest.set(moduleId, state);
    return {
      refused: () => state.refused,
      allow: () => void (this.refusedForTest.get(moduleId) === state && this.refusedForTest.delete(moduleId)),
    };
  }

  // ---- modules on other transports (AMQP) ----------------------------------------------------

  /** A module authenticated on another transport; an older connection of the same module is closed. */
  attachChannel(moduleId: string, ch: ModuleChannel): void {
    const old = this.channels.get(moduleId);
    this.channels.set(moduleId, ch);
    if (old && old !== ch) old.close();
    this.client(moduleId)?.close();
    // Calls waiting now were sent to the older connection, which will not answer them.
    this.endPendingMethods(moduleId);
    this.log(`module ${moduleId} connected`);
    this.emit('connected', moduleId);
  }

  detachChannel(moduleId: string, ch: ModuleChannel): void {
    if (this.channels.get(moduleId) !== ch) return;
    this.channels.delete(moduleId);
    this.log(`module ${moduleId} disconnected`);
    this.endPendingMethods(moduleId);
    this.emit('disconnected', moduleId);
  }

  /** A channel started listening for `what`: stored input messages go now, waiting method calls proceed. */
  channelListening(moduleId: string, what: ModuleListen): void {
    if (what === 'inputs') this.flush(moduleId);
    this.internal.emit('listening', moduleId, what);
  }

  /** A channel that was full takes input messages again: the stored ones go first, quietly. */
  channelHasRoom(moduleId: string): void {
    this.flush(moduleId, false);
  }

  /** The reason `token` does not authenticate `moduleId` of this device, or undefined when it does (every transport). */
  moduleTokenProblem(deviceId: string, moduleId: string, token: string | undefined): string | undefined {
    if (deviceId !== this.opts.deviceId) return `unknown device ${deviceId}`;
    const key = this.opts.moduleKey(moduleId);
    if (!key) return `unknown module identity ${moduleId}`;
    const resource = `${this.opts.hubHostName}/devices/${deviceId}/modules/${moduleId}`.toLowerCase();
    const check = verifySas(token, key, (r) => r.toLowerCase() === resource);
    return check.ok ? undefined : check.reason;
  }

  /** Direct-method calls waiting for `moduleId`'s answer. */
  pendingMethodCalls(moduleId: string): number {
    const prefix = `${this.opts.deviceId}/${moduleId}|`;
    let n = 0;
    for (const k of this.pending.keys()) if (k.startsWith(prefix)) n++;
    return n;
  }

  /** Messages held by store-and-forward (all destinations). */
  pendingForwarding(): number {
    return this.saf.total();
  }

  forwardingStats(): ForwardingStats {
    const keys = new Set<string>(this.saf.droppedCounts().keys());
    for (const k of this.saf.keys()) keys.add(k);
    const dropped = this.saf.droppedCounts();
    const destinations = [...keys].sort().map((k) => {
      const [module, input] = k.split('\u0000') as [string, string];
      return { module, input, messages: this.saf.size(k), bytes: this.saf.bytes(k), dropped: dropped.get(k) ?? 0 };
    });
    return { stored: this.saf.total(), dropped: destinations.reduce((n, d) => n + d.dropped, 0), destinations };
  }

  // ---- authentication and ACL -------------------------------------------------------------

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, cb: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const deny = (why: string): void => {
      this.log(`connection refused for ${client.id || '?'}: ${why}`);
      const err = Object.assign(new Error(`not authorized: ${why}`), { returnCode: 5 }) as AuthenticateError;
      cb(err, null);
    };
    const id = client.id ?? '';
    const slash = id.indexOf('/');
    const deviceId = id.slice(0, slash);
    const moduleId = id.slice(slash + 1);
    if (slash <= 0 || !moduleId || moduleId.includes('/')) return deny('client id must be {deviceId}/{moduleId}');
    const refusing = this.refusedForTest.get(moduleId);
    if (refusing) {
      refusing.refused++;
      return cb(Object.assign(new Error('server unavailable (refuseConnectionsForTest)'), { returnCode: 3 }) as AuthenticateError, null);
    }
    const expectedUser = `${this.opts.hubHostName}/${deviceId}/${moduleId}/`;
    if (!username || !username.startsWith(expectedUser)) return deny('user name must be {hub}/{deviceId}/{moduleId}/?api-version=…');
    const problem = this.moduleTokenProblem(deviceId, moduleId, password?.toString('utf8'));
    if (problem) return deny(problem);
    cb(null, true);
  }

  private allowedSubscription(client: Client, topic: string): boolean {
    const ok =
      topic === inputFilter(this.opts.deviceId, moduleOf(client)) || topic === METHOD_FILTER || topic === TWIN_RES_FILTER || topic === TWIN_DESIRED_FILTER;
    if (!ok) this.log(`subscription refused for ${client.id}: ${topic}`);
    return ok;
  }

  private onPublish(client: Client | null, topic: string, payload: Buffer, cb: (err?: Error | null) => void): void {
    if (!client) return cb(new Error('publishing from the broker itself is not used'));
    const moduleId = moduleOf(client);
    const t = parseClientTopic(topic);
    switch (t.kind) {
      case 'event': {
        if (t.deviceId !== this.opts.deviceId || t.moduleId !== moduleId) return this.refuse(client, topic, cb);
        const dead = this.deadLinksForTest.get(moduleId);
        if (dead) {
          // No callback: aedes reads nothing more from this connection; the rest of its read batch comes here too.
          dead.lost++;
          if (!dead.closing) {
            dead.closing = true;
            setImmediate(() => {
              this.deadLinksForTest.delete(moduleId);
              client.close();
              dead.resolve(dead.lost);
            });
          }
          return;
        }
        return this.moduleEvent(moduleId, decodeBag(t.bag), payload, cb);
      }
      case 'methodResponse':
        this.methodAnswered(moduleId, t.rid, t.status, payload);
        return cb(null);
      case 'twinGet':
        this.send(client, twinResponseTopic(200, t.rid), Buffer.from(JSON.stringify(this.moduleTwin(moduleId))));
        return cb(null);
      case 'twinReported': {
        const r = this.reportedFrom(moduleId, payload);
        if ('error' in r) this.send(client, twinResponseTopic(r.status, t.rid), Buffer.from(JSON.stringify(r.error)));
        else this.send(client, twinResponseTopic(204, t.rid, r.version), Buffer.alloc(0));
        return cb(null);
      }
      default:
        return this.refuse(client, topic, cb);
    }
  }

  /**
   * A module's message (telemetry or an output), any transport: refused over IoT Hub's size limit,
   * else routed; `cb` once what it was routed to is on disk.
   */
  moduleEvent(moduleId: string, props: PropertyBag, payload: Buffer, cb: (err?: Error | null) => void): void {
    if (payload.length > MAX_MESSAGE_BYTES) {
      this.log(`message from ${moduleId} refused: ${payload.length} bytes > ${MAX_MESSAGE_BYTES}`);
      return cb(new Error('message too large'));
    }
    this.route(moduleId, props, payload);
    this.durable((err) => {
      // Routed already: the sender's SDK sends it again, so its receivers may get it twice (at least once).
      if (err) this.log(`message from ${moduleId} not acknowledged: its store could not be synced (${err.message})`);
      cb(err);
    });
  }

  /** A module's answer to direct-method request `rid`. */
  methodAnswered(moduleId: string, rid: string, status: number, payload: Buffer): void {
    const key = `${this.opts.deviceId}/${moduleId}|${rid}`;
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    p.resolve({ status, payload: parseJson(payload) });
  }

  /** The twin as the module reads it (desired and reported). */
  moduleTwin(moduleId: string): JsonObject {
    return this.twins.deviceView(moduleId);
  }

  /** Apply a module's reported-properties patch (JSON text); an over-limit or non-object patch leaves the twin unchanged. */
  reportedFrom(moduleId: string, payload: Buffer): ReportedResult {
    const patch = parseJson(payload);
    if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return { status: 400, error: { errorCode: 400004, message: 'reported properties patch must be a JSON object' } };
    let version: number;
    try {
      version = this.twins.patchReported(moduleId, patch as JsonObject, payload.length);
    } catch (err) {
      if (!(err instanceof HubError)) throw err;
      this.log(`reported properties patch from ${moduleId} refused: ${err.message}`);
      return { status: err.httpStatus, error: { errorCode: err.hubErrorCode, message: err.message } };
    }
    this.emit('reported', moduleId, patch);
    return { status: 204, version };
  }

  /** `cb` once both stores a routed message may be in are on disk (the first error wins). */
  private durable(cb: (err?: Error | null) => void): void {
    const stores = [this.opts.forwarding, this.opts.upstream].filter((x) => x !== undefined);
    let left = stores.length;
    let failed: Error | null = null;
    if (left === 0) return cb(null);
    for (const s of stores) {
      s.sync((err) => {
        failed ??= err;
        if (--left === 0) cb(failed);
      });
    }
  }

  private refuse(client: Client, topic: string, cb: (err?: Error | null) => void): void {
    this.log(`publish refused for ${client.id} on ${topic}`);
    cb(new Error(`not authorized to publish on ${topic}`));
  }

  /** Write a packet to exactly one client (never through the broker's fan-out). */
  private send(client: Client, topic: string, payload: Buffer, qos: 0 | 1 = 0): void {
    client.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, () => {});
  }

  // ---- routing and delivery -----------------------------------------------------------------

  private route(moduleId: string, props: PropertyBag, body: Buffer): void {
    const system = { ...props.system, '$.cdid': this.opts.deviceId, '$.cmid': moduleId };
    const msg: RouteMessage = {
      source: { deviceId: this.opts.deviceId, moduleId, ...(props.output !== undefined ? { output: props.output } : {}) },
      systemProperties: system,
      properties: props.app,
      body,
    };
    // One delivery per sink; the best-priority route into it decides the time to live.
    for (const sink of routeMessage(this.routes, msg)) {
      if (sink.kind === 'upstream') {
        const up: UpstreamMessage = {
          deviceId: this.opts.deviceId,
          moduleId,
          systemProperties: system,
          properties: props.app,
          body,
          enqueuedTimeUtc: new Date().toISOString(),
          ...(props.output !== undefined ? { output: props.output } : {}),
        };
        this.emit('upstream', up);
      } else {
        const d: Delivery = { input: sink.input, topicBag: encodeBag(system, props.app), body: body.subarray(0) };
        this.keep(sink.module, d, sink.timeToLiveSecs ?? this.ttlSecs);
        this.deliver(sink.module, d, sink.timeToLiveSecs ?? this.ttlSecs);
      }
    }
  }

  /** On disk until the module acknowledges it; a journal that cannot be written is said, and the message still goes. */
  private keep(moduleId: string, d: Delivery, ttlSecs: number): void {
    const journal = this.opts.forwarding;
    if (!journal) return;
    try {
      this.unacked.set(d.body, journal.add({ module: moduleId, input: d.input, topicBag: d.topicBag, body: d.body, expiresAt: Date.now() + ttlSecs * 1000 }));
    } catch (err) {
      this.log(`warning: store and forward could not write its journal (${(err as Error).message}); a message to ${moduleId} is not kept through a crash`);
    }
  }

  /** The module has the delivery with this payload (MQTT PUBACK, or written to a clean session; AMQP accept): it leaves the forwarding store. */
  delivered(body: Buffer): void {
    const key = this.unacked.get(body);
    if (key === undefined) return;
    this.unacked.delete(body);
    this.opts.forwarding!.done(key);
  }

  private sendDelivery(c: ModuleChannel, d: Delivery): void {
    c.deliver(d.input, d.topicBag, d.body);
  }

  private canDeliver(moduleId: string): ModuleChannel | undefined {
    const c = this.channel(moduleId);
    return c?.listens('inputs') ? c : undefined;
  }

  private deliver(moduleId: string, d: Delivery, ttlSecs: number): void {
    const key = `${moduleId}\u0000`;
    const c = this.canDeliver(moduleId);
    if (c && this.saf.size(key + d.input) > 0) this.flush(moduleId); // keep order behind anything stored
    if (c && c.room() > 0 && this.saf.size(key + d.input) === 0) this.sendDelivery(c, d);
    else this.store(moduleId, key + d.input, d, ttlSecs);
  }

  private store(moduleId: string, key: string, d: Delivery, ttlSecs: number): void {
    const dropped = this.saf.push(key, d, d.body.length + d.topicBag.length, ttlSecs);
    if (!dropped) return;
    // Loud but not flooding: the first drop of a destination, then at most one line per 10 s.
    const now = Date.now();
    const w = this.dropWarned.get(key) ?? { at: 0, since: 0 };
    w.since += dropped;
    if (now - w.at >= 10_000) {
      this.log(
        `warning: store-and-forward for module ${moduleId} input ${d.input} is full (${this.saf.size(key)} messages, ${this.saf.bytes(key)} bytes); dropped ${w.since} oldest message(s) — is ${moduleId} running and subscribed to its inputs?`,
      );
      w.at = now;
      w.since = 0;
    }
    this.dropWarned.set(key, w);
  }

  /** Deliver what is stored for a module that listens for its inputs (as much as it takes now), in order. */
  private flush(moduleId: string, announce = true): void {
    const c = this.canDeliver(moduleId);
    if (!c) return;
    const items = this.saf.takeAll(`${moduleId}\u0000`, Date.now(), c.room());
    if (items.length && announce) this.log(`forwarding ${items.length} stored message(s) to ${moduleId}`);
    for (const { item } of items) this.sendDelivery(c, item);
  }

  // ---- direct methods and twins -------------------------------------------------------------

  /**
   * Invoke a direct method; rejects with HubError 404103 when the module is not listening for
   * methods (after waiting up to `connectTimeoutSecs` for it, as IoT Hub does) and 504101 when it
   * does not answer within `responseTimeoutSecs`.
   */
  async invokeMethod(moduleId: string, methodName: string, payload: unknown, responseTimeoutSecs = 30, connectTimeoutSecs = 0): Promise<{ status: number; payload: unknown }> {
    const target = `${this.opts.deviceId}/${moduleId}`;
    let c = this.methodListener(moduleId);
    if (!c && connectTimeoutSecs > 0) c = await this.waitForMethodListener(moduleId, connectTimeoutSecs * 1000);
    if (!c) throw deviceNotOnline(target);
    const channel = c;
    const rid = (this.nextRid++).toString(16);
    const key = `${target}|${rid}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(gatewayTimeout(target, responseTimeoutSecs));
      }, responseTimeoutSecs * 1000);
      this.pending.set(key, { resolve, reject, timer });
      channel.requestMethod(methodName, rid, Buffer.from(JSON.stringify(payload ?? null)));
    });
  }

  /** The module that must answer is gone: its callers learn it now, not at their timeout. */
  private endPendingMethods(moduleId: string): void {
    const prefix = `${this.opts.deviceId}/${moduleId}|`;
    for (const [key, p] of this.pending) {
      if (!key.startsWith(prefix)) continue;
      this.pending.delete(key);
      clearTimeout(p.timer);
      p.reject(moduleDisconnected(`${this.opts.deviceId}/${moduleId}`));
    }
  }

  private methodListener(moduleId: string): ModuleChannel | undefined {
    const c = this.channel(moduleId);
    return c?.listens('methods') ? c : undefined;
  }

  private waitForMethodListener(moduleId: string, ms: number): Promise<ModuleChannel | undefined> {
    return new Promise((resolve) => {
      const onSubscribe = (): void => {
        const c = this.methodListener(moduleId);
        if (c) done(c);
      };
      const timer = setTimeout(() => done(undefined), ms);
      const done = (c: ModuleChannel | undefined): void => {
        clearTimeout(timer);
        this.aedes.off('subscribe', onSubscribe);
        this.internal.off('listening', onSubscribe);
        resolve(c);
      };
      this.aedes.on('subscribe', onSubscribe);
      this.internal.on('listening', onSubscribe);
    });
  }

  /** Merge a desired patch into the twin and push it to the module when it listens. */
  patchDesired(moduleId: string, patch: JsonObject): number {
    const version = this.twins.patchDesired(moduleId, patch);
    this.pushDesired(moduleId, { ...patch, $version: version });
    return version;
  }

  /** Replace desired properties (deployment); pushes the full document as the patch. */
  setDesired(moduleId: string, desired: JsonObject): number {
    const before = this.twins.get(moduleId).desired;
    const version = this.twins.setDesired(moduleId, desired);
    // Keys that disappeared are sent as null so the module sees the removal.
    const patch: JsonObject = { ...desired };
    for (const k of Object.keys(before)) if (!Object.hasOwn(desired, k)) Object.defineProperty(patch, k, { value: null, enumerable: true, writable: true, configurable: true });
    this.pushDesired(moduleId, { ...patch, $version: version });
    return version;
  }

  private pushDesired(moduleId: string, patch: JsonObject): void {
    const c = this.channel(moduleId);
    if (c?.listens('desired')) c.pushDesired(patch);
  }
}

function moduleOf(client: AedesClient): string {
  const id = client.id ?? '';
  return id.slice(id.indexOf('/') + 1);
}

function parseJson(b: Buffer): unknown {
  if (b.length === 0) return null;
  const s = b.toString('utf8');
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}
