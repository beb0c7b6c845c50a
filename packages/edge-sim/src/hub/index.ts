/** edgeHub's parts: the broker, IoT Hub topic grammar, twins and store-and-forward. */
export { EdgeHub, type EdgeHubOptions, type UpstreamMessage } from './edge-hub.js';
export { HubError } from './hub-error.js';
export { AmqpModules, MAX_UNSETTLED_INPUTS } from './amqp-modules.js';
export * from './topics.js';
export { mergePatch, TwinStore, type Json, type JsonObject, type Twin } from './twins.js';
export { StoreAndForward, DEFAULT_STORE_LIMITS, type Queued, type StoreLimits } from './store-forward.js';
