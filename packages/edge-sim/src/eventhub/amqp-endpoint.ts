/**
 * IoT Hub's Event Hub-compatible endpoint for `$upstream`: AMQP 1.0 over TLS on rhea, with the
 * claims-based security (CBS) `put-token` of a SAS token signed by the hub's iothubowner key,
 * `$management` READ for the hub and its partitions, and partition receivers
 * (`<entity>/ConsumerGroups/<group>/Partitions/<id>`) that start where their selector filter says
 * and get IoT Hub's annotations. What `@azure/event-hubs` EventHubConsumerClient speaks, on its own
 * TLS port and, through `acceptStream`, over WebSockets (AMQPWSB10 on 443 `/$servicebus/websocket`).
 * Modules over AMQP share the port (as on IoT Hub): their tokens and links go to AmqpModules.
 */
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import rhea, { type Connection, type ConnectionOptions, type EventContext, type Message, type Sender } from 'rhea';
import { verifySas } from '../sas.js';
import { listenError } from '../listen-error.js';
import { EventStore, parseSelector, type StoredEvent } from './event-store.js';
import type { AmqpModules } from '../hub/amqp-modules.js';

export interface EventHubEndpointOptions {
  tls: { key: string; cert: string };
  host: string;
  port: number;
  portFallback: boolean;
  /** The Event Hub-compatible name (EntityPath). */
  entity: string;
  /** iothubowner key (base64). */
  hubKey: string;
  store: EventStore;
  /** Modules over AMQP on the same port, as on IoT Hub: their `$cbs` tokens and `/devices/…` links go there. */
  modules?: AmqpModules;
  log?: (line: string) => void;
}

/** Tokens are checked per connection: a receiver may attach only after a put-token for this entity. */
interface ConnState {
  authorizedUntil: number;
}

const SELECTOR = 'apache.org:selector-filter:string';
const POLICIES = new Set(['iothubowner', 'service']);

function audienceOk(resource: string, entity: string): boolean {
  // sb://<host>[:port]/<entity>[/...], host as the client dialled it.
  const m = /^(?:sb|amqps):\/\/[^/]+\/([^/]+)(?:\/.*)?$/i.exec(resource);
  return !!m && m[1]!.toLowerCase() === entity.toLowerCase();
}

function statusReply(request: Message, code: number, description: string, body: unknown = null): Message {
  return {
    ...(request.message_id !== undefined ? { correlation_id: request.message_id } : {}),
    ...(request.reply_to ? { to: request.reply_to } : {}),
    application_properties: { 'status-code': code, 'status-description': description },
    body,
  };
}

/** The AMQP message an Event Hubs consumer receives for one stored event. */
export function eventMessage(ev: StoredEvent): Message {
  const m = ev.message;
  const sys = m.systemProperties;
  const annotations: Record<string, unknown> = {
    'x-opt-sequence-number': rhea.types.wrap_long(ev.sequenceNumber),
    'x-opt-offset': String(ev.offset),
    'x-opt-enqueued-time': new Date(ev.enqueuedTimeMs),
    'iothub-connection-device-id': m.deviceId,
    'iothub-connection-module-id': m.moduleId,
    'iothub-connection-auth-method': JSON.stringify({ scope: 'module', type: 'sas', issuer: 'iothub', acceptingIpFilterRule: null }),
    'iothub-enqueuedtime': new Date(ev.enqueuedTimeMs),
    'iothub-message-source': 'Telemetry',
  };
  const out: Message = {
    body: rhea.message.data_section(m.body),
    message_annotations: annotations,
    application_properties: { ...m.properties },
  };
  if (sys['$.mid'] !== undefined) out.message_id = sys['$.mid'];
  if (sys['$.cid'] !== undefined) out.correlation_id = sys['$.cid'];
  if (sys['$.ct'] !== undefined) out.content_type = sys['$.ct'];
  if (sys['$.ce'] !== undefined) out.content_encoding = sys['$.ce'];
  return out;
}

export class EventHubEndpoint {
  private server?: tls.Server;
  // Nothing is accepted by rhea itself: a module's telemetry only once it is on disk (amqp-modules.ts).
  private readonly container = rhea.create_container({ id: 'edge-sim-eventhub', autoaccept: false } as Parameters<typeof rhea.create_container>[0]);
  private readonly conns = new WeakMap<Connection, ConnState>();
  private readonly pumps = new Map<Sender, () => void>();
  private readonly open = new Set<Connection>();
  port = 0;

