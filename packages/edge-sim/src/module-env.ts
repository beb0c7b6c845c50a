/** The environment edgeAgent gives a module on a device, and the connection-string alternative. */

export interface GatewayInfo {
  hubHostName: string;
  deviceId: string;
  mqttPort: number;
  httpsPort: number;
  workloadUri: string;
  caCertPath: string;
  /** The Event Hub-compatible endpoint (AMQP/TLS); absent in states written before it existed. */
  amqpPort?: number;
  /** The loopback address every listener binds (default 127.0.0.1, spelled `localhost` in host names). */
  host?: string;
}

/** The simulator listens on loopback only: `127.x.y.z`, or an error message saying why not. */
export function loopbackProblem(host: string): string | undefined {
  const parts = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!parts || parts.slice(1).some((p) => Number(p) > 255)) return `not a loopback IPv4 address (127.x.y.z): ${JSON.stringify(host)}; the simulator never listens beyond this machine`;
  return undefined;
}

/** The host part clients dial: `localhost` for 127.0.0.1, else the loopback alias itself. */
export function listenHostName(g: Pick<GatewayInfo, 'host'>): string {
  return !g.host || g.host === '127.0.0.1' ? 'localhost' : g.host;
}

/**
 * The bare host when MQTT is on 8883 (as on a device), else `host:PORT` (the SDK dials
 * mqtts://<gateway host>). Module-to-module methods and MQTT over WebSockets dial
 * `<gateway host>:443` and need the bare form.
 */
export function gatewayHostName(g: GatewayInfo): string {
  return g.mqttPort === 8883 ? listenHostName(g) : `${listenHostName(g)}:${g.mqttPort}`;
}

/** IOTEDGE_* variables for `ModuleClient.fromEnvironment(Mqtt)`. */
export function edgeModuleEnv(g: GatewayInfo, moduleId: string, generationId: string): Record<string, string> {
  return {
    IOTEDGE_WORKLOADURI: g.workloadUri,
    IOTEDGE_DEVICEID: g.deviceId,
    IOTEDGE_MODULEID: moduleId,
    IOTEDGE_MODULEGENERATIONID: generationId,
    IOTEDGE_IOTHUBHOSTNAME: g.hubHostName,
    IOTEDGE_GATEWAYHOSTNAME: gatewayHostName(g),
    IOTEDGE_AUTHSCHEME: 'sasToken',
    IOTEDGE_APIVERSION: '2019-01-30',
    // Simulator extras: where module-to-module methods are served when that is not 443.
    EDGESIM_GATEWAY_HTTPS_PORT: String(g.httpsPort),
  };
}

/** A module connection string as iotedgehubdev gives one (use with EdgeModuleCACertificateFile). */
export function moduleConnectionString(g: GatewayInfo, moduleId: string, keyBase64: string): string {
  return `HostName=${g.hubHostName};DeviceId=${g.deviceId};ModuleId=${moduleId};SharedAccessKey=${keyBase64};GatewayHostName=${gatewayHostName(g)}`;
}

/** Host (and port when not 443, for clients that take one) of the service API. azure-iothub always dials 443. */
export function serviceHost(g: GatewayInfo): string {
  return g.httpsPort === 443 ? listenHostName(g) : `${listenHostName(g)}:${g.httpsPort}`;
}

/** The service (iothubowner) connection string for the simulator's HTTPS API. */
export function serviceConnectionString(g: GatewayInfo, hubKey: string): string {
  return `HostName=${serviceHost(g)};SharedAccessKeyName=iothubowner;SharedAccessKey=${hubKey}`;
}

/** The Event Hub-compatible name of the built-in endpoint: the hub's name, as IoT Hub names it. */
export function eventHubName(g: Pick<GatewayInfo, 'hubHostName'>): string {
  return g.hubHostName.split('.')[0]!;
}

/** The built-in endpoint's Event Hub-compatible connection string (what `az iot hub connection-string show --eh` gives). */
export function eventHubConnectionString(g: GatewayInfo, hubKey: string): string | undefined {
  if (g.amqpPort === undefined) return undefined;
  const host = g.amqpPort === 5671 ? listenHostName(g) : `${listenHostName(g)}:${g.amqpPort}`;
  return `Endpoint=sb://${host}/;SharedAccessKeyName=iothubowner;SharedAccessKey=${hubKey};EntityPath=${eventHubName(g)}`;
}

/** What a child process inherits from the simulator (nothing else leaks in). */
export function baseProcessEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'SystemRoot'];
  const out: Record<string, string> = {};
  for (const k of keep) if (process.env[k] !== undefined) out[k] = process.env[k]!;
  return out;
}
