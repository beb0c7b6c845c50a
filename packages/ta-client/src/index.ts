export * from './ta-client.js';
export * from './messages.js';
export type { ModuleClientLike, EdgeModuleClient, MethodRequestLike, MethodResponseLike } from './module-client-like.js';
export * from './module-helpers.js';
export { enableLowLatencySockets } from './low-latency.js';
