/**
 * The IoT Hub registry of the simulated device: its identity and module identities, the device
 * twin (tags, desired, reported), twin queries over the device and its modules, etags
 * (If-Match → 412), and configurations (deployments at scale) targeted by the device twin.
 * State is plain data (TwinStore, ConfigurationStore) so it can be saved and restored.
 */
import { HubError } from '../hub/hub-error.js';
import { TwinStore, type JsonObject } from '../hub/twins.js';
import { ConfigurationStore, type Configuration, type ConfigurationInput } from './configurations.js';
import { createHash } from 'node:crypto';
import { parseQuery, runQuery, QueryError, type TwinDoc } from './query.js';
import { checkIfMatch } from './etag.js';

export interface RegistryHost {
  deviceId: string;
  /** Module twins (the hub's). */
  twins: TwinStore;
  moduleIds(): string[];
  connected(moduleId: string): boolean;
  generationId(moduleId: string): string | undefined;
  /** Deploy what the configurations now say (or the device's own deployment when none targets it). */
  redeploy(): Promise<void>;
}

export class SimRegistry {
  /** The device twin lives in its own store, keyed by the device id. */
  readonly deviceTwins: TwinStore;
  readonly configurations = new ConfigurationStore();
  readonly createdAt = new Date().toISOString();

  constructor(private readonly host: RegistryHost) {
    this.deviceTwins = new TwinStore(host.deviceId);
  }

  device(): JsonObject {
    const connected = this.host.moduleIds().some((m) => this.host.connected(m));
    return {
      deviceId: this.host.deviceId,
      generationId: 'edge-sim-generation',
      etag: this.deviceEtag(),
      connectionState: connected ? 'Connected' : 'Disconnected',
      status: 'enabled',
      statusReason: null,
      connectionStateUpdatedTime: this.createdAt,
      statusUpdatedTime: this.createdAt,
      lastActivityTime: new Date().toISOString(),
      cloudToDeviceMessageCount: 0,
      authentication: { type: 'sas', symmetricKey: { primaryKey: null, secondaryKey: null }, x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } },
      capabilities: { iotEdge: true },
    };
  }

  private deviceEtag(): string {
    return Buffer.from(`device-${this.deviceTwins.get(this.host.deviceId).version}`).toString('base64');
  }

  module(moduleId: string): JsonObject {
    const t = this.host.twins.get(moduleId);
    return {
      moduleId,
      deviceId: this.host.deviceId,
      generationId: this.host.generationId(moduleId) ?? moduleId,
      etag: Buffer.from(String(t.version)).toString('base64'),
      connectionState: this.host.connected(moduleId) ? 'Connected' : 'Disconnected',
      connectionStateUpdatedTime: this.createdAt,
      lastActivityTime: new Date().toISOString(),
      cloudToDeviceMessageCount: 0,
      managedBy: moduleId.startsWith('$') ? 'iotEdge' : null,
      authentication: { type: 'sas', symmetricKey: { primaryKey: null, secondaryKey: null }, x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } },
    };
  }

  modules(): JsonObject[] {
    return this.host.moduleIds().map((m) => this.module(m));
  }

  /** The device twin in IoT Hub's service shape. */
  deviceTwin(): JsonObject {
    const { moduleId: _drop, ...view } = this.deviceTwins.serviceView(this.host.deviceId, this.host.moduleIds().some((m) => this.host.connected(m)));
    return { ...view, etag: this.deviceEtag(), capabilities: { iotEdge: true }, authenticationType: 'sas', x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } };
  }

  /** PATCH /twins/{device}: tags and desired merge (null deletes); a changed tag may retarget deployments. */
  async patchDeviceTwin(patch: { tags?: JsonObject; desired?: JsonObject }, ifMatch: string | undefined): Promise<JsonObject> {
    checkIfMatch(ifMatch, this.deviceEtag(), `the twin of ${this.host.deviceId}`);
    const id = this.host.deviceId;
    if (patch.desired) this.deviceTwins.checkPatch('desired', id, patch.desired);
    if (patch.tags) this.deviceTwins.checkPatch('tags', id, patch.tags);
    if (patch.desired) this.deviceTwins.patchDesired(id, patch.desired);
    if (patch.tags) {
      this.deviceTwins.patchTags(id, patch.tags);
      await this.host.redeploy();
    }
    return this.deviceTwin();
  }

  /** The module twin's etag check (If-Match) before a patch. */
  checkModuleEtag(moduleId: string, ifMatch: string | undefined): void {
    checkIfMatch(ifMatch, Buffer.from(String(this.host.twins.get(moduleId).version)).toString('base64'), `the twin of ${this.host.deviceId}/${moduleId}`);
  }

  /**
   * POST /devices/query: the rows of the query over the device's twin or its modules' twins, one
   * page at a time as IoT Hub pages them: at most `x-ms-max-item-count` rows, and an opaque
   * `x-ms-continuation` token for the next page while there are more.
   */
  query(sql: string, moduleTwin: (m: string) => JsonObject, page: QueryPageRequest = {}): QueryPage {
    let q;
    try {
      q = parseQuery(sql);
    } catch (err) {
      if (err instanceof QueryError) throw new HubError(400, 400004, `query: ${err.message}`, 'BAD_PARAMETERS');
      throw err;
    }
    const size = pageSize(page.maxItemCount);
    const offset = page.continuation === undefined ? 0 : continuationOffset(page.continuation, sql);
    const docs: JsonObject[] = q.from === 'devices' ? [this.deviceTwin()] : this.host.moduleIds().map(moduleTwin);
    const rows = runQuery(q, docs as TwinDoc[]) as JsonObject[];
    const items = rows.slice(offset, offset + size);
    const next = offset + size;
    return next < rows.length ? { items, continuation: continuationToken(sql, next) } : { items };
  }

  async putConfiguration(id: string, input: ConfigurationInput, ifMatch: string | undefined): Promise<Configuration> {
    const c = this.configurations.put(id, input, ifMatch);
    await this.host.redeploy();
    return c;
  }

  async removeConfiguration(id: string, ifMatch: string | undefined): Promise<void> {
    this.configurations.remove(id, ifMatch);
    await this.host.redeploy();
  }

  /** What the configurations say the device runs now, judged on the device twin. */
  effectiveDeployment(): ReturnType<ConfigurationStore['effective']> {
    return this.configurations.effective(this.deviceTwin() as TwinDoc);
  }
}

