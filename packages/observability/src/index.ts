export * from './levels.js';
export * from './redact.js';
export * from './logger.js';
export * from './metrics.js';
export * from './metrics-server.js';
export * from './quantiles.js';
export * from './types.js';
export * from './label-cap.js';
