/**
 * Modules over AMQP 1.0 (azure-iot-device-amqp `Amqp` and `AmqpWs`): the links a ModuleClient
 * attaches, bridged into EdgeHub (routes, store-and-forward, methods, twins) as a ModuleChannel.
 * No listener of its own: IoT Hub serves modules and the Event Hub-compatible endpoint on one
 * AMQP port, so the endpoint hands over `$cbs` tokens for a module and links under `/devices/`.
 *
 * - `$cbs` put-token with a SAS for `<hub>/devices/<d>/modules/<m>` authenticates the connection as that module;
 * - `…/messages/events`: the module's sender is telemetry and outputs (`iothub-outputname`), its receiver gets inputs (`x-opt-input-name`);
 * - `…/methods/devicebound`: requests (`IoThub-methodname`, correlation id) and answers (`IoThub-status`);
 * - `…/twin`: requests with `operation` / `resource` annotations, answers with a `status` annotation,
 *   desired-property updates as messages without a correlation id.
 */
import rhea, { type Connection, type Delivery, type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import { parseSas } from '../sas.js';
import type { EdgeHub, ModuleChannel, ModuleListen } from './edge-hub.js';
import { decodeBag, type PropertyBag } from './topics.js';
import type { JsonObject } from './twins.js';

const LINK = /^\/?devices\/([^/]+)\/modules\/([^/]+)\/(messages\/events|methods\/devicebound|twin)\/?$/;
const DESIRED_NOTIFICATIONS = '/notifications/twin/properties/desired';
const OUTPUT_NAME = 'iothub-outputname';
/** Input messages one connection may hold unsettled; rhea's session buffer (2,048 deliveries) must never fill. */
export const MAX_UNSETTLED_INPUTS = 1000;

type LinkKind = 'events' | 'methods' | 'twin';

/** `[deviceId, moduleId, kind]` of a module link address, or undefined when it is not one. */
function parseLink(address: unknown): [string, string, LinkKind] | undefined {
  const m = typeof address === 'string' ? LINK.exec(address) : null;
  if (!m) return undefined;
  return [m[1]!, m[2]!, m[3] === 'messages/events' ? 'events' : m[3] === 'twin' ? 'twin' : 'methods'];
}

/** The bytes of an AMQP body: a data section, a string, or (for what the SDKs never send) its JSON. */
function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'object' && 'content' in body && Buffer.isBuffer((body as { content: unknown }).content)) return (body as { content: Buffer }).content;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}

/** A message or correlation id as text (the SDK sends uuids as 16-byte AMQP uuids). */
function idText(id: unknown): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id)) return id.length === 16 ? rhea.uuid_to_string(id) : id.toString('utf8');
  return String(id);
}

/** An AMQP message from a module as the property bag routes read (the same one MQTT's topic gives). */
function propsOf(m: Message): PropertyBag {
  const props: PropertyBag = { system: Object.create(null) as Record<string, string>, app: Object.create(null) as Record<string, string> };
  const sys: Array<[string, unknown]> = [
    ['$.mid', idText(m.message_id)],
    ['$.cid', idText(m.correlation_id)],
    ['$.ct', m.content_type],
    ['$.ce', m.content_encoding],
    ['$.uid', m.user_id === undefined ? undefined : idText(m.user_id)],
    ['$.exp', m.absolute_expiry_time instanceof Date ? m.absolute_expiry_time.toISOString() : undefined],
  ];
  for (const [k, v] of sys) if (v !== undefined && v !== null) props.system[k] = String(v);
  const app = (m.application_properties ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(app)) {
    const v = app[k];
    if (v === undefined || v === null) continue;
    if (k === OUTPUT_NAME) props.output = String(v);
    else props.app[k] = String(v);
  }
  return props;
}

interface ConnState {
  deviceId: string;
  moduleId: string;
  expiresMs: number;
  expiry: NodeJS.Timeout;
  channel: AmqpChannel;
}

export type PutTokenResult = { ok: true } | { ok: false; reason: string };

/** One authenticated module connection: its links as EdgeHub sees them. */
class AmqpChannel implements ModuleChannel {
  inputs?: Sender;
  methodRequests?: Sender;
  methodAnswers?: Receiver;
  twinAnswers?: Sender;
  desired = false;
  /** The payload of each input delivery the module has not settled, to acknowledge it when it accepts it. */
  readonly unsettled = new Map<Delivery, Buffer>();

  constructor(
    readonly conn: Connection,
    private readonly end: (description: string) => void,
  ) {}

  room(): number {
    return this.inputs?.is_open() ? MAX_UNSETTLED_INPUTS - this.unsettled.size : 0;
  }

  listens(what: ModuleListen): boolean {
    if (what === 'inputs') return !!this.inputs?.is_open();
    if (what === 'methods') return !!this.methodRequests?.is_open() && !!this.methodAnswers?.is_open();
    return this.desired && !!this.twinAnswers?.is_open();
  }

