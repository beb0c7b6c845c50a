/**
 * @enclave-edge/edge-sim — an offline IoT Edge simulator: edgeHub (MQTT 3.1.1 over TLS, SAS,
 * per-module ACL, IoT Hub topics, routes, store-and-forward), the workload API, an IoT Hub-shaped
 * service API, and a module supervisor, all driven by a deployment manifest.
 */
export { startSimulator, type SimulatorOptions, type SimulatorHandle } from './sim.js';
export { StateDir, RuntimeStateSchema, type RuntimeState, type ModuleIdentity } from './state/index.js';
export { EdgeHub, type EdgeHubOptions, type UpstreamMessage } from './hub/edge-hub.js';
export { HubError } from './hub/hub-error.js';
export { startServiceApi, type ServiceBackend, type RegistryApi } from './service/server.js';
export { upstreamJson, upstreamBody } from './upstream-json.js';
export { createSas, parseSas, verifySas, encodeUriStrict } from './sas.js';
export { edgeModuleEnv, moduleConnectionString, serviceConnectionString, gatewayHostName, type GatewayInfo } from './module-env.js';
