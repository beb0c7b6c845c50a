/** The environment edgeAgent gives a module on a device, and the connection-string alternative. */

export interface GatewayInfo {
  hubHostName: string;
  deviceId: string;
  mqttPort: number;
  httpsPort: number;
  workloadUri: string;
  caCertPath: string;
}

/** `localhost` when MQTT is on 8883 (as on a device), else `localhost:PORT` (the SDK dials mqtts://<gateway host>). */
export function gatewayHostName(g: GatewayInfo): string {
  return g.mqttPort === 8883 ? 'localhost' : `localhost:${g.mqttPort}`;
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

/** The service (iothubowner) connection string for the simulator's HTTPS API. */
export function serviceConnectionString(g: GatewayInfo, hubKey: string): string {
  return `HostName=${g.httpsPort === 443 ? 'localhost' : `localhost:${g.httpsPort}`};SharedAccessKeyName=iothubowner;SharedAccessKey=${hubKey}`;
}

/** What a child process inherits from the simulator (nothing else leaks in). */
export function baseProcessEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'SystemRoot'];
  const out: Record<string, string> = {};
  for (const k of keep) if (process.env[k] !== undefined) out[k] = process.env[k]!;
  return out;
}
