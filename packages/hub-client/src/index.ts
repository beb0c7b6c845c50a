/**
 * IoT Hub service REST client for a real hub (SAS from a policy connection string, or Entra ID
 * tokens) and for the enclave-edge simulator's service API, through one code path.
 */
export { HubClient, API_VERSION } from './hub-client.js';
export type { MethodParams, MethodResult, Configuration, ConfigurationContent, UpstreamEvent, HubClientOptions } from './hub-client.js';
export { parseServiceConnectionString, type ServiceConnectionString } from './connection-string.js';
export { serviceSas } from './sas.js';
export { hubErrorFromResponse, codeForStatus } from './errors.js';