  deliver(input: string, topicBag: string, body: Buffer): void {
    const props = decodeBag(topicBag);
    const s = props.system;
    const m: Message = {
      body: rhea.message.data_section(body),
      message_annotations: {
        'x-opt-input-name': input,
        ...(s['$.cdid'] !== undefined ? { 'iothub-connection-device-id': s['$.cdid'] } : {}),
        ...(s['$.cmid'] !== undefined ? { 'iothub-connection-module-id': s['$.cmid'] } : {}),
      },
      application_properties: { ...props.app },
    };
    if (s['$.mid'] !== undefined) m.message_id = s['$.mid'];
    if (s['$.cid'] !== undefined) m.correlation_id = s['$.cid'];
    if (s['$.ct'] !== undefined) m.content_type = s['$.ct'];
    if (s['$.ce'] !== undefined) m.content_encoding = s['$.ce'];
    const d = this.inputs!.send(m);
    this.unsettled.set(d, body);
  }

  requestMethod(methodName: string, rid: string, payload: Buffer): void {
    presettled(this.methodRequests!, { correlation_id: rid, application_properties: { 'IoThub-methodname': methodName }, body: rhea.message.data_section(payload) });
  }

  pushDesired(patch: JsonObject): void {
    presettled(this.twinAnswers!, { body: rhea.message.data_section(Buffer.from(JSON.stringify(patch))) });
  }

  close(): void {
    this.end('the module connected again, or was stopped');
  }
}

export class AmqpModules {
  private readonly conns = new Map<Connection, ConnState>();

  constructor(
    private readonly hub: EdgeHub,
    private readonly o: { deviceId: string; hubHostName: string; log?: (line: string) => void },
  ) {}

  /** A link address this side serves (`/devices/…`). */
  owns(address: unknown): boolean {
    return typeof address === 'string' && /^\/?devices\//.test(address);
  }

  /** A `$cbs` token for a device or module identity (the Event Hub-compatible endpoint's are `sb://…/<entity>`). */
  isModuleToken(token: unknown): boolean {
    const t = typeof token === 'string' ? parseSas(token) : undefined;
    return !!t && !/^[a-z]+:\/\//i.test(t.resource) && /\/devices\//i.test(t.resource);
  }

  /** CBS put-token: the connection is this module's until the token expires (a later put-token renews it). */
  putToken(conn: Connection, token: string): PutTokenResult {
    const t = parseSas(token)!;
    const m = /^([^/]+)\/devices\/([^/]+)\/modules\/([^/]+)$/i.exec(t.resource);
    const refuse = (reason: string): PutTokenResult => {
      this.o.log?.(`AMQP connection refused: ${reason}`);
      return { ok: false, reason };
    };
    if (!m) return refuse(`token is for ${t.resource.slice(0, 200)}, not {hub}/devices/{deviceId}/modules/{moduleId}`);
    const deviceId = safeDecode(m[2]!);
    const moduleId = safeDecode(m[3]!);
    const problem = this.hub.moduleTokenProblem(deviceId, moduleId, token);
    if (problem) return refuse(`${moduleId}: ${problem}`);
    const st = this.conns.get(conn);
    if (st && (st.moduleId !== moduleId || st.deviceId !== deviceId)) return refuse(`this connection is ${st.moduleId}'s, not ${moduleId}'s`);
    const expiresMs = t.se * 1000;
    // Timers run at most ~24.8 days: a longer token re-arms until it really expires.
    const expire = (): NodeJS.Timeout =>
      setTimeout(() => {
        const cur = this.conns.get(conn);
        if (cur && cur.expiresMs > Date.now()) cur.expiry = expire();
        else this.end(conn, 'amqp:unauthorized-access', 'token expired; put a new one on $cbs before it does');
      }, Math.min(expiresMs - Date.now(), 2 ** 31 - 1)).unref();
    if (st) {
      clearTimeout(st.expiry);
      st.expiresMs = expiresMs;
      st.expiry = expire();
      return { ok: true };
    }
    const channel = new AmqpChannel(conn, (why) => this.end(conn, 'amqp:connection:forced', why));
    this.conns.set(conn, { deviceId, moduleId, expiresMs, expiry: expire(), channel });
    this.hub.attachChannel(moduleId, channel);
    return { ok: true };
  }

  /** Close a connection from this side: edgeHub forgets it now, not when the client's close comes back. */
  private end(conn: Connection, condition: string, description: string): void {
    conn.close({ condition, description });
    this.connectionGone(conn);
  }

  /** The connection closed or dropped. */
  connectionGone(conn: Connection): void {
    const st = this.conns.get(conn);
    if (!st) return;
    this.conns.delete(conn);
    clearTimeout(st.expiry);
    this.hub.detachChannel(st.moduleId, st.channel);
  }

  /** The state of an authenticated connection whose module owns `address`, or undefined after closing the link. */
  private authorize(conn: Connection, address: unknown, link: Sender | Receiver): [ConnState, LinkKind] | undefined {
    const parsed = parseLink(address);
    const st = this.conns.get(conn);
    const refuse = (condition: string, description: string): undefined => {
      this.o.log?.(`AMQP link ${String(address).slice(0, 200)} refused: ${description}`);
      link.close({ condition, description });
      return undefined;
    };
    if (!parsed) return refuse('amqp:not-found', `no such node ${String(address).slice(0, 200)}`);
    if (!st || st.expiresMs <= Date.now()) return refuse('amqp:unauthorized-access', 'put a SAS token for this module on $cbs first');
    if (parsed[0] !== st.deviceId || parsed[1] !== st.moduleId) return refuse('amqp:unauthorized-access', `this connection is ${st.moduleId}'s, not ${parsed[1]}'s`);
    return [st, parsed[2]];
  }

