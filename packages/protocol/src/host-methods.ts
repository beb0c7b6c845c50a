/** Direct-method payloads of host-module (cloud-facing). */
import { z } from 'zod';
import { commandName, sessionId, taName } from './names.js';
import { LIMITS } from './limits.js';

const anyJson = z.unknown();

export const invokeTASchema = z.strictObject({
  ta: taName,
  command: commandName,
  params: anyJson.optional(),
  sessionId: sessionId.optional(),
  timeoutMs: z.number().int().min(1).max(LIMITS.maxTimeoutMs).optional(),
});
export type InvokeTAPayload = z.output<typeof invokeTASchema>;

export const openSessionSchema = z.strictObject({
  ta: taName,
  params: anyJson.optional(),
  timeoutMs: z.number().int().min(1).max(LIMITS.maxTimeoutMs).optional(),
});
export const closeSessionSchema = z.strictObject({ ta: taName, sessionId });
export const attestSchema = z.strictObject({
  ta: taName,
  /** Verifier's freshness nonce: base64url or hex, 8..55 bytes once decoded. */
  nonce: z.string().min(8).max(128),
  claims: z.record(z.string(), z.unknown()).optional(),
});
export const emptySchema = z.union([z.null(), z.undefined(), z.strictObject({})]);

export const HOST_METHODS = ['invokeTA', 'listTAs', 'openSession', 'closeSession', 'attest', 'health'] as const;
export type HostMethod = (typeof HOST_METHODS)[number];
