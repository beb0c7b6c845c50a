/**
 * The IoT Edge workload API, as modules see it through IOTEDGE_WORKLOADURI:
 *
 *   const api = await startWorkloadApi({ listen: { port: 0 }, trustBundlePem, modules: (id) => …, masterSecret });
 *   env.IOTEDGE_WORKLOADURI = api.uri;   // ModuleClient.fromEnvironment(Mqtt) now signs and trusts through it
 *
 * GET /trust-bundle, POST /modules/{m}/genid/{g}/sign (HMAC-SHA256 with the module key),
 * …/encrypt and …/decrypt (AES-256-GCM, key bound to module id + generation id).
 */
export { startWorkloadApi, createWorkloadHandler, WORKLOAD_API_VERSIONS } from './server.js';
export { WorkloadClient, type WorkloadClientOptions } from './client.js';
export type { WorkloadApi, WorkloadApiOptions, WorkloadListen, WorkloadModuleIdentity } from './types.js';