export interface QueryPageRequest {
  /** The `x-ms-max-item-count` header as sent. */
  maxItemCount?: string;
  /** The `x-ms-continuation` header as sent. */
  continuation?: string;
}

export interface QueryPage {
  items: JsonObject[];
  /** For `x-ms-continuation`; absent on the last page (the SDK's `hasMoreResults` is then false). */
  continuation?: string;
}

/** The azure-iothub SDK's documented default and maximum page sizes. */
const DEFAULT_PAGE_SIZE = 1000;
const MAX_PAGE_SIZE = 10000;

function pageSize(header: string | undefined): number {
  if (header === undefined) return DEFAULT_PAGE_SIZE;
  const n = /^\d{1,6}$/.test(header.trim()) ? Number(header.trim()) : NaN;
  if (!(n >= 1 && n <= MAX_PAGE_SIZE)) throw new HubError(400, 400004, `x-ms-max-item-count: expected a whole number from 1 to ${MAX_PAGE_SIZE} (got ${JSON.stringify(header.slice(0, 20))})`, 'BAD_PARAMETERS');
  return n;
}

/** Which query a token belongs to, so one query's token is not taken for another's. */
function queryTag(sql: string): string {
  return createHash('sha256').update(sql).digest('base64url').slice(0, 16);
}

function continuationToken(sql: string, offset: number): string {
  return Buffer.from(JSON.stringify({ q: queryTag(sql), o: offset })).toString('base64url');
}

function continuationOffset(token: string, sql: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const t = parsed as { q?: unknown; o?: unknown } | undefined;
  if (!t || typeof t !== 'object' || t.q !== queryTag(sql) || !Number.isSafeInteger(t.o) || (t.o as number) < 0) {
    throw new HubError(400, 400004, 'x-ms-continuation: not a continuation token this query returned', 'BAD_PARAMETERS');
  }
  return t.o as number;
}
