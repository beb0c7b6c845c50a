export { startHostModule, TELEMETRY_OUTPUT, type HostModule, type HostModuleOptions } from './host-module.js';
export { handleMethod, hostMethods, HOST_METHOD_NAMES, type MethodContext } from './methods.js';
export { Pipelines, type PipelineStatus } from './pipelines.js';
export type { EdgeModuleClient } from '@enclave-edge/module-frame';