  constructor(private readonly o: EventHubEndpointOptions) {
    // SASL ANONYMOUS then CBS, as Event Hubs clients do with a SAS key.
    this.container.sasl_server_mechanisms.enable_anonymous();
    this.container.on('connection_open', (ctx: EventContext) => {
      this.conns.set(ctx.connection, { authorizedUntil: 0 });
      this.open.add(ctx.connection);
    });
    const gone = (ctx: EventContext): void => {
      this.open.delete(ctx.connection);
      this.o.modules?.connectionGone(ctx.connection);
    };
    this.container.on('disconnected', gone);
    this.container.on('connection_close', gone);
    this.container.on('error', () => {});
    // A peer that does not speak AMQP 1.0 (rhea would print its bytes to stderr): one log line; rhea closes it.
    this.container.on('protocol_error', (err: Error) => this.o.log?.(`event hub endpoint: closed a connection that does not speak AMQP 1.0: ${err.message.slice(0, 200)}`));
    this.container.on('sender_open', (ctx: EventContext) => this.onSenderOpen(ctx));
    this.container.on('receiver_open', (ctx: EventContext) => {
      const address = ctx.receiver!.target?.address;
      if (this.o.modules?.owns(address)) return this.o.modules.receiverOpen(ctx);
      if (address !== '$cbs' && address !== '$management') {
        ctx.receiver!.close({ condition: 'amqp:not-found', description: `cannot send to ${String(address)}: this endpoint only serves receivers` });
        return;
      }
      ctx.receiver!.set_target({ address });
    });
    this.container.on('message', (ctx: EventContext) => this.onRequest(ctx));
    this.o.store.on('appended', () => {
      for (const pump of this.pumps.values()) pump();
    });
  }

