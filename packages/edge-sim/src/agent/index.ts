/** `$edgeAgent` / `$edgeHub`: built-in methods, runtime twins, module logs, the local blob target. */
export { EdgeAgent, EDGE_AGENT, EDGE_HUB, MAX_METHOD_RESPONSE_BYTES, type AgentHost, type MethodAnswer } from './edge-agent.js';
export { attachEdgeAgent, isSystemModule, runtimeLogLine, SYSTEM_MODULES } from './attach.js';
export { ModuleLogBuffer, type LogLine } from './log-buffer.js';
export { parseTimeSpec, logLevelOf, selectLines, LogRequestSchema } from './log-query.js';
export { BlobTarget, containerSasUrl, blobKey, putBlob } from './blob-target.js';
