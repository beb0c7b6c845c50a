/**
 * The IoT Hub registry of the simulated device: its identity and module identities, the device
 * twin (tags, desired, reported), twin queries over the device and its modules, etags
 * (If-Match → 412), and configurations (deployments at scale) targeted by the device twin.
 * State is plain data (TwinStore, ConfigurationStore) so it can be saved and restored.
 */
import { HubError } from '../hub/hub-error.js';
import { TwinStore, type JsonObject } from '../hub/twins.js';
import { ConfigurationStore, type Configuration, type ConfigurationInput } from './configurations.js';
import { parseQuery, QueryError, type TwinDoc } from './query.js';
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

  /** POST /devices/query: twins of the device or its modules matching the WHERE clause. */
  query(sql: string, moduleTwin: (m: string) => JsonObject): JsonObject[] {
    let q;
    try {
      q = parseQuery(sql);
    } catch (err) {
      if (err instanceof QueryError) throw new HubError(400, 400004, `query: ${err.message}`, 'BAD_PARAMETERS');
      throw err;
    }
    const docs: JsonObject[] = q.from === 'devices' ? [this.deviceTwin()] : this.host.moduleIds().map(moduleTwin);
    return docs.filter((d) => q.where(d as TwinDoc));
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
