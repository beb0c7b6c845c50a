export * from './ta-client.js';
export * from './messages.js';
export type { ModuleClientLike } from './module-client-like.js';