  /** The module attaches a sender: telemetry and outputs, method answers, or twin requests. */
  receiverOpen(ctx: EventContext): void {
    const receiver = ctx.receiver!;
    const address = receiver.target?.address;
    const ok = this.authorize(ctx.connection, address, receiver);
    if (!ok) return;
    const [st, kind] = ok;
    receiver.set_target({ address });
    const ch = st.channel;
    if (kind === 'events') {
      // Accepted once routed and on disk, not when it arrives (the endpoint's container does not auto-accept).
      receiver.on('message', (c: EventContext) => {
        const m = c.message!;
        const delivery = c.delivery!;
        this.hub.moduleEvent(st.moduleId, propsOf(m), bodyBytes(m.body), (err) => {
          if (err) delivery.reject({ condition: 'amqp:precondition-failed', description: err.message });
          else delivery.accept();
        });
      });
    } else if (kind === 'methods') {
      ch.methodAnswers = receiver;
      receiver.on('message', (c: EventContext) => {
        c.delivery?.accept();
        const m = c.message!;
        const rid = idText(m.correlation_id);
        const status = Number((m.application_properties as Record<string, unknown> | undefined)?.['IoThub-status']);
        if (rid !== undefined && Number.isInteger(status)) this.hub.methodAnswered(st.moduleId, rid, status, bodyBytes(m.body));
      });
      if (ch.listens('methods')) this.hub.channelListening(st.moduleId, 'methods');
    } else {
      receiver.on('message', (c: EventContext) => {
        c.delivery?.accept();
        this.twinRequest(st, c.message!);
      });
    }
  }

  /** The module attaches a receiver: inputs, method requests, or twin answers and desired updates. */
  senderOpen(ctx: EventContext): void {
    const sender = ctx.sender!;
    const address = sender.source?.address;
    const ok = this.authorize(ctx.connection, address, sender);
    if (!ok) return;
    const [st, kind] = ok;
    sender.set_source({ address });
    const ch = st.channel;
    if (kind === 'events') {
      ch.inputs = sender;
      ch.unsettled.clear(); // a new link: what the old one left unsettled stays in the journal
      sender.on('accepted', (c: EventContext) => {
        const body = ch.unsettled.get(c.delivery!);
        if (body) this.hub.delivered(body);
      });
      sender.on('settled', (c: EventContext) => {
        const full = ch.room() <= 0;
        ch.unsettled.delete(c.delivery!);
        if (full && ch.room() > 0) this.hub.channelHasRoom(st.moduleId);
      });
      // A link that opens with no credit yet still counts as listening: rhea holds messages until credit comes.
      this.hub.channelListening(st.moduleId, 'inputs');
    } else if (kind === 'methods') {
      ch.methodRequests = sender;
      if (ch.listens('methods')) this.hub.channelListening(st.moduleId, 'methods');
    } else {
      ch.twinAnswers = sender;
      ch.desired = false; // a new twin link asks for desired updates again
    }
  }

  private twinRequest(st: ConnState, m: Message): void {
    const ch = st.channel;
    const ann = (m.message_annotations ?? {}) as Record<string, unknown>;
    const answer = (status: number, body?: unknown, version?: number): void => {
      if (ch.twinAnswers) presettled(ch.twinAnswers, {
        correlation_id: m.correlation_id,
        message_annotations: { status: rhea.types.wrap_int(status), ...(version !== undefined ? { version: rhea.types.wrap_long(version) } : {}) },
        body: rhea.message.data_section(body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body))),
      });
    };
    const op = String(ann.operation ?? '');
    const resource = ann.resource === undefined ? undefined : String(ann.resource);
    if (op === 'GET' && resource === undefined) return answer(200, this.hub.moduleTwin(st.moduleId));
    if (op === 'PATCH' && resource === '/properties/reported') {
      const r = this.hub.reportedFrom(st.moduleId, bodyBytes(m.body));
      return 'error' in r ? answer(r.status, r.error) : answer(204, undefined, r.version);
    }
    if ((op === 'PUT' || op === 'DELETE') && resource === DESIRED_NOTIFICATIONS) {
      ch.desired = op === 'PUT';
      answer(200);
      if (ch.desired) this.hub.channelListening(st.moduleId, 'desired');
      return;
    }
    answer(400, { errorCode: 400027, message: `unsupported twin operation ${op.slice(0, 50)} on ${String(resource).slice(0, 200)}` });
  }
}

/** Send settled: requests, answers and updates need no settlement back, and so never pile up in rhea's buffer. */
function presettled(sender: Sender, m: Message): void {
  // What rhea's send does itself on a link whose sender settle mode is "settled".
  (sender.send(m) as { settled: boolean }).settled = true;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