  async start(): Promise<number> {
    const listen = (port: number): Promise<tls.Server> =>
      new Promise((resolve, reject) => {
        const server = this.container.listen({ transport: 'tls', host: this.o.host, port, key: this.o.tls.key, cert: this.o.tls.cert }) as unknown as tls.Server;
        server.once('error', reject);
        server.once('listening', () => {
          server.off('error', reject);
          resolve(server);
        });
      });
    try {
      this.server = await listen(this.o.port);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!this.o.portFallback || (code !== 'EADDRINUSE' && code !== 'EACCES')) throw listenError(err, 'amqp', this.o.port);
      this.server = await listen(0);
      this.o.log?.(`warning: AMQP port ${this.o.port} on ${this.o.host} is not available (${code}); the Event Hub-compatible endpoint listens on ${(this.server.address() as AddressInfo).port} (its connection string says so)`);
    }
    this.server.on('tlsClientError', () => {});
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  /** Serve one AMQP connection over any byte stream (AMQP over WebSockets on the service port). */
  async stop(): Promise<void> {
    this.pumps.clear();
    for (const c of this.open) c.close();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * An AMQP connection carried by another transport (a WebSocket's byte stream): the same container,
   * so the same SASL, CBS and links as the TLS port.
   */
  acceptStream(stream: Duplex): void {
    // rhea's accept (untyped) takes any socket-like duplex: data/error/end events, write, end, destroy.
    // Options without a transport: an accepted connection never dials.
    const conn = this.container.create_connection({ reconnect: false } as ConnectionOptions) as Connection & { accept(socket: Duplex): Connection };
    conn.accept(stream);
  }

  /** Partition receivers attached now (tests wait for theirs before sending "latest" events). */
  receivers(): number {
    return this.pumps.size;
  }

  private authorized(c: Connection): boolean {
    return (this.conns.get(c)?.authorizedUntil ?? 0) > Date.now();
  }

  /** A SAS token for this entity signed with an accepted policy's key: its expiry, or the reason it is refused. */
  private checkToken(token: unknown): { ok: true; expiresMs: number } | { ok: false; reason: string } {
    if (typeof token !== 'string') return { ok: false, reason: 'the token must be a string' };
    // Event Hubs clients sign with the key text's UTF-8 bytes, not the base64-decoded key IoT Hub uses.
    const r = verifySas(token, Buffer.from(this.o.hubKey, 'utf8'), (res) => audienceOk(res, this.o.entity));
    if (!r.ok) return { ok: false, reason: r.reason };
    if (!r.token.skn || !POLICIES.has(r.token.skn)) return { ok: false, reason: `policy ${String(r.token.skn)} is not accepted (iothubowner or service)` };
    return { ok: true, expiresMs: r.token.se * 1000 };
  }

  /** The reply link for a request: the connection's sender on the same node, attached by the client's receiver. */
  private replyLink(ctx: EventContext, node: string): Sender | undefined {
    return ctx.connection.find_sender((l: Sender) => l.source?.address === node && l.is_open());
  }

  private onRequest(ctx: EventContext): void {
    ctx.delivery?.accept(); // a request is answered on the reply link, whatever the answer
    const node = ctx.receiver!.target?.address as string;
    const req = ctx.message!;
    const props = (req.application_properties ?? {}) as Record<string, unknown>;
    const reply = (m: Message): void => {
      const link = this.replyLink(ctx, node);
      if (link) link.send(m);
    };
    if (node === '$cbs') {
      if (props.operation !== 'put-token') return reply(statusReply(req, 400, `unsupported CBS operation ${String(props.operation)}`));
      if (this.o.modules?.isModuleToken(req.body)) {
        // The device SDKs take only 200 as success.
        const r = this.o.modules.putToken(ctx.connection, req.body as string);
        return reply(r.ok ? statusReply(req, 200, 'OK') : statusReply(req, 401, `Unauthorized: ${r.reason}`));
      }
      const check = this.checkToken(req.body);
      if (!check.ok) {
        this.o.log?.(`event hub endpoint: put-token refused: ${check.reason}`);
        return reply(statusReply(req, 401, `Unauthorized: ${check.reason}`));
      }
      const st = this.conns.get(ctx.connection) ?? { authorizedUntil: 0 };
      st.authorizedUntil = Math.max(st.authorizedUntil, check.expiresMs);
      this.conns.set(ctx.connection, st);
      return reply(statusReply(req, 202, 'Accepted'));
    }
    // $management: READ of the hub or a partition; the token rides in the request.
    const check = props.security_token !== undefined ? this.checkToken(props.security_token) : this.authorized(ctx.connection) ? ({ ok: true, expiresMs: 0 } as const) : ({ ok: false, reason: 'no security_token' } as const);
    if (!check.ok) return reply(statusReply(req, 401, `Unauthorized: ${check.reason}`));
    if (props.operation !== 'READ') return reply(statusReply(req, 400, `unsupported operation ${String(props.operation)}`));
    if (typeof props.name !== 'string' || props.name.toLowerCase() !== this.o.entity.toLowerCase()) return reply(statusReply(req, 404, `The messaging entity '${String(props.name)}' could not be found.`));
    const store = this.o.store;
    if (props.type === 'com.microsoft:eventhub') {
      return reply(statusReply(req, 200, 'OK', { name: this.o.entity, type: 'com.microsoft:eventhub', created_at: store.createdAt, partition_count: store.partitionCount, partition_ids: store.partitionIds() }));
    }
    if (props.type === 'com.microsoft:partition') {
      const id = String(props.partition);
      if (!store.has(id)) return reply(statusReply(req, 404, `partition ${id} does not exist (0..${store.partitionCount - 1})`));
      const i = store.info(id);
      return reply(
        statusReply(req, 200, 'OK', {
          name: this.o.entity,
          type: 'com.microsoft:partition',
          partition: id,
          begin_sequence_number: rhea.types.wrap_long(i.beginSequenceNumber),
          last_enqueued_sequence_number: rhea.types.wrap_long(i.lastSequenceNumber),
          last_enqueued_offset: String(i.lastOffset),
          last_enqueued_time_utc: new Date(i.lastEnqueuedTimeMs),
          is_partition_empty: i.empty,
        }),
      );
    }
    return reply(statusReply(req, 400, `unsupported type ${String(props.type)}`));
  }

  private onSenderOpen(ctx: EventContext): void {
    const sender = ctx.sender!;
    if (this.o.modules?.owns(sender.source?.address)) return this.o.modules.senderOpen(ctx);
    const address = String(sender.source?.address ?? '');
    if (address === '$cbs' || address === '$management') {
      sender.set_source({ address });
      return;
    }
    const refuse = (condition: string, description: string): void => {
      this.o.log?.(`event hub endpoint: receiver for ${address.slice(0, 200)} refused: ${description}`);
      sender.close({ condition, description });
    };
    if (!this.authorized(ctx.connection)) return refuse('amqp:unauthorized-access', 'put a SAS token on $cbs first (iothubowner or service policy)');
    const m = /^([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i.exec(address);
    if (!m || m[1]!.toLowerCase() !== this.o.entity.toLowerCase()) return refuse('amqp:not-found', `The messaging entity '${address}' could not be found.`);
    const partition = m[3]!;
    if (!this.o.store.has(partition)) return refuse('amqp:not-found', `partition ${partition} does not exist (0..${this.o.store.partitionCount - 1})`);
    const filters = (sender.source as { filter?: Record<string, unknown> } | undefined)?.filter ?? {};
    const raw = Object.hasOwn(filters, SELECTOR) ? filters[SELECTOR] : undefined;
    const selector = raw && typeof raw === 'object' && 'value' in raw ? (raw as { value: unknown }).value : raw;
    let index: number;
    try {
      index = this.o.store.startIndex(partition, parseSelector(selector === undefined ? undefined : String(selector)));
    } catch (err) {
      return refuse('amqp:invalid-field', (err as Error).message);
    }
    sender.set_source({ address, filter: sender.source?.filter });
    // Sequence numbers, not indexes: the oldest events may expire while a receiver lags.
    const events = () => this.o.store.events(partition);
    let nextSeq = events()[index]?.sequenceNumber ?? (events().at(-1)?.sequenceNumber ?? -1) + 1;
    const pump = (): void => {
      if (!sender.is_open()) return;
      const evs = events();
      if (!evs.length) return;
      let i = Math.max(0, nextSeq - evs[0]!.sequenceNumber);
      while (i < evs.length && sender.sendable()) {
        sender.send(eventMessage(evs[i]!));
        nextSeq = evs[i]!.sequenceNumber + 1;
        i++;
      }
    };
    this.pumps.set(sender, pump);
    sender.on('sendable', pump);
    const drop = (): void => {
      this.pumps.delete(sender);
    };
    sender.on('sender_close', drop);
    ctx.connection.on('disconnected', drop);
    pump();
  }
}
